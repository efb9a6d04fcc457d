"""Row decoding alone: the fast decoder (generated and interpreted) next to mysql-replication.

Builds the bytes of TABLE_MAP and WRITE_ROWS events for WordPress's wp_posts
(23 columns, a ~2 KB body, utf8mb4, FULL metadata) and wp_postmeta layouts, as
MySQL writes them (ROWS v2), then decodes the same bytes:

- ``fast``: :class:`wpcdc.core.binlog_rows.RowsDecoder` ``rows()`` (generated code);
- ``interpreted``: its column-by-column fallback;
- ``library``: mysql-replication with wpcdc's patches (wpcdc.mysql.library), each
  event wrapped and decoded as its stream reader does (``BinLogPacketWrapper``,
  the event's ``rows``; tests/support/binlog_bytes.py); the TABLE_MAP is parsed
  once, as with ``freeze_schema``.

Two shapes: one row per event (WordPress autocommits every statement) and
100 rows per event (a bulk statement). Prints the median rows/s of ``--rounds``
(and the best: on a loaded machine the closest to the decoder's own speed).
No server needed. Run on demand: ``.venv/bin/python benchmarks/bench_decode.py``.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.binlog_bytes import (
    WRITE,
    Col,
    LibraryDecoder,
    datetime2,
    image,
    rows_event,
    string,
    table_map_event,
)
from wpcdc.core.binlog_rows import RowsDecoder
from wpcdc.core.table_map import parse_table_map


def varchar(name: str, chars: int, nullable: bool = False) -> Col:
    return Col(name, 15, (chars * 4).to_bytes(2, "little"), nullable=nullable)


def text(name: str, length_size: int, nullable: bool = False) -> Col:
    return Col(name, 252, bytes([length_size]), nullable=nullable)


BIGINT_U = {"type": 8, "unsigned": True}
WP_POSTS = [
    Col("ID", **BIGINT_U),  # type: ignore[arg-type]
    Col("post_author", **BIGINT_U),  # type: ignore[arg-type]
    Col("post_date", 18, b"\x00"),
    Col("post_date_gmt", 18, b"\x00"),
    text("post_content", 4),
    text("post_title", 2),
    text("post_excerpt", 2),
    varchar("post_status", 20),
    varchar("comment_status", 20),
    varchar("ping_status", 20),
    varchar("post_password", 255),
    varchar("post_name", 200),
    text("to_ping", 2),
    text("pinged", 2),
    Col("post_modified", 18, b"\x00"),
    Col("post_modified_gmt", 18, b"\x00"),
    text("post_content_filtered", 4),
    Col("post_parent", **BIGINT_U),  # type: ignore[arg-type]
    varchar("guid", 255),
    Col("menu_order", 3),
    varchar("post_type", 20),
    varchar("post_mime_type", 100),
    Col("comment_count", 8),
]
WP_POSTMETA = [
    Col("meta_id", **BIGINT_U),  # type: ignore[arg-type]
    Col("post_id", **BIGINT_U),  # type: ignore[arg-type]
    varchar("meta_key", 255, nullable=True),
    text("meta_value", 4, nullable=True),
]
BODY = "Lorem ipsum dolor sit amet. " * 73


def post_image(i: int) -> bytes:
    when = datetime2(2026, 11, 23, 10, i % 60, 5)
    u64 = struct.Struct("<Q").pack
    return image(
        [
            u64(i),
            u64(1),
            when,
            when,
            string(BODY, 4),
            string(f"Post {i} ünï 😀", 2),
            string("", 2),
            string("publish"),
            string("open"),
            string("open"),
            string("", 2),
            string(f"post-{i}", 2),
            string("", 2),
            string("", 2),
            when,
            when,
            string("", 4),
            u64(0),
            string(f"http://example.test/?p={i}", 2),
            struct.pack("<i", 0),
            string("post"),
            string("", 2),
            struct.pack("<q", 0),
        ]
    )


def meta_image(i: int) -> bytes:
    value = None if i % 10 == 0 else string(f"Subtitle {i}", 4)
    return image([struct.pack("<Q", i), struct.pack("<Q", i // 2), string("subtitle", 2), value])


def measure(
    name: str, decode: Callable[[], int], rounds: int, results: dict[str, list[float]]
) -> None:
    for _ in range(rounds):
        began = time.perf_counter()
        rows = decode()
        results.setdefault(name, []).append(rows / (time.perf_counter() - began))


def run(
    label: str,
    cols: list[Col],
    make: Callable[[int], bytes],
    per_event: int,
    total: int,
    rounds: int,
) -> None:
    tm_body = table_map_event(42, "wordpress", label, cols)
    table_map = parse_table_map(tm_body, 8, mariadb=False)
    fast = RowsDecoder(table_map)
    events = [
        rows_event(WRITE, 42, len(cols), [make(i + j) for j in range(per_event)])
        for i in range(0, total, per_event)
    ]
    library = LibraryDecoder(tm_body)
    # Same values from both before timing anything.
    for kind, body, header in events[:3]:
        assert fast.rows(kind, body, header) == library.rows(kind, body), label

    def with_fast() -> int:
        return sum(len(fast.rows(kind, body, header)) for kind, body, header in events)

    def with_interpreter() -> int:
        return sum(len(fast.rows(k, body, h, interpreted=True)) for k, body, h in events)

    def with_library() -> int:
        return sum(len(library.rows(kind, body)) for kind, body, _ in events)

    results: dict[str, list[float]] = {}
    for _ in range(rounds):
        measure("fast", with_fast, 1, results)
        measure("interpreted", with_interpreter, 1, results)
        measure("library", with_library, 1, results)
    base = statistics.median(results["library"])
    print(f"{label}, {per_event} row(s) per event, {total} rows:")
    for name, values in results.items():
        median = statistics.median(values)
        print(
            f"  {name:12s} {median:>10,.0f} rows/s  ({median / base:.1f}x the library)"
            f"  best {max(values):,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for per_event in (1, 100):
        run("wp_posts", WP_POSTS, post_image, per_event, args.rows, args.rounds)
        run("wp_postmeta", WP_POSTMETA, meta_image, per_event, args.rows, args.rounds)


if __name__ == "__main__":
    main()
