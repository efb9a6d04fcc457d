"""``wpcdc resnapshot``: ask the running streamer to re-emit whole posts.

This module owns the command: the posts asked for (``--post`` ids or an
``--ids LOW:HIGH`` range, of one blog) as a
:class:`~wpcdc.core.resnapshot.Request`, written as a row of the signal table
(:func:`wpcdc.mysql.signal.request_resnapshot`), and the line that says so. The
streamer serves it between watermarks (:mod:`wpcdc.runtime.resnapshot`).
"""

from __future__ import annotations

import typer

from wpcdc.config.settings import Settings
from wpcdc.core.errors import ConfigError
from wpcdc.core.resnapshot import Request
from wpcdc.mysql.signal import request_resnapshot


def request(posts: list[int], ids: str | None, blog: int) -> Request:
    """The request the options ask for; raises ConfigError when they ask for none or both."""
    if bool(posts) == bool(ids):
        raise ConfigError("give either --post ID (repeatable) or --ids LOW:HIGH")
    if ids:
        low, _, high = ids.partition(":")
        if not (low.isdigit() and high.isdigit() and int(low) <= int(high)):
            raise ConfigError(f"--ids must look like LOW:HIGH with LOW <= HIGH, got {ids!r}")
        return Request(0, blog, low=int(low), high=int(high))
    return Request(0, blog, ids=tuple(posts))


def run(settings: Settings, *, posts: list[int], ids: str | None, blog: int) -> None:
    """Write the request into the signal table and say which id it got."""
    wanted = request(posts, ids, blog)
    request_id = request_resnapshot(settings.mysql, wanted.to_json())
    typer.echo(f"re-snapshot request {request_id} written: {wanted.to_json()}")
