"""``wpcdc tail``: reads the events topic and prints it for people, one line per event.

This module owns how an envelope reads on a terminal (:func:`render`,
:func:`summary`, :func:`render_raw`: pure functions of the record), which
records a filter lets through (:class:`TailFilter`), and the consumer loop
(:func:`tail`). The consumer joins no group and commits nothing: it assigns
itself every partition, so tailing never moves anyone's offsets nor triggers a
rebalance of the real consumers. With ``signing.keys`` configured it checks
each record's signature (:mod:`wpcdc.core.signing`) and shows the verdict:
``[signature ok]`` or ``[signature BAD]`` (and ``unsigned``, ``unknown key``,
``malformed``) at the end of the line; with ``--json`` the envelope stays as
it is and a record that is not ``ok`` is reported on stderr.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

import orjson
import typer

from wpcdc.config.settings import KafkaSettings
from wpcdc.core import envelope as wire
from wpcdc.core.events import POST_EVENT_TYPES
from wpcdc.core.printable import printable
from wpcdc.core.signing import Verdict, verify
from wpcdc.kafka.topic import TopicPartition, TopicReader, open_topic

TYPE_WIDTH: Final = 17  # len("post_meta_changed")
SUBJECT_WIDTH: Final = 14
TITLE_WIDTH: Final = 60
EXCERPT_WIDTH: Final = 100
RAW_BYTES: Final = 200
RAW_MARKER: Final = "!! not a wpcdc event"
NO_TIME: Final = "--:--:--.---"

# Colour by what happened to the post: appeared, changed, went away, side data.
_COLORS: Final[Mapping[str, str]] = {
    "post_created": typer.colors.GREEN,
    "post_published": typer.colors.GREEN,
    "post_restored": typer.colors.GREEN,
    "post_updated": typer.colors.YELLOW,
    "post_scheduled": typer.colors.YELLOW,
    "post_unpublished": typer.colors.RED,
    "post_trashed": typer.colors.RED,
    "post_deleted": typer.colors.RED,
    "post_meta_changed": typer.colors.CYAN,
    "taxonomy_changed": typer.colors.MAGENTA,
    "post_snapshot": typer.colors.BLUE,
    "term_created": typer.colors.GREEN,
    "term_updated": typer.colors.YELLOW,
    "term_deleted": typer.colors.RED,
    "author_updated": typer.colors.YELLOW,
    "menu_changed": typer.colors.MAGENTA,
}
# Post events that report changed fields (all but created and deleted).
_STATUS_CHANGES: Final = frozenset(POST_EVENT_TYPES) - {"post_created", "post_deleted"}
_META_SIGNS: Final[Mapping[str, str]] = {"added": "+", "updated": "~", "deleted": "-"}
_ITEM_SIGNS: Final[Mapping[str, str]] = {"added": "+", "updated": "~", "removed": "-"}


# --- rendering (pure) ------------------------------------------------------------


def color_wanted(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


# Titles, keys and slugs come from anyone who can edit a post: every piece of an
# envelope goes through printable() (no terminal escapes, no line breaks).


def render(event: Mapping[str, Any], *, color: bool = False, tz: dt.tzinfo | None = None) -> str:
    """One line for an envelope: local time, type, subject, what changed."""
    kind = printable(str(event.get("type", "?")))
    label = kind.ljust(TYPE_WIDTH)
    if color and kind in _COLORS:
        label = typer.style(label, fg=_COLORS[kind], bold=kind == "post_deleted")
    subject = printable(str(event.get("subject", "?"))).ljust(SUBJECT_WIDTH)
    return f"{_clock(event.get('time'), tz)}  {label}  {subject}  {summary(event)}".rstrip()


def render_raw(
    *,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int | None,
    reason: str,
    color: bool = False,
    tz: dt.tzinfo | None = None,
) -> str:
    """One line for a record that is not a wpcdc envelope."""
    clock = NO_TIME
    if timestamp_ms is not None and timestamp_ms >= 0:
        clock = _format_clock(dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC), tz)
    marker = typer.style(RAW_MARKER, fg=typer.colors.RED, bold=True) if color else RAW_MARKER
    shown = value[:RAW_BYTES] if value is not None else None
    more = (
        f" (+{len(value) - RAW_BYTES} bytes)"
        if value is not None and len(value) > RAW_BYTES
        else ""
    )
    return (
        f"{clock}  {marker} ({printable(reason)}): partition {partition} offset {offset} "
        f"key={key!r} value={shown!r}{more}"
    )


def summary(event: Mapping[str, Any]) -> str:
    """What changed, from ``data``; unknown shapes fall back to a JSON excerpt."""
    data = event.get("data")
    kind = event.get("type")
    text = ""
    if isinstance(data, Mapping):
        try:
            text = _summarize(str(kind), data)
        except (KeyError, TypeError, AttributeError, ValueError):
            text = ""
        omitted = data.get("omitted")
        if text and isinstance(omitted, list) and omitted:
            text += f"  [omitted: {', '.join(printable(str(o)) for o in omitted)}]"
        if text:
            text += _links(data.get("links"))
    return text or _excerpt(data)


def _links(links: Any) -> str:
    """The post's (term's, author's) URL, and the one it moved from (README, "Links
    and cache tags")."""
    if not isinstance(links, Mapping):
        return ""
    now = links.get("permalink") or links.get("term") or links.get("author")
    was = links.get("previous_permalink") or links.get("previous")
    text = f"  {printable(str(now))}" if now else ""
    if was:
        text += f" (was {printable(str(was))})"
    return text


