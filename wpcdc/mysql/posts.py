"""Reading WordPress posts: the blogs a site has, the fold's starting mirror, post bundles.

This module owns the queries over the WordPress tables themselves: which blogs
have post tables (:func:`watched_blogs`), the post types/statuses and terms the
fold's mirror starts from (:func:`load_mirror`), and posts with their meta and
terms in primary-key chunks (:func:`read_post_bundles`), which snapshots,
re-snapshots and ``wpcdc verify`` all read through.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterable, Sequence
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
    blog, and the site state links need (the watched options and :func:`_blog_queries`
    of every blog, the network's users).

    Rows stream through an unbuffered cursor, so a large site does not need the
    whole result in memory twice.
    """
    mirror = Mirror()
    site = mirror.site
    names = sorted(WATCHED_OPTIONS)
    with contextlib.closing(connect(settings)) as conn:
        for blog in watched_blogs(conn, settings):
            prefix = blog_prefix(settings, blog)
            _stream(
                conn,
                f"SELECT option_name, option_value FROM {quote(prefix + 'options')} "
                f"WHERE option_name IN ({', '.join(['%s'] * len(names))})",
                functools.partial(site.load_options, blog),
                names,
                when_missing=f"{prefix}options is missing: "
                f"the links of blog {blog} lack a home URL",
            )
            for query, load in _blog_queries(mirror, prefix):
                _stream(conn, query, functools.partial(load, blog))
        # Network-wide; only the columns links use (never passwords or e-mails).
        users = settings.table_prefix + "users"
        _stream(
            conn,
            f"SELECT {', '.join(KEEP_COLUMNS[TableKind.USERS])} FROM {quote(users)}",
            site.load_users,
            when_missing=f"{users} is missing: events carry no author archive links",
        )
    return mirror


log = logging.getLogger("wpcdc.mirror")

_Load = Callable[[int, Iterable[Any]], None]


def _blog_queries(mirror: Mirror, prefix: str) -> list[tuple[str, _Load]]:
    """The queries of one blog and what loads their rows: the mirror's post types,
    statuses and terms; for links (wpcdc.core.site) post slugs, dates and authors,
    term parents and term memberships."""
    posts, taxonomy, terms, relationships = (
        quote(prefix + name) for name in ("posts", "term_taxonomy", "terms", "term_relationships")
    )
    site = mirror.site
    return [
        (f"SELECT ID, post_type, post_status, post_parent FROM {posts}", mirror.load_posts),
        (f"SELECT term_taxonomy_id, taxonomy, term_id FROM {taxonomy}", mirror.load_taxonomies),
        (f"SELECT term_id, slug, name FROM {terms}", mirror.load_terms),
        (
            "SELECT ID, post_name, CAST(post_date AS CHAR), post_author "
            f"FROM {posts} WHERE post_type <> 'revision'",
            site.load_posts,
        ),
        (f"SELECT term_id, parent FROM {taxonomy} WHERE parent <> 0", site.load_term_parents),
        (f"SELECT object_id, term_taxonomy_id FROM {relationships}", site.load_post_terms),
    ]


def _stream(
    conn: MysqlConnection,
    query: str,
    load: Callable[[Iterable[Any]], None],
    params: Sequence[object] | None = None,
    *,
    when_missing: str | None = None,
) -> None:
    """Hand the rows of ``query`` to ``load`` through an unbuffered cursor. With
    ``when_missing``, a missing table is that warning instead of an error: not
    WordPress as WordPress makes it, but its posts still stream."""
    with conn.cursor(pymysql.cursors.SSCursor) as cursor:
        try:
            cursor.execute(query, params)
        except pymysql.err.ProgrammingError as exc:
            if when_missing is None or exc.args[0] not in TABLE_MISSING:
                raise
            log.warning("%s", when_missing)
        else:
            load(cursor)


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
