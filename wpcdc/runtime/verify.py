"""``wpcdc verify``: the operator's proof that the topic matches the database.

This module owns the rules of that proof and the I/O around them:

- **Materializing** post state from the topic (:class:`TopicState`, pure): what a
  consumer that deduplicates by id and applies each post's events in
  ``sequence`` order would hold, in memory proportional to the number of posts.
- **Comparing** that state with the database's posts (:func:`compare_post`,
  pure): post fields as ``wpcdc.core.fold.to_post`` reads them, meta rows by
  ``meta_id`` (key and stored string), terms by ``term_taxonomy_id``, with the
  stream's filters applied to the database side.
- **Verifying** on a live site (:func:`verify`, pure orchestration over the
  :class:`Database`/:class:`Topic` protocols, clock and sleep passed in): the
  database is read in one consistent snapshot at position D, the topic only up
  to D, after the streamer's checkpoint passed D; differing posts are read again
  once, and only differences that persist are reported.
- **The report** (:class:`VerifyReport`: text and JSON).
- **Adapters**: :class:`MysqlDatabase` (a ``START TRANSACTION WITH CONSISTENT
  SNAPSHOT`` tied to its binlog position as ``wpcdc snapshot`` ties it) and
  :class:`KafkaTopic` (reads every partition from the beginning without a
  consumer group, as ``tail`` does, so verifying moves nobody's offsets).

Limits (see README): an event whose fold group straddles D carries changes
after D (the recheck absorbs them unless the post keeps changing); a topic whose
old records were deleted by retention or compaction cannot be rebuilt and
reports missing posts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import orjson
import pymysql
from aiokafka import AIOKafkaConsumer, TopicPartition

from wpcdc.config.preflight import detect_flavor
from wpcdc.config.settings import KafkaSettings, MysqlSettings, Settings
from wpcdc.core import envelope as wire
from wpcdc.core.decode import decode_meta, text
from wpcdc.core.errors import PreflightFailed, WpcdcError
from wpcdc.core.events import (
    META_EVENT,
    POST_EVENT_TYPES,
    SNAPSHOT_EVENT,
    TAXONOMY_EVENT,
    Post,
)
from wpcdc.core.fold import AUTO_DRAFT, FoldConfig, to_post
from wpcdc.core.positions import Coordinate, Position
from wpcdc.core.snapshot_events import PostBundle, wanted
from wpcdc.kafka.client import topic_reader
from wpcdc.mysql.database import (
    MysqlConnection,
    begin_consistent_snapshot,
    connect,
    read_post_bundles,
    watched_blogs,
)
from wpcdc.runtime.files import FileCheckpointStore

PostKey = tuple[int, int]  # (blog_id, post_id)

POST_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in dataclasses.fields(Post))
# What the oversize policy's last step keeps of a post (see wpcdc.core.events._omit_all).
_IDENTIFIERS: Final = frozenset({"id", "type", "status", "password_protected"})
_BODIES: Final = {"post.content": "content", "post.excerpt": "excerpt"}

# Strings longer than this are kept as a fingerprint: post bodies would otherwise
# make the materialized state as large as the site's content.
LONG_STRING: Final = 256
EXCERPT_WIDTH: Final = 60
FIELDS_PER_POST: Final = 10
# Posts per database read.
CHUNK: Final = 500


# --- values -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A long string, compared by length and digest; ``head`` is for the report only."""

    length: int
    digest: bytes
    head: str = field(compare=False)


def compact(value: Any) -> Any:
    """``value`` as the state keeps it: long strings become fingerprints."""
    if isinstance(value, str) and len(value) > LONG_STRING:
        digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        return Fingerprint(len(value), digest, value[:EXCERPT_WIDTH])
    return value


def stored_meta(value: Any, raw: Any) -> Any:
    """The stored ``meta_value`` as an event carries it: ``raw`` when it differs
    from the decoded ``value`` (serialized, binary), else ``value`` itself."""
    return raw if raw is not None else value


def database_meta(meta_value: Any) -> Any:
    """A ``meta_value`` column as an event would carry it (same decoding as the fold)."""
    decoded = decode_meta(meta_value)
    return stored_meta(decoded.value, decoded.raw)


def sequence_cutoff(position: Position) -> str:
    """The smallest sequence of an event made from changes at or after ``position``."""
    return Coordinate.of(position, 0).sequence(0)


# --- materializing the topic (pure) --------------------------------------------------


@dataclass(slots=True)
class MetaSlot:
    """The last word the topic had on one meta row, and the sequence it came at."""

    seq: str
    present: bool
    key: str
    value: Any
    value_known: bool = True