def _summarize(kind: str, data: Mapping[str, Any]) -> str:
    post = data.get("post")
    post = post if isinstance(post, Mapping) else {}
    if kind in ("post_created", "post_snapshot", "post_deleted"):
        if not post:
            raise KeyError("post")
        status = post.get("status")
        if kind == "post_deleted" or not status:
            return _title(post)
        return f"{_title(post)} ({printable(str(status))})"
    if kind in _STATUS_CHANGES:
        return _changes(data, post)
    if kind == "post_meta_changed":
        changes = [
            f"{_META_SIGNS.get(change['op'], '?')}{printable(str(change['key']))}"
            for change in _list(data["changes"])
        ]
        return " ".join(changes) or "(no meta changed)"
    if kind == "site_settings_changed":
        after = data["after"]
        return " ".join(
            f"{printable(str(name))}={printable(str(after.get(name)))!s}"
            for name in _list(data["changed"])
        )
    if kind in ("term_created", "term_updated", "term_deleted"):
        name = _term(data)
        if kind == "term_created" or kind == "term_deleted":
            return f'{name} "{printable(str(data.get("name")))}"'
        text = _before_after(data)
        moved = data.get("posts_moved")
        return text + (f"; {moved} posts moved" if isinstance(moved, int) and moved else "")
    if kind == "author_updated":
        return f"#{printable(str(data['user_id']))} {_before_after(data)}"
    if kind == "menu_changed":
        return _menu(data)
    if kind == "taxonomy_changed":
        added = [f"+{_term(term)}" for term in _list(data.get("added", []))]
        removed = [f"-{_term(term)}" for term in _list(data.get("removed", []))]
        return " ".join(added + removed) or "(no term changed)"
    return ""


def _changes(data: Mapping[str, Any], post: Mapping[str, Any]) -> str:
    before = data.get("before")
    before = before if isinstance(before, Mapping) else {}
    changed = [printable(str(name)) for name in _list(data.get("changed", []))]
    parts = []
    if "status" in before:
        changed = [name for name in changed if name != "status"]
        now = post.get("status", "?")
        parts.append(f"status {printable(str(before['status']))}→{printable(str(now))}")
    if changed:
        parts.insert(0, ", ".join(changed))
    return "; ".join(parts) if parts else "(no field changed)"


