"""Reading WordPress posts: the blogs a site has, the fold's starting mirror, post bundles.

This module owns the queries over the WordPress tables themselves: which blogs
have post tables (:func:`watched_blogs`), the post types/statuses and terms the
fold's mirror starts from (:func:`load_mirror`), and posts with their meta and
terms in primary-key chunks (:func:`read_post_bundles`), which snapshots,
re-snapshots and ``wpcdc verify`` all read through.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pymysql
import pymysql.cursors

from wpcdc.config.settings import MysqlSettings
from wpcdc.core.events import TermRef
from wpcdc.core.mirror import Mirror
from wpcdc.core.rows import KEEP_COLUMNS, WATCHED_OPTIONS, TableKind, classify_table
from wpcdc.core.snapshot_events import PostBundle
from wpcdc.mysql.connection import MysqlConnection, connect, quote
from wpcdc.mysql.errors import TABLE_MISSING


def watched_blogs(conn: MysqlConnection, settings: MysqlSettings) -> list[int]:
    """The blogs whose post tables exist: 1 (the main site) and each multisite blog."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            (settings.database,),
        )
        names = [str(row[0]) for row in cursor.fetchall()]
    blogs = {
        ref.blog_id
        for ref in (classify_table(settings.table_prefix, name) for name in names)
        if ref is not None and ref.kind is TableKind.POSTS
    }
    return sorted(blogs)


def load_mirror(settings: MysqlSettings) -> Mirror:
    """Read what the fold's mirror starts from: post types/statuses and terms of every
    blog, and the site state links need (:mod:`wpcdc.core.site`): the watched
    options, post slugs, dates and authors, term parents and memberships, and the
    network's users. One pass over each table, whatever both need of it.

    Rows stream through an unbuffered cursor in chunks, so a large site does not
    need the whole result in memory twice.
    """
    mirror = Mirror()
    site = mirror.site
    with contextlib.closing(connect(settings)) as conn:
        for blog in watched_blogs(conn, settings):
            prefix = blog_prefix(settings, blog)
            names = sorted(WATCHED_OPTIONS)
            options = _optional_rows(
                conn,
                f"SELECT option_name, option_value FROM {quote(prefix + 'options')} "
                f"WHERE option_name IN ({', '.join(['%s'] * len(names))})",
                names,
                missing=f"{prefix}options is missing: the links of blog {blog} lack a home URL",
            )
            site.load_options(blog, options)
            posts = _rows(
                conn,
                "SELECT ID, post_type, post_status, post_parent, post_name, "
                f"CAST(post_date AS CHAR), post_author FROM {quote(prefix + 'posts')}",
            )
            for chunk in posts:
                mirror.load_posts(blog, (row[:4] for row in chunk))
                site.load_posts(
                    blog,
                    ((row[0], *row[4:]) for row in chunk if row[1] not in _REVISION),
                )
            taxonomies = _rows(
                conn,
                "SELECT term_taxonomy_id, taxonomy, term_id, parent FROM "
                + quote(prefix + "term_taxonomy"),
            )
            for chunk in taxonomies:
                mirror.load_taxonomies(blog, (row[:3] for row in chunk))
                site.load_term_parents(blog, (row[2:] for row in chunk))
            for chunk in _rows(conn, f"SELECT term_id, slug, name FROM {quote(prefix + 'terms')}"):
                mirror.load_terms(blog, chunk)
            relationships = _rows(
                conn,
                f"SELECT object_id, term_taxonomy_id FROM {quote(prefix + 'term_relationships')}",
            )
            site.load_post_terms(blog, (row for chunk in relationships for row in chunk))
        users = settings.table_prefix + "users"
        # Network-wide; only the columns links use (never passwords or e-mails).
        site.load_users(
            _optional_rows(
                conn,
                f"SELECT {', '.join(KEEP_COLUMNS[TableKind.USERS])} FROM {quote(users)}",
                missing=f"{users} is missing: events carry no author archive links",
            )
        )
    return mirror


log = logging.getLogger("wpcdc.mirror")

# A post type as the unbuffered cursor may give it (text or bytes): links skip revisions.
_REVISION = ("revision", b"revision")
_CHUNK = 10_000


def _rows(conn: MysqlConnection, sql: str, params: Sequence[Any] = ()) -> Iterator[list[Any]]:
    """The rows of ``sql``, ``_CHUNK`` at a time, through an unbuffered cursor."""
    with conn.cursor(pymysql.cursors.SSCursor) as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(_CHUNK):
            yield list(chunk)