@dataclass(slots=True)
class PostState:
    """One post as the topic describes it.

    Every event states the whole of what it touches (a post event the whole row,
    a meta change the whole meta row, a term added or removed its membership), so
    each part is a register that keeps the value with the highest sequence. That
    is what applying the events in sequence order gives, whatever order the topic
    holds them in (a snapshot may land after later changes), and a duplicate
    changes nothing. A snapshot or a deletion replaces the meta rows and terms
    known before it (``reset_seq``).
    """

    post: dict[str, Any] | None = None
    post_seq: str = ""
    deleted: bool = False
    # Post fields the oversize policy left out of the event that set ``post``.
    unknown: frozenset[str] = frozenset()
    reset_seq: str = ""
    meta: dict[int, MetaSlot] = field(default_factory=dict)
    terms: dict[int, tuple[str, bool]] = field(default_factory=dict)  # tt_id -> (seq, member)
    # The latest event that left out its whole meta (or term) list: unknown until
    # a later snapshot says again what the post holds.
    meta_blind_seq: str = ""
    terms_blind_seq: str = ""

    @property
    def exists(self) -> bool:
        """The topic says the post exists (a post event or snapshot, no deletion after)."""
        return self.post is not None and not self.deleted

    @property
    def meta_known(self) -> bool:
        return not self.meta_blind_seq or self.meta_blind_seq < self.reset_seq

    @property
    def terms_known(self) -> bool:
        return not self.terms_blind_seq or self.terms_blind_seq < self.reset_seq

    def present_meta(self) -> dict[int, MetaSlot]:
        return {meta_id: slot for meta_id, slot in self.meta.items() if slot.present}

    def present_terms(self) -> frozenset[int]:
        return frozenset(tt_id for tt_id, (_, member) in self.terms.items() if member)


_POST_TYPES: Final = frozenset(POST_EVENT_TYPES) | {SNAPSHOT_EVENT}