def _menu(data: Mapping[str, Any]) -> str:
    """``"Main" renamed (was "Old"); items +12 ~10(title) -11`` of a menu_changed."""
    text = f'"{printable(str(data["name"]))}"'
    change = data.get("menu_change")
    if change:
        text += f" {printable(str(change))}"
        was = data.get("before")
        if isinstance(was, Mapping) and was.get("name") is not None:
            text += f' (was "{printable(str(was["name"]))}")'
    items = []
    for item in _list(data["items"]):
        sign = _ITEM_SIGNS.get(item["op"], "?")
        changed = ",".join(printable(str(name)) for name in _list(item.get("changed", [])))
        items.append(f"{sign}{printable(str(item['id']))}" + (f"({changed})" if changed else ""))
    return f"{text}; items {' '.join(items)}" if items else text


def _before_after(data: Mapping[str, Any]) -> str:
    """``name a→b, slug c→d`` of a term or author event's changed fields."""
    before, after = data["before"], data["after"]
    return ", ".join(
        f"{printable(str(name))} {printable(str(before.get(name)))}→"
        f"{printable(str(after.get(name)))}"
        for name in _list(data["changed"])
    )


def _term(term: Any) -> str:
    if not isinstance(term, Mapping):
        raise TypeError("a term is an object")
    # An unresolved term (the mirror never saw it) has only its id.
    taxonomy = term.get("taxonomy") or "?"
    slug = term.get("slug") or term.get("name") or f"#{term.get('term_taxonomy_id', '?')}"
    return f"{printable(str(taxonomy))}:{printable(str(slug))}"


def _title(post: Mapping[str, Any]) -> str:
    title = post.get("title")
    if not isinstance(title, str) or not title.strip():
        return "(no title)"
    return f'"{_shorten(printable(title), TITLE_WIDTH)}"'


def _list(value: Any) -> Sequence[Any]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return value


def _excerpt(data: Any) -> str:
    if isinstance(data, Mapping):
        # The ids are in the subject already.
        data = {k: v for k, v in data.items() if k not in ("blog_id", "post_id", "post_type")}
    try:
        text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        text = repr(data)
    return _shorten(printable(text), EXCERPT_WIDTH)


def _clock(value: Any, tz: dt.tzinfo | None) -> str:
    if not isinstance(value, str):
        return NO_TIME
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return NO_TIME
    if moment.tzinfo is None:  # CloudEvents time is RFC 3339: UTC unless it says otherwise
        moment = moment.replace(tzinfo=dt.UTC)
    return _format_clock(moment, tz)


def _format_clock(moment: dt.datetime, tz: dt.tzinfo | None) -> str:
    local = moment.astimezone(tz)
    return f"{local:%H:%M:%S}.{local.microsecond // 1000:03d}"


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class TailFilter:
    """Which events to show; empty means all. Ids come from ``data`` or the key."""

    types: frozenset[str] = frozenset()
    post_id: int | None = None
    blog_id: int | None = None

    def matches(self, event: Mapping[str, Any], key: bytes | None) -> bool:
        if self.types and event.get("type") not in self.types:
            return False
        if self.post_id is None and self.blog_id is None:
            return True
        blog_id, post_id = _ids(event, key)
        if self.blog_id is not None and blog_id != self.blog_id:
            return False
        return self.post_id is None or post_id == self.post_id


def _ids(event: Mapping[str, Any], key: bytes | None) -> tuple[int | None, int | None]:
    data = event.get("data")
    blog_id = post_id = None
    if isinstance(data, Mapping):
        blog_id, post_id = _int(data.get("blog_id")), _int(data.get("post_id"))
    if (blog_id is None or post_id is None) and key is not None:
        key_blog, key_post = wire.parse_record_key(key)
        blog_id = blog_id if blog_id is not None else key_blog
        post_id = post_id if post_id is not None else key_post
    return blog_id, post_id


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- the consumer loop ----------------------------------------------------------