def _optional_rows(
    conn: MysqlConnection, sql: str, params: Sequence[Any] = (), *, missing: str
) -> Iterator[Any]:
    """The rows of ``sql``; none, with ``missing`` logged, when its table does not
    exist (not WordPress as WordPress makes it: the posts still stream)."""
    try:
        for chunk in _rows(conn, sql, params):
            yield from chunk
    except pymysql.err.ProgrammingError as exc:
        if exc.args[0] not in TABLE_MISSING:
            raise
        log.warning("%s", missing)


def blog_prefix(settings: MysqlSettings, blog_id: int) -> str:
    return settings.table_prefix if blog_id == 1 else f"{settings.table_prefix}{blog_id}_"


_ZERO_DATE = "0000-00-00 00:00:00"


def read_post_bundles(
    conn: MysqlConnection,
    settings: MysqlSettings,
    blog_id: int,
    *,
    after_id: int = 0,
    limit: int = 500,
    ids: Sequence[int] | None = None,
    max_id: int | None = None,
    post_types: Sequence[str] | None = None,
    exclude_post_types: Sequence[str] = (),
    exclude_statuses: Sequence[str] = (),
) -> list[PostBundle]:
    """Posts of one blog in primary-key order (``ID > after_id``, at most ``limit``),
    or exactly ``ids``, each with its meta rows and resolved terms. The server
    leaves out ``exclude_post_types`` and ``exclude_statuses`` (revisions carry
    whole bodies: not reading them is most of a snapshot's I/O on many sites).

    Three queries per chunk, all in the caller's transaction: run them inside a
    consistent snapshot to get one point in time.
    """
    prefix = blog_prefix(settings, blog_id)
    where, params = ["ID > %s"], [after_id]
    if ids is not None:
        if not ids:
            return []
        where = [f"ID IN ({', '.join(['%s'] * len(ids))})"]
        params = list(ids)
    if max_id is not None:
        where.append("ID <= %s")
        params.append(max_id)
    if post_types:
        where.append(f"post_type IN ({', '.join(['%s'] * len(post_types))})")
        params.extend(post_types)  # type: ignore[arg-type]
    if exclude_post_types:
        where.append(f"post_type NOT IN ({', '.join(['%s'] * len(exclude_post_types))})")
        params.extend(exclude_post_types)  # type: ignore[arg-type]
    if exclude_statuses:
        where.append(f"post_status NOT IN ({', '.join(['%s'] * len(exclude_statuses))})")
        params.extend(exclude_statuses)  # type: ignore[arg-type]
    with conn.cursor(pymysql.cursors.DictCursor) as cursor:
        cursor.execute(
            f"SELECT * FROM {quote(prefix + 'posts')} WHERE {' AND '.join(where)} "
            f"ORDER BY ID LIMIT {int(limit) if ids is None else len(ids)}",
            params,
        )
        posts: list[dict[str, Any]] = [
            {k: (None if v == _ZERO_DATE else v) for k, v in row.items()}
            for row in cursor.fetchall()
        ]
        if not posts:
            return []
        found = [int(row["ID"]) for row in posts]
        marks = ", ".join(["%s"] * len(found))
        cursor.execute(
            f"SELECT meta_id, post_id, meta_key, meta_value FROM {quote(prefix + 'postmeta')} "
            f"WHERE post_id IN ({marks}) ORDER BY meta_id",
            found,
        )
        meta: dict[int, list[dict[str, Any]]] = {}
        for row in cursor.fetchall():
            meta.setdefault(int(row["post_id"]), []).append(row)
        cursor.execute(
            "SELECT r.object_id, tt.term_taxonomy_id, tt.taxonomy, t.term_id, t.slug, t.name "
            f"FROM {quote(prefix + 'term_relationships')} r "
            f"JOIN {quote(prefix + 'term_taxonomy')} tt ON tt.term_taxonomy_id = r.term_taxonomy_id "
            f"JOIN {quote(prefix + 'terms')} t ON t.term_id = tt.term_id "
            f"WHERE r.object_id IN ({marks}) AND tt.taxonomy <> 'link_category'",
            found,
        )
        terms: dict[int, list[TermRef]] = {}
        for row in cursor.fetchall():
            terms.setdefault(int(row["object_id"]), []).append(
                TermRef(
                    term_taxonomy_id=int(row["term_taxonomy_id"]),
                    taxonomy=str(row["taxonomy"]),
                    term_id=int(row["term_id"]),
                    slug=str(row["slug"]),
                    name=str(row["name"]),
                )
            )
    return [
        PostBundle(
            blog_id=blog_id,
            post=post,
            meta=meta.get(int(post["ID"]), []),
            terms=terms.get(int(post["ID"]), []),
        )
        for post in posts
    ]