class TopicState:
    """Post state rebuilt from records; feed it every record of the topic.

    ``cutoff``: events whose sequence is at or after it are ignored (they come
    from changes the database read did not see). ``blog_id``/``only`` restrict
    the posts kept; records of other posts are skipped on their key, undecoded.
    """

    def __init__(
        self,
        *,
        ignored_meta_keys: frozenset[str] = frozenset(),
        cutoff: str | None = None,
        blog_id: int | None = None,
        only: frozenset[PostKey] | None = None,
    ) -> None:
        self.posts: dict[PostKey, PostState] = {}
        self._ignored = ignored_meta_keys
        self._cutoff = cutoff
        self._blog_id = blog_id
        self._only = only
        self.events = 0  # applied (duplicates included)
        self.after_cutoff = 0
        self.foreign = 0  # records that are not wpcdc envelopes
        self.unreadable = 0  # wpcdc envelopes whose data this verifier cannot read

    def add_record(self, key: bytes | None, value: bytes | None) -> None:
        if key is not None and not self._wanted_key(key):
            return
        try:
            event = wire.decode(value or b"")
        except ValueError:
            self.foreign += 1
            return
        self.add(event)

    def add(self, event: Mapping[str, Any]) -> None:
        """Apply one decoded envelope."""
        try:
            kind = str(event["type"])
            seq = event["sequence"]
            data = event["data"]
            target = (int(data["blog_id"]), int(data["post_id"]))
            if not isinstance(seq, str):
                raise TypeError("sequence is not a string")
        except (KeyError, TypeError, ValueError):
            self.unreadable += 1
            return
        if not self._in_scope(target):
            return
        if self._cutoff is not None and seq >= self._cutoff:
            self.after_cutoff += 1
            return
        state = self.posts.get(target)
        if state is None:
            state = self.posts[target] = PostState()
        try:
            if kind in _POST_TYPES:
                self._apply_post(state, kind, seq, data)
            elif kind == META_EVENT:
                self._apply_meta(state, seq, data)
            elif kind == TAXONOMY_EVENT:
                self._apply_terms(state, seq, data)
            else:
                self.unreadable += 1
                return
        except (KeyError, TypeError, ValueError, AttributeError):
            self.unreadable += 1
            return
        self.events += 1

    def _wanted_key(self, key: bytes) -> bool:
        blog_text, _, post_text = key.decode("utf-8", "replace").partition(":")
        if not (blog_text.isdigit() and post_text.isdigit()):
            return True  # not a wpcdc key: let the envelope decide
        return self._in_scope((int(blog_text), int(post_text)))

    def _in_scope(self, target: PostKey) -> bool:
        if self._blog_id is not None and target[0] != self._blog_id:
            return False
        return self._only is None or target in self._only

    def _apply_post(self, state: PostState, kind: str, seq: str, data: Mapping[str, Any]) -> None:
        omitted = _omitted(data)
        post = data["post"]
        if not isinstance(post, Mapping):
            raise TypeError("post is not an object")
        if seq > state.post_seq:
            state.post = {name: compact(post.get(name)) for name in POST_FIELDS}
            state.post_seq = seq
            state.deleted = kind == "post_deleted"
            state.unknown = _unknown_post_fields(omitted)
        if kind == "post_deleted":
            # Its meta and term removals are implied, not sent.
            self._reset(state, seq, meta=(), terms=(), omitted=frozenset())
        elif kind == SNAPSHOT_EVENT:
            self._reset(state, seq, meta=data["meta"], terms=data["terms"], omitted=omitted)

    def _reset(
        self,
        state: PostState,
        seq: str,
        *,
        meta: Iterable[Mapping[str, Any]],
        terms: Iterable[Mapping[str, Any]],
        omitted: frozenset[str],
    ) -> None:
        if seq <= state.reset_seq:
            return  # a later snapshot or deletion already replaced everything this says
        state.reset_seq = seq
        state.meta = {k: slot for k, slot in state.meta.items() if slot.seq > seq}
        state.terms = {k: slot for k, slot in state.terms.items() if slot[0] > seq}
        if "meta" in omitted:
            state.meta_blind_seq = max(state.meta_blind_seq, seq)
        if "terms" in omitted:
            state.terms_blind_seq = max(state.terms_blind_seq, seq)
        values_known = "meta.values" not in omitted
        for entry in meta:
            key = str(entry["key"])
            if key in self._ignored:
                continue
            value = stored_meta(entry.get("value"), entry.get("raw"))
            self._set_meta(state, int(entry["meta_id"]), seq, True, key, value, values_known)
        for term in terms:
            self._set_term(state, int(term["term_taxonomy_id"]), seq, True)

    def _apply_meta(self, state: PostState, seq: str, data: Mapping[str, Any]) -> None:
        if seq < state.reset_seq:
            return  # the snapshot or deletion after it already includes it
        omitted = _omitted(data)
        if "changes" in omitted:
            state.meta_blind_seq = max(state.meta_blind_seq, seq)
        values_known = "changes.values" not in omitted
        for change in data["changes"]:
            key = str(change["key"])
            if key in self._ignored:
                continue
            present = change["op"] != "deleted"
            value = stored_meta(change.get("value"), change.get("raw")) if present else None
            self._set_meta(state, int(change["meta_id"]), seq, present, key, value, values_known)

    def _apply_terms(self, state: PostState, seq: str, data: Mapping[str, Any]) -> None:
        if seq < state.reset_seq:
            return
        omitted = _omitted(data)
        if {"added", "removed"} & omitted:
            state.terms_blind_seq = max(state.terms_blind_seq, seq)
        for term in data["added"]:
            self._set_term(state, int(term["term_taxonomy_id"]), seq, True)
        for term in data["removed"]:
            self._set_term(state, int(term["term_taxonomy_id"]), seq, False)

    @staticmethod
    def _set_meta(
        state: PostState,
        meta_id: int,
        seq: str,
        present: bool,
        key: str,
        value: Any,
        value_known: bool,
    ) -> None:
        slot = state.meta.get(meta_id)
        # Equal sequences are the same event sent again: the first copy stays.
        if slot is None or slot.seq < seq:
            state.meta[meta_id] = MetaSlot(seq, present, key, compact(value), value_known)

    @staticmethod
    def _set_term(state: PostState, tt_id: int, seq: str, member: bool) -> None:
        slot = state.terms.get(tt_id)
        if slot is None or slot[0] < seq:
            state.terms[tt_id] = (seq, member)


def _omitted(data: Mapping[str, Any]) -> frozenset[str]:
    omitted = data.get("omitted") or ()
    return frozenset(str(name) for name in omitted)


def _unknown_post_fields(omitted: frozenset[str]) -> frozenset[str]:
    if "post" in omitted:
        return frozenset(POST_FIELDS) - _IDENTIFIERS
    return frozenset(name for marker, name in _BODIES.items() if marker in omitted)


# --- comparing (pure) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatabasePost:
    """One post as the database holds it, in the state's terms (filters applied)."""

    blog_id: int
    post_id: int
    post: dict[str, Any]
    meta: dict[int, tuple[str, Any]]  # meta_id -> (key, stored string, compacted)
    terms: frozenset[int]


def database_post(bundle: PostBundle, ignored_meta_keys: frozenset[str]) -> DatabasePost:
    post = to_post(bundle.post)
    meta: dict[int, tuple[str, Any]] = {}
    for row in bundle.meta:
        key = str(text(row.get("meta_key")))
        if key in ignored_meta_keys:
            continue
        meta[int(row["meta_id"])] = (key, compact(database_meta(row.get("meta_value"))))
    return DatabasePost(
        blog_id=bundle.blog_id,
        post_id=post.id,
        post={name: compact(getattr(post, name)) for name in POST_FIELDS},
        meta=meta,
        terms=frozenset(term.term_taxonomy_id for term in bundle.terms),
    )


