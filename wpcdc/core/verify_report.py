"""What ``wpcdc verify`` finds: the database's posts compared with the topic's, and
the report.

This module owns the comparison (:func:`compare_post`, :func:`extra_post`):
post fields as ``wpcdc.core.derive.to_post`` reads them, meta rows by
``meta_id`` (key and stored string), terms by ``term_taxonomy_id``, with the
stream's filters applied to the database side (:func:`database_post`); the
short excerpts a difference is shown with (:func:`excerpts`); and the report
(:class:`VerifyReport`: counts, text and JSON). Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from wpcdc.core import envelope as wire
from wpcdc.core.decode import text
from wpcdc.core.derive import to_post
from wpcdc.core.printable import printable
from wpcdc.core.snapshot_events import PostBundle
from wpcdc.core.verify_state import (
    EXCERPT_WIDTH,
    POST_FIELDS,
    Fingerprint,
    MetaSlot,
    PostKey,
    PostState,
    compact,
    database_meta,
)

# Field differences listed per post (the rest are counted).
FIELDS_PER_POST: Final = 10


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
                FieldDiff("meta", "(absent)", _excerpt(value), f"{printable(key)} #{meta_id}")
            )
        elif row is None:
            shown = _excerpt(slot.value) if slot.value_known else "(value omitted)"
            diffs.append(FieldDiff("meta", shown, "(absent)", f"{printable(slot.key)} #{meta_id}"))
        elif slot.key != row[0]:
            diffs.append(
                FieldDiff("meta", printable(slot.key), printable(row[0]), f"key of #{meta_id}")
            )
        elif not slot.value_known:
            unverifiable.append("meta.values")
        elif slot.value != row[1]:
            topic, database = excerpts(slot.value, row[1])
            diffs.append(FieldDiff("meta", topic, database, f"{printable(row[0])} #{meta_id}"))
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


def _excerpt(value: Any, start: int = 0) -> str:
    # Titles and meta come from anyone who can edit a post: no terminal escapes.
    if isinstance(value, Fingerprint):
        return f'"{printable(value.head)}…" ({value.length} chars)'
    if isinstance(value, str):
        if len(value) <= EXCERPT_WIDTH and start == 0:
            return orjson.dumps(printable(value)).decode()
        piece = value[start : start + EXCERPT_WIDTH]
        left = "…" if start else ""
        right = "…" if start + EXCERPT_WIDTH < len(value) else ""
        return f'"{left}{printable(piece)}{right}"'
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
