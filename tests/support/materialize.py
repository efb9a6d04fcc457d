"""Rebuilding post state from the topic and comparing it with the database.

This is what the README's consumer rule says a consumer does: keep, per post and
kind (the post row, its meta, its terms), the highest ``sequence`` applied, skip
any event that is not newer, and apply events as state. If the state matches the
database, no change was lost, whatever grouping a replay chose; ``deduplicate``
checks that an id always names the same content.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.support.infra import MysqlEndpoint
from tests.support.streaming import Record

POST_FIELDS = {"title": "post_title", "content": "post_content", "status": "post_status"}


@dataclass
class PostState:
    post: dict[str, Any] | None = None
    deleted: bool = False
    meta: dict[int, tuple[str, Any]] = field(default_factory=dict)  # meta_id -> (key, raw)
    terms: set[int] = field(default_factory=set)  # term_taxonomy_ids


def deduplicate(records: list[Record]) -> list[dict[str, Any]]:
    """One event per id; a re-sent event must be identical to its original, but for
    its ``links``: they are computed from the site state known when the event is
    made, and a replay after a restart knows a newer one (README, "Links and cache
    tags"; e.g. the terms a post has by then)."""
    by_id: dict[str, Record] = {}
    for record in records:
        earlier = by_id.get(record.event["id"])
        if earlier is None:
            by_id[record.event["id"]] = record
        elif earlier.value != record.value:
            differences = _differences(_without_links(earlier.event), _without_links(record.event))
            assert not differences, (
                f"id {record.event['id']} re-sent with other content: " + "; ".join(differences)
            )
    return sorted((r.event for r in by_id.values()), key=lambda e: e["sequence"])


def _without_links(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "data": {k: v for k, v in event["data"].items() if k != "links"}}


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two decoded events differ, as ``path: a != b`` lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        found: list[str] = []
        for key in sorted(a.keys() | b.keys()):
            found += _differences(a.get(key), b.get(key), f"{path}.{key}")
        return found
    return [] if a == b else [f"{path or '.'}: {a!r} != {b!r}"]


# The register each event type writes: post state, meta, terms.
_REGISTER = {"post_meta_changed": ("meta",), "taxonomy_changed": ("terms",)}
_ALL = ("post", "meta", "terms")


def materialize(events: list[dict[str, Any]]) -> dict[int, PostState]:
    """Post state per post id (blog 1), by the consumer rule."""
    states: dict[int, PostState] = defaultdict(PostState)
    applied: dict[tuple[int, str], str] = {}
    for event in events:
        data = event["data"]
        if "post_id" not in data or data["blog_id"] != 1:
            continue  # a blog's settings, a term, an author: no post's state
        post_id, kind = data["post_id"], event["type"]
        registers = (
            _ALL if kind in ("post_snapshot", "post_deleted") else _REGISTER.get(kind, ("post",))
        )
        if all(applied.get((post_id, r), "") >= event["sequence"] for r in registers):
            continue  # not newer than what this consumer already applied
        for register in registers:
            applied[(post_id, register)] = max(
                applied.get((post_id, register), ""), event["sequence"]
            )
        state = states[post_id]
        if kind == "post_meta_changed":
            for change in data["changes"]:
                if change["op"] == "deleted":
                    state.meta.pop(change["meta_id"], None)
                else:
                    raw = change["raw"] if change["raw"] is not None else change["value"]
                    state.meta[change["meta_id"]] = (change["key"], raw)
        elif kind == "taxonomy_changed":
            state.terms |= {t["term_taxonomy_id"] for t in data["added"]}
            state.terms -= {t["term_taxonomy_id"] for t in data["removed"]}
        elif kind == "post_snapshot":
            # The whole post at one position: it replaces whatever came before.
            state.post, state.deleted = data["post"], False
            state.meta = {
                m["meta_id"]: (m["key"], m["raw"] if m["raw"] is not None else m["value"])
                for m in data["meta"]
            }
            state.terms = {t["term_taxonomy_id"] for t in data["terms"]}
        elif kind == "post_deleted":
            state.deleted = True
            state.meta, state.terms = {}, set()
        else:
            state.post, state.deleted = data["post"], False
    return states


def compare_with_database(
    states: dict[int, PostState],
    server: MysqlEndpoint,
    database: str,
    post_ids: list[int],
    ignored_meta: frozenset[str] = frozenset({"_edit_lock", "_edit_last", "_pingme", "_encloseme"}),
) -> list[str]:
    """Differences between the materialized state and the database, for these posts."""
    problems: list[str] = []
    ids = ",".join(str(i) for i in post_ids)
    rows = server.execute(
        f"SELECT ID, post_title, post_content, post_status FROM wp_posts WHERE ID IN ({ids})",
        database,
    )
    meta_rows = server.execute(
        f"SELECT post_id, meta_id, meta_key, meta_value FROM wp_postmeta WHERE post_id IN ({ids})",
        database,
    )
    term_rows = server.execute(
        f"SELECT object_id, term_taxonomy_id FROM wp_term_relationships WHERE object_id IN ({ids})",
        database,
    )
    meta: dict[int, dict[int, tuple[str, Any]]] = defaultdict(dict)
    for post_id, meta_id, key, value in meta_rows:
        if key not in ignored_meta:
            meta[post_id][meta_id] = (key, value)
    terms: dict[int, set[int]] = defaultdict(set)
    for post_id, tt_id in term_rows:
        terms[post_id].add(tt_id)
    for post_id, title, content, status in rows:
        state = states.get(post_id)
        if state is None or state.post is None:
            problems.append(f"post {post_id}: no event on the topic")
            continue
        for name, value in (("title", title), ("content", content), ("status", status)):
            if state.post[name] != value:
                problems.append(f"post {post_id}: {name} {state.post[name]!r} != {value!r}")
        if state.meta != meta[post_id]:
            problems.append(f"post {post_id}: meta {state.meta} != {meta[post_id]}")
        if state.terms != terms[post_id]:
            problems.append(f"post {post_id}: terms {state.terms} != {terms[post_id]}")
    missing = set(post_ids) - {row[0] for row in rows}
    for post_id in sorted(missing):
        if not states.get(post_id, PostState()).deleted:
            problems.append(f"post {post_id}: deleted in the database, not on the topic")
    return problems