@dataclass(frozen=True, slots=True)
class FieldDiff:
    """One field that differs; ``topic`` and ``database`` are short excerpts."""

    field: str
    topic: str
    database: str
    detail: str = ""


DiffKind = Literal["missing", "stale", "extra"]


@dataclass(frozen=True, slots=True)
class PostDiff:
    blog_id: int
    post_id: int
    kind: DiffKind
    reason: str = ""
    fields: tuple[FieldDiff, ...] = ()
    # Field differences beyond the FIELDS_PER_POST listed.
    more_fields: int = 0

    @property
    def key(self) -> PostKey:
        return (self.blog_id, self.post_id)

    @property
    def subject(self) -> str:
        return wire.subject(self.blog_id, self.post_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "blog_id": self.blog_id,
            "post_id": self.post_id,
            "kind": self.kind,
            "reason": self.reason,
            "fields": [dataclasses.asdict(f) for f in self.fields],
            "more_fields": self.more_fields,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    diff: PostDiff | None
    # What could not be compared because the oversize policy left it out.
    unverifiable: tuple[str, ...] = ()


def compare_post(db: DatabasePost, state: PostState | None) -> Comparison:
    """The database's post against the topic's state of it."""
    if state is None or state.post is None:
        reason = "no event on the topic"
        if state is not None:
            reason = "only meta or term events on the topic, no post event"
        return Comparison(PostDiff(db.blog_id, db.post_id, "missing", reason))
    if state.deleted:
        return Comparison(PostDiff(db.blog_id, db.post_id, "missing", "post_deleted on the topic"))
    diffs: list[FieldDiff] = []
    unverifiable: list[str] = []
    for name in POST_FIELDS:
        if name in state.unknown:
            unverifiable.append(name)
            continue
        ours, theirs = state.post.get(name), db.post[name]
        if ours != theirs:
            topic, database = excerpts(ours, theirs)
            diffs.append(FieldDiff(name, topic, database))
    if state.meta_known:
        diffs += _meta_diffs(state.present_meta(), db.meta, unverifiable)
    else:
        unverifiable.append("meta")
    if state.terms_known:
        ours_terms, theirs_terms = state.present_terms(), db.terms
        if ours_terms != theirs_terms:
            diffs.append(
                FieldDiff(
                    "terms",
                    _ids(ours_terms - theirs_terms, "only on the topic"),
                    _ids(theirs_terms - ours_terms, "only in the database"),
                    "term_taxonomy_id",
                )
            )
    else:
        unverifiable.append("terms")
    diff = None
    if diffs:
        diff = PostDiff(
            db.blog_id,
            db.post_id,
            "stale",
            fields=tuple(diffs[:FIELDS_PER_POST]),
            more_fields=max(0, len(diffs) - FIELDS_PER_POST),
        )
    return Comparison(diff, tuple(dict.fromkeys(unverifiable)))


def _meta_diffs(
    ours: Mapping[int, MetaSlot], theirs: Mapping[int, tuple[str, Any]], unverifiable: list[str]
) -> list[FieldDiff]:
    diffs = []
    for meta_id in sorted(ours.keys() | theirs.keys()):
        slot, row = ours.get(meta_id), theirs.get(meta_id)
        if slot is None:
            assert row is not None
            key, value = row
            diffs.append(
                FieldDiff("meta", "(absent)", _excerpt(value), f"{_clean(key)} #{meta_id}")
            )
        elif row is None:
            shown = _excerpt(slot.value) if slot.value_known else "(value omitted)"
            diffs.append(FieldDiff("meta", shown, "(absent)", f"{_clean(slot.key)} #{meta_id}"))
        elif slot.key != row[0]:
            diffs.append(FieldDiff("meta", _clean(slot.key), _clean(row[0]), f"key of #{meta_id}"))
        elif not slot.value_known:
            unverifiable.append("meta.values")
        elif slot.value != row[1]:
            topic, database = excerpts(slot.value, row[1])
            diffs.append(FieldDiff("meta", topic, database, f"{_clean(row[0])} #{meta_id}"))
    return diffs


def extra_post(key: PostKey, state: PostState) -> PostDiff | None:
    """A post the topic has and the database does not (``None`` when the topic agrees)."""
    if state.deleted:
        return None
    if state.post is None:
        if not state.present_meta() and not state.present_terms():
            return None
        reason = "meta or term events on the topic, no post in the database"
    else:
        reason = "on the topic, not in the database"
    return PostDiff(key[0], key[1], "extra", reason)


# --- excerpts ---------------------------------------------------------------------------

# Titles and meta come from anyone who can edit a post: no terminal escapes.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text)


def _excerpt(value: Any, start: int = 0) -> str:
    if isinstance(value, Fingerprint):
        return f'"{_clean(value.head)}…" ({value.length} chars)'
    if isinstance(value, str):
        if len(value) <= EXCERPT_WIDTH and start == 0:
            return orjson.dumps(_clean(value)).decode()
        piece = value[start : start + EXCERPT_WIDTH]
        left = "…" if start else ""
        right = "…" if start + EXCERPT_WIDTH < len(value) else ""
        return f'"{left}{_clean(piece)}{right}"'
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def excerpts(topic: Any, database: Any) -> tuple[str, str]:
    """Short excerpts of two differing values, around where two strings part."""
    if isinstance(topic, str) and isinstance(database, str):
        at = next(
            (i for i, (a, b) in enumerate(zip(topic, database, strict=False)) if a != b),
            min(len(topic), len(database)),
        )
        start = max(0, at - EXCERPT_WIDTH // 3)
        if max(len(topic), len(database)) <= EXCERPT_WIDTH:
            start = 0
        return _excerpt(topic, start), _excerpt(database, start)
    return _excerpt(topic), _excerpt(database)


def _ids(ids: frozenset[int], label: str) -> str:
    if not ids:
        return "-"
    shown = ", ".join(str(i) for i in sorted(ids)[:10])
    more = f" (+{len(ids) - 10})" if len(ids) > 10 else ""
    return f"{shown}{more} {label}"


# --- the report -----------------------------------------------------------------------


@dataclass(slots=True)
class VerifyReport:
    topic: str
    database: str
    position: str = ""  # the database read's binlog position (D)
    checkpoint: str | None = None
    posts_in_database: int = 0
    posts_on_topic: int = 0
    differences: list[PostDiff] = field(default_factory=list)
    # Field name -> number of posts where it could not be compared.
    unverifiable: Counter[str] = field(default_factory=Counter)
    unverifiable_posts: int = 0
    events: int = 0
    events_after_position: int = 0
    foreign_records: int = 0
    unreadable_events: int = 0
    rechecked: int = 0
    settled: int = 0  # differences gone when read again
    warnings: list[str] = field(default_factory=list)
    # Posts in the database with no difference that persisted.
    matching: int = 0

    @property
    def ok(self) -> bool:
        return not self.differences

    def count(self, kind: DiffKind) -> int:
        return sum(1 for d in self.differences if d.kind == kind)

    def counts(self) -> dict[str, int]:
        return {
            "posts_in_database": self.posts_in_database,
            "posts_on_topic": self.posts_on_topic,
            "matching": self.matching,
            "missing": self.count("missing"),
            "stale": self.count("stale"),
            "extra": self.count("extra"),
            "unverifiable": self.unverifiable_posts,
        }

    def to_dict(self, max_report: int) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "topic": self.topic,
            "database": self.database,
            "position": self.position,
            "checkpoint": self.checkpoint,
            "counts": self.counts(),
            "unverifiable": dict(sorted(self.unverifiable.items())),
            "events": {
                "applied": self.events,
                "after_position": self.events_after_position,
                "unreadable": self.unreadable_events,
                "foreign_records": self.foreign_records,
            },
            "recheck": {"posts": self.rechecked, "settled": self.settled},
            "differences": [d.to_dict() for d in self.differences[:max_report]],
            "differences_total": len(self.differences),
            "warnings": list(self.warnings),
        }

    def as_json(self, max_report: int) -> str:
        return orjson.dumps(self.to_dict(max_report), option=orjson.OPT_INDENT_2).decode()

    def as_text(self, max_report: int) -> str:
        counts = self.counts()
        lines = [
            f"topic {self.topic} against database {self.database} at {self.position or '?'}",
            f"  streamer checkpoint      {self.checkpoint or '(none found)'}",
        ]
        for label, name in (
            ("posts in the database", "posts_in_database"),
            ("posts on the topic", "posts_on_topic"),
            ("matching", "matching"),
            ("missing", "missing"),
            ("stale", "stale"),
            ("extra", "extra"),
        ):
            lines.append(f"  {label:<24} {counts[name]}")
        unverifiable = f"  {'unverifiable':<24} {self.unverifiable_posts}"
        if self.unverifiable:
            parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.unverifiable.items()))
            unverifiable += f"  (omitted by the oversize policy: {parts})"
        lines.append(unverifiable)
        lines.append(
            f"  events applied {self.events}, after the position {self.events_after_position}"
            + (f", unreadable {self.unreadable_events}" if self.unreadable_events else "")
            + (f", not wpcdc records {self.foreign_records}" if self.foreign_records else "")
        )
        if self.rechecked:
            lines.append(
                f"  read again {self.rechecked} differing posts: {self.settled} had caught up"
            )
        lines += [f"warning: {w}" for w in self.warnings]
        if self.differences:
            lines.append("")
        for diff in self.differences[:max_report]:
            lines += _render_diff(diff)
        hidden = len(self.differences) - max_report
        if hidden > 0:
            lines.append(f"... and {hidden} more (--max-report)")
        lines.append("")
        lines.append(
            "OK: the topic matches the database."
            if self.ok
            else f"DIFFERENT: {len(self.differences)} posts differ between the topic and "
            "the database."
        )
        return "\n".join(lines)


