"""The record format on the topic: CloudEvents 1.0, structured JSON mode.

Every record's value is one JSON object::

    {
      "specversion": "1.0",
      "id": "0-1-4242/3/post_updated",      # pure function of binlog coordinates
      "source": "wpcdc://db.internal/wordpress",
      "type": "post_updated",                # see the event catalog
      "subject": "post/123",                 # "blog/2/post/123" on multisite blog 2
      "time": "2026-11-23T10:00:00Z",        # commit time of the last change folded in
      "datacontenttype": "application/json",
      "dataschema": "urn:wpcdc:schema:post_updated:1",
      "schemaversion": 1,
      "binlogfile": "binlog.000042",         # where the first change of the event sits
      "binlogpos": 786091,
      "binloggtid": "0-1-4242",              # absent when the server has no GTIDs
      "sequence": "0000000042-0000786091-0000000003-000",  # sorts in binlog order
      "data": {"blog_id": 1, "post_id": 123, "post_type": "post", ...}
    }

The record key is ``"{blog_id}:{post_id}"`` (UTF-8), so all events of a post
share a partition and keep binlog order; a term's events are keyed
``"{blog_id}:term/{term_id}"``, an author's ``"1:author/{user_id}"``, a menu's
``"{blog_id}:menu/{term_id}"``, likewise one partition each. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

SPEC_VERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"


def record_key(blog_id: int, post_id: int, entity: str | None = None) -> bytes:
    """``"{blog_id}:{post_id}"``; an event about a term, an author or a menu names it
    instead of the post: ``"{blog_id}:term/{term_id}"``, ``"1:author/{user_id}"``,
    ``"{blog_id}:menu/{term_id}"``."""
    return f"{blog_id}:{entity or post_id}".encode()


def parse_record_key(key: bytes) -> tuple[int | None, int | None]:
    """The ``(blog_id, post_id)`` a record key names; a part that is not a number
    is None (a term's, an author's or a menu's key, or a record another producer wrote)."""
    blog_text, _, post_text = key.decode("utf-8", "replace").partition(":")
    return _number(blog_text), _number(post_text)


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def subject(blog_id: int, post_id: int, entity: str | None = None) -> str:
    """``post/ID``; a blog's own events (post id 0, key "N:0") are about ``site``,
    a term's, an author's and a menu's about ``term/ID``, ``author/ID``, ``menu/ID``."""
    name = entity or (f"post/{post_id}" if post_id else "site")
    return name if blog_id == 1 else f"blog/{blog_id}/{name}"


def dataschema(event_type: str, version: int) -> str:
    return f"urn:wpcdc:schema:{event_type}:{version}"


def decode(value: bytes) -> dict[str, Any]:
    """Parse a record value; raises ValueError when it is not a wpcdc envelope."""
    try:
        envelope = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(envelope, dict) or envelope.get("specversion") != SPEC_VERSION:
        raise ValueError("not a CloudEvents 1.0 envelope")
    for name in ("id", "type", "subject", "data"):
        if name not in envelope:
            raise ValueError(f"envelope has no {name!r}")
    return envelope
