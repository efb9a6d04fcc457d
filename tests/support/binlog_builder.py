"""Hand-built transactions shaped like what WordPress writes, for fold tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wpcdc.core.positions import Position
from wpcdc.core.rows import Op, RowChange, TableKind, TableRef, Transaction, TransactionPart


def post_row(post_id: int, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ID": post_id,
        "post_author": 1,
        "post_date": "2026-11-23 10:00:00",
        "post_date_gmt": "2026-11-23 10:00:00",
        "post_content": "Body",
        "post_title": "Title",
        "post_excerpt": "",
        "post_status": "draft",
        "comment_status": "open",
        "ping_status": "open",
        "post_password": "",
        "post_name": "title",
        "to_ping": "",
        "pinged": "",
        "post_modified": "2026-11-23 10:00:00",
        "post_modified_gmt": "2026-11-23 10:00:00",
        "post_content_filtered": "",
        "post_parent": 0,
        "guid": f"http://wpcdc.test/?p={post_id}",
        "menu_order": 0,
        "post_type": "post",
        "post_mime_type": "",
        "comment_count": 0,
    }
    row.update({f if f in row or f == "ID" else f"post_{f}": v for f, v in fields.items()})
    return row


def meta(meta_id: int, post_id: int, key: str, value: Any) -> dict[str, Any]:
    """A wp_postmeta row image."""
    return {"meta_id": meta_id, "post_id": post_id, "meta_key": key, "meta_value": value}


def rel(post_id: int, tt_id: int) -> dict[str, Any]:
    return {"object_id": post_id, "term_taxonomy_id": tt_id, "term_order": 0}


def tt(tt_id: int, term_id: int, taxonomy: str, count: int = 0) -> dict[str, Any]:
    return {
        "term_taxonomy_id": tt_id,
        "term_id": term_id,
        "taxonomy": taxonomy,
        "description": "",
        "parent": 0,
        "count": count,
    }


def term(term_id: int, slug: str, name: str | None = None) -> dict[str, Any]:
    return {"term_id": term_id, "name": name or slug.title(), "slug": slug, "term_group": 0}


@dataclass
class Binlog:
    """Numbers transactions like a binlog: positions grow, timestamps as told."""

    file: str = "binlog.000001"
    pos: int = 4
    timestamp: int = 1_800_000_000
    thread_id: int | None = None
    blog_id: int = 1
    gtid_seq: int = 0
    log: list[TransactionPart] = field(default_factory=list)

    def txn(
        self,
        *changes: tuple[TableKind, Op, dict[str, Any] | None, dict[str, Any] | None],
        after_seconds: int = 0,
        thread_id: int | None = None,
        blog_id: int | None = None,
    ) -> TransactionPart:
        self.timestamp += after_seconds
        self.gtid_seq += 1
        start = Position(self.file, self.pos)
        self.pos += 100 + 50 * len(changes)
        blog = blog_id if blog_id is not None else self.blog_id
        txn = Transaction(
            start=start,
            gtid=f"0-1-{self.gtid_seq}",
            thread_id=thread_id if thread_id is not None else self.thread_id,
            timestamp=self.timestamp,
        )
        rows = tuple(
            RowChange(TableRef(blog, kind), op, before, after, row)
            for row, (kind, op, before, after) in enumerate(changes)
        )
        part = TransactionPart(txn, rows, end=Position(self.file, self.pos))
        self.log.append(part)
        return part


def insert(kind: TableKind, row: dict[str, Any]) -> tuple[TableKind, Op, None, dict[str, Any]]:
    return (kind, Op.INSERT, None, row)


def update(
    kind: TableKind, before: dict[str, Any], after: dict[str, Any]
) -> tuple[TableKind, Op, dict[str, Any], dict[str, Any]]:
    return (kind, Op.UPDATE, before, after)


def delete(kind: TableKind, row: dict[str, Any]) -> tuple[TableKind, Op, dict[str, Any], None]:
    return (kind, Op.DELETE, row, None)


POSTS = TableKind.POSTS
POSTMETA = TableKind.POSTMETA
RELS = TableKind.TERM_RELATIONSHIPS
TAXONOMY = TableKind.TERM_TAXONOMY
TERMS = TableKind.TERMS