def _render_diff(diff: PostDiff) -> list[str]:
    head = f"{diff.kind:<8} {diff.subject}"
    if not diff.fields:
        return [f"{head}  {diff.reason}"]
    lines = [f"{head}  {', '.join(dict.fromkeys(f.field for f in diff.fields))}"]
    for f in diff.fields:
        name = f"{f.field} {f.detail}" if f.detail else f.field
        lines.append(f"    {name}: topic {f.topic}  database {f.database}")
    if diff.more_fields:
        lines.append(f"    ... and {diff.more_fields} more fields")
    return lines


# --- verifying (pure orchestration over the adapters) --------------------------------


class DatabaseView(Protocol):
    """The database as one consistent snapshot shows it."""

    @property
    def position(self) -> Position: ...

    @property
    def warnings(self) -> Sequence[str]: ...

    def blogs(self) -> list[int]: ...

    def chunks(self, blog_id: int) -> Iterator[list[PostBundle]]:
        """Every post of the blog, in ID order, a bounded chunk at a time."""
        ...

    def posts(self, blog_id: int, ids: Sequence[int]) -> list[PostBundle]: ...


class Database(Protocol):
    def snapshot(self) -> contextlib.AbstractContextManager[DatabaseView]: ...


class Topic(Protocol):
    def read(self, state: TopicState) -> None:
        """Feed every record the topic holds now to ``state``."""
        ...


