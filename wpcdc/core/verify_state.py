"""The topic's posts as ``wpcdc verify`` rebuilds them, and the values it compares.

This module owns the materialized state (:class:`TopicState`): what a
consumer that deduplicates by id and applies each post's events in
``sequence`` order would hold, in memory proportional to the number of posts
(long strings are kept as a :class:`Fingerprint`). It also owns the values
both sides are compared in: a meta value as an event carries it
(:func:`stored_meta`, :func:`database_meta`) and the sequence that separates
events the database read has seen from later ones (:func:`sequence_cutoff`).
The comparison itself is in ``wpcdc.core.verify_report``. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from wpcdc.core import envelope as wire
from wpcdc.core.decode import decode_meta
from wpcdc.core.entity_payloads import AUTHOR_EVENT, MENU_EVENT, TERM_EVENT_TYPES
from wpcdc.core.events import (
    META_EVENT,
    POST_EVENT_TYPES,
    SITE_EVENT,
    SNAPSHOT_EVENT,
    TAXONOMY_EVENT,
    Post,
)
from wpcdc.core.menu_events import MENU_ITEM_TYPE
from wpcdc.core.positions import Coordinate, Position

PostKey = tuple[int, int]  # (blog_id, post_id)

_NOT_POSTS: Final = frozenset({SITE_EVENT, *TERM_EVENT_TYPES, AUTHOR_EVENT, MENU_EVENT})

POST_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in dataclasses.fields(Post))
# What the oversize policy's last step keeps of a post (see wpcdc.core.events._omit_all).
_IDENTIFIERS: Final = frozenset({"id", "type", "status", "password_protected"})
_BODIES: Final = {"post.content": "content", "post.excerpt": "excerpt"}

# Strings longer than this are kept as a fingerprint: post bodies would otherwise
# make the materialized state as large as the site's content.
LONG_STRING: Final = 256
# How much of a string the report shows (a fingerprint keeps that much of it).
EXCERPT_WIDTH: Final = 60


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


# --- materializing the topic --------------------------------------------------------


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
        if event.get("type") in _NOT_POSTS:
            return  # about the blog's settings, a term, an author, a menu: nothing to compare
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
        if not self._in_scope(target) or data.get("post_type") == MENU_ITEM_TYPE:
            return  # out of scope; or a menu item's, from before menu_changed existed
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
        blog_id, post_id = wire.parse_record_key(key)
        if blog_id is None or post_id is None:
            return True  # not a wpcdc key: let the envelope decide
        return self._in_scope((blog_id, post_id))

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