@dataclass(frozen=True)
class TailOptions:
    topic: str
    as_json: bool = False
    from_beginning: bool = False
    # False: stop once the end offsets that existed at the start are reached.
    follow: bool = True
    filter: TailFilter = field(default_factory=TailFilter)
    # Stop after printing this many events.
    max_events: int | None = None
    color: bool = False
    tz: dt.tzinfo | None = None
    # Key id -> secret (signing.keys): verify each record's signature when given.
    secrets: Mapping[str, bytes] = field(default_factory=dict)


Write = Callable[[str], None]


async def tail(settings: KafkaSettings, options: TailOptions, out: Write, err: Write) -> int:
    """Print the topic's records until the end (no follow), ``max_events``, or cancellation.

    Returns the number of events printed. Raises WpcdcError when the broker
    cannot be reached or the topic does not exist.
    """
    async with open_topic(settings, options.topic) as reader:
        return await _consume(reader, options, out, err)


async def _consume(reader: TopicReader, options: TailOptions, out: Write, err: Write) -> int:
    if options.from_beginning:
        await reader.from_beginning()
    else:
        await reader.from_end()
    # Without follow: stop at the end offsets the topic has now.
    unfinished: dict[TopicPartition, int] = {} if options.follow else await reader.ends()
    printed = 0
    while options.follow or unfinished:
        fetched = await reader.fetch()
        for record in _in_time_order(fetched.values()):
            printed += _print(record, options, out, err)
            if options.max_events is not None and printed >= options.max_events:
                return printed
        await reader.drop_reached(unfinished)
    return printed


def _in_time_order(batches: Iterable[list[Any]]) -> Iterable[Any]:
    # Interleave partitions by timestamp for reading, keeping each partition's order.
    return heapq.merge(*batches, key=lambda record: record.timestamp)


def _print(record: Any, options: TailOptions, out: Write, err: Write) -> int:
    try:
        event = wire.decode(record.value or b"")
    except ValueError as exc:
        line = render_raw(
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            timestamp_ms=record.timestamp,
            reason=str(exc),
            color=options.color and not options.as_json,
            tz=options.tz,
        )
        # Someone else writes to this topic: always worth seeing, whatever the
        # filters, but never inside a JSON-lines stream.
        (err if options.as_json else out)(line)
        return 0
    if not options.filter.matches(event, record.key):
        return 0
    verdict = None
    if options.secrets:
        verdict = verify(record.key, record.value or b"", record.headers or (), options.secrets)
    if options.as_json:
        out(orjson.dumps(event).decode())
        if verdict is not None and verdict is not Verdict.OK:
            err(
                f"signature {verdict.value}: partition {record.partition} offset "
                f"{record.offset} event {printable(str(event.get('id', '?')))}"
            )
    else:
        line = render(event, color=options.color, tz=options.tz)
        if verdict is not None:
            line += "  " + signature_label(verdict, color=options.color)
        out(line)
    return 1


def signature_label(verdict: Verdict, *, color: bool = False) -> str:
    """The verdict at the end of a line; anything but ok stands out."""
    label = f"[signature {verdict.value}]"
    if color:
        good = verdict is Verdict.OK
        label = typer.style(
            label, fg=typer.colors.GREEN if good else typer.colors.RED, bold=not good
        )
    return label


def run(settings: KafkaSettings, options: TailOptions) -> None:
    """Tail until done; Ctrl-C and a closed pipe (``| head``) end it quietly."""

    def out(line: str) -> None:
        typer.echo(line, color=options.color or None)

    def err(line: str) -> None:
        typer.echo(line, err=True)

    try:
        asyncio.run(tail(settings, options, out, err))
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # Python would fail again flushing stdout at exit; point it at nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