@dataclass(frozen=True)
class VerifyOptions:
    topic: str
    database: str
    config: FoldConfig
    blog_id: int | None = None
    # How long to wait for the streamer's checkpoint to reach the database read.
    wait: float = 60.0
    recheck_delay: float = 3.0
    checkpoint_poll: float = 0.2


def verify(
    *,
    database: Database,
    topic: Topic,
    checkpoint: Callable[[], Position | None],
    options: VerifyOptions,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> VerifyReport:
    """Compare the topic with the database; read differing posts once more before
    reporting them. ``checkpoint`` returns the streamer's saved position (None:
    no checkpoint here)."""
    run = _Verification(
        database=database,
        topic=topic,
        checkpoint=checkpoint,
        options=options,
        clock=clock,
        sleep=sleep,
        report=VerifyReport(topic=options.topic, database=options.database),
    )
    report = run.report
    diffs = run.read_everything()
    in_database = {d.key for d in diffs if d.kind != "extra"}
    if diffs:
        sleep(options.recheck_delay)
        report.rechecked = len(diffs)
        diffs = run.read_again([d.key for d in diffs])
        report.settled = report.rechecked - len(diffs)
    report.differences = sorted(diffs, key=lambda d: (d.kind, d.key))
    report.matching = report.posts_in_database - sum(1 for d in diffs if d.key in in_database)
    return report


@dataclass
class _Verification:
    database: Database
    topic: Topic
    checkpoint: Callable[[], Position | None]
    options: VerifyOptions
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    report: VerifyReport

    @property
    def ignored(self) -> frozenset[str]:
        return self.options.config.ignored_meta_keys

    def read_everything(self) -> list[PostDiff]:
        """Every post of the database against the whole topic up to the read's position."""
        report = self.report
        with self.database.snapshot() as view:
            report.position = str(view.position)
            report.warnings += view.warnings
            self._await_checkpoint(view.position)
            state = TopicState(
                ignored_meta_keys=self.ignored,
                cutoff=sequence_cutoff(view.position),
                blog_id=self.options.blog_id,
            )
            self.topic.read(state)
            _count_events(report, state)
            report.posts_on_topic = sum(1 for s in state.posts.values() if s.exists)
            seen: set[PostKey] = set()
            diffs: list[PostDiff] = []
            blogs = view.blogs()
            if self.options.blog_id is not None:
                blogs = [b for b in blogs if b == self.options.blog_id]
            for blog_id in blogs:
                for chunk in view.chunks(blog_id):
                    for bundle in chunk:
                        key = (blog_id, int(bundle.post["ID"]))
                        seen.add(key)
                        if not wanted(bundle, self.options.config):
                            continue
                        report.posts_in_database += 1
                        result = self._compare(bundle, state)
                        if result.unverifiable:
                            report.unverifiable_posts += 1
                            report.unverifiable.update(result.unverifiable)
                        if result.diff is not None:
                            diffs.append(result.diff)
            diffs += self._extra(state, (k for k in state.posts if k not in seen))
        return diffs

    def read_again(self, keys: Sequence[PostKey]) -> list[PostDiff]:
        """The differing posts read again at a new position; the differences that remain."""
        diffs: list[PostDiff] = []
        with self.database.snapshot() as view:
            self._await_checkpoint(view.position)
            state = TopicState(
                ignored_meta_keys=self.ignored,
                cutoff=sequence_cutoff(view.position),
                only=frozenset(keys),
            )
            self.topic.read(state)
            by_blog: dict[int, list[int]] = {}
            for blog_id, post_id in sorted(keys):
                by_blog.setdefault(blog_id, []).append(post_id)
            found: set[PostKey] = set()
            blogs = set(view.blogs())
            for blog_id, ids in by_blog.items():
                if blog_id not in blogs:
                    continue
                for start in range(0, len(ids), CHUNK):
                    for bundle in view.posts(blog_id, ids[start : start + CHUNK]):
                        key = (blog_id, int(bundle.post["ID"]))
                        found.add(key)
                        if not wanted(bundle, self.options.config):
                            continue
                        result = self._compare(bundle, state)
                        if result.diff is not None:
                            diffs.append(result.diff)
            diffs += self._extra(state, (k for k in keys if k not in found))
        return diffs

    def _compare(self, bundle: PostBundle, state: TopicState) -> Comparison:
        key = (bundle.blog_id, int(bundle.post["ID"]))
        return compare_post(database_post(bundle, self.ignored), state.posts.get(key))

    @staticmethod
    def _extra(state: TopicState, absent: Iterable[PostKey]) -> list[PostDiff]:
        """Differences for posts the database does not have."""
        diffs = []
        for key in absent:
            post_state = state.posts.get(key)
            extra = None if post_state is None else extra_post(key, post_state)
            if extra is not None:
                diffs.append(extra)
        return diffs

    def _await_checkpoint(self, position: Position) -> None:
        """Wait until the streamer has produced every event up to ``position``."""
        deadline = self.clock() + self.options.wait
        while True:
            saved = self.checkpoint()
            if saved is None:
                self.report.checkpoint = None
                self._warn(
                    "no streamer checkpoint here (checkpoint.path): cannot tell whether the "
                    "topic already holds every change up to the database read; run verify "
                    "where `wpcdc run` keeps its checkpoint"
                )
                return
            self.report.checkpoint = str(saved)
            if position <= saved:
                return
            if self.clock() >= deadline:
                self._warn(
                    f"the streamer checkpoint ({saved}) did not reach the database read "
                    f"({position}) within {self.options.wait:g} s: `wpcdc run` is behind or "
                    "stopped, so changes after its checkpoint are not on the topic yet"
                )
                return
            self.sleep(self.options.checkpoint_poll)

    def _warn(self, message: str) -> None:
        if message not in self.report.warnings:
            self.report.warnings.append(message)


def _count_events(report: VerifyReport, state: TopicState) -> None:
    report.events = state.events
    report.events_after_position = state.after_cutoff
    report.foreign_records = state.foreign
    report.unreadable_events = state.unreadable
    if state.unreadable:
        report.warnings.append(
            f"{state.unreadable} wpcdc events could not be read (unknown type or shape): "
            "their posts may show differences"
        )


# --- adapters: the database ------------------------------------------------------------


class MysqlDatabase:
    """Consistent snapshots of the WordPress database, tied to a binlog position by
    ``wpcdc.mysql.database.begin_consistent_snapshot`` (as ``wpcdc snapshot`` reads).

    Posts of ignored types and unreported auto-drafts are left out by the server
    (revisions carry whole bodies: most of the I/O on many sites).
    """

    def __init__(self, settings: MysqlSettings, config: FoldConfig, *, chunk: int = CHUNK) -> None:
        self.settings = settings
        self._chunk = chunk
        self._exclude_types = tuple(sorted(config.ignored_post_types))
        self._exclude_statuses = () if config.emit_auto_drafts else (AUTO_DRAFT,)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[DatabaseView]:
        # No read timeout: a chunk of a large site may take long.
        conn = connect(self.settings, read_timeout=None)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT VERSION(), @@version_comment")
                version, comment = cursor.fetchone() or ("", "")
            flavor = detect_flavor(str(version), str(comment or ""))
            point = begin_consistent_snapshot(conn, flavor)
            yield _MysqlView(self, conn, point.position)
        finally:
            with contextlib.suppress(pymysql.err.MySQLError, OSError):
                conn.rollback()
            with contextlib.suppress(Exception):
                conn.close()

    def read(
        self,
        conn: MysqlConnection,
        blog_id: int,
        *,
        after_id: int = 0,
        ids: Sequence[int] | None = None,
    ) -> list[PostBundle]:
        return read_post_bundles(
            conn,
            self.settings,
            blog_id,
            after_id=after_id,
            limit=self._chunk,
            ids=ids,
            exclude_post_types=self._exclude_types,
            exclude_statuses=self._exclude_statuses,
        )


@dataclass
class _MysqlView:
    database: MysqlDatabase
    conn: MysqlConnection
    position: Position
    warnings: tuple[str, ...] = ()

    def blogs(self) -> list[int]:
        return watched_blogs(self.conn, self.database.settings)

    def chunks(self, blog_id: int) -> Iterator[list[PostBundle]]:
        after = 0
        while bundles := self.database.read(self.conn, blog_id, after_id=after):
            yield bundles
            after = int(bundles[-1].post["ID"])

    def posts(self, blog_id: int, ids: Sequence[int]) -> list[PostBundle]:
        return self.database.read(self.conn, blog_id, ids=ids)


# --- adapters: the topic ----------------------------------------------------------------

# A fetch must hold the largest record the sink may write.
_POLL_MS: Final = 500


class KafkaTopic:
    """Reads a topic from its beginning to the end it has when the read starts.

    Joins no consumer group and commits nothing (as ``wpcdc tail``): every
    partition is assigned directly.
    """

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self._settings = settings
        self._topic = topic

    def read(self, state: TopicState) -> None:
        asyncio.run(self._read(state))

    async def _read(self, state: TopicState) -> None:
        async with topic_reader(self._settings, self._topic) as consumer:
            await self._consume(consumer, state)

    async def _consume(self, consumer: AIOKafkaConsumer, state: TopicState) -> None:
        partitions = sorted(consumer.partitions_for_topic(self._topic) or ())
        tps = [TopicPartition(self._topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        unfinished = {tp: ends[tp] for tp in tps if await consumer.position(tp) < ends[tp]}
        # A broker that stops answering mid-read must not hang verify.
        stall_limit = max(self._settings.request_timeout * 2, 10.0)
        last_progress = time.monotonic()
        while unfinished:
            fetched = await consumer.getmany(*unfinished, timeout_ms=_POLL_MS)
            for records in fetched.values():
                for record in records:
                    state.add_record(record.key, record.value)
                if records:
                    last_progress = time.monotonic()
            # Fetches return whole batches, so on brokers whose end offset is the
            # last batch's base offset + 1 (Tansu) the last batch still arrives in full.
            for tp, end in list(unfinished.items()):
                if await consumer.position(tp) >= end:
                    del unfinished[tp]
            if unfinished and time.monotonic() - last_progress > stall_limit:
                behind = ", ".join(f"partition {tp.partition}" for tp in unfinished)
                raise WpcdcError(
                    f"reading topic {self._topic!r} stalled for {stall_limit:g} s ({behind}); "
                    "check the broker"
                )


# --- wiring --------------------------------------------------------------------------


# MySQL error codes for refused logins and missing grants.
_ACCESS_DENIED: Final = frozenset({1044, 1045, 1142, 1143, 1227, 1698})


def run(
    settings: Settings,
    *,
    topic: str | None = None,
    blog_id: int | None = None,
    wait: float = 60.0,
    recheck_delay: float = 3.0,
) -> VerifyReport:
    """Verify the topic (default ``kafka.topic``) against the configured database."""
    name = topic or settings.kafka.topic
    store = FileCheckpointStore(settings.checkpoint.path)

    def saved_position() -> Position | None:
        saved = store.load()
        return saved.position if saved is not None else None

    options = VerifyOptions(
        topic=name,
        database=settings.mysql.database,
        config=settings.fold.to_config(),
        blog_id=blog_id,
        wait=wait,
        recheck_delay=recheck_delay,
    )
    mysql = settings.mysql
    try:
        return verify(
            database=MysqlDatabase(mysql, options.config),
            topic=KafkaTopic(settings.kafka, name),
            checkpoint=saved_position,
            options=options,
        )
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        message = exc.args[-1] if exc.args else type(exc).__name__
        if code in _ACCESS_DENIED:
            raise PreflightFailed(
                f"the database refused wpcdc: {message}. Run `wpcdc check` for the fix."
            ) from None
        raise WpcdcError(
            f"cannot read the database at {mysql.host}:{mysql.port}: {message}"
        ) from None
    except OSError as exc:
        raise WpcdcError(f"cannot read the database at {mysql.host}:{mysql.port}: {exc}") from None
