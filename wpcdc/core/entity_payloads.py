"""Payloads of the events about what is not a post: a term, an author.

Part of the event catalog (v1) of ``wpcdc.core.events``, which takes them into
its ``EventData``; kept here so that the catalog module stays small. Slotted
dataclasses, like every payload: orjson serializes them and pydantic derives
their JSON Schemas (``schemas/``). Deriving them from row changes is
``wpcdc.core.term_events`` and ``wpcdc.core.author_events``. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

TERM_CREATED: Final = "term_created"
TERM_UPDATED: Final = "term_updated"
TERM_DELETED: Final = "term_deleted"
TERM_EVENT_TYPES: Final = (TERM_CREATED, TERM_UPDATED, TERM_DELETED)
AUTHOR_EVENT: Final = "author_updated"


@dataclass(slots=True)
class TermLinks:
    """``term``: ``get_term_link()`` now (null when deleted); ``previous``: the
    link before the change, when it differs (slug or parent changed, or deleted)."""

    term: str | None
    previous: str | None = None


@dataclass(slots=True)
class TermData:
    """A term as it is after the change (before it, for ``term_deleted``).
    ``changed`` names the fields that differ among name, slug, parent and
    description, ``before``/``after`` hold their values. ``description`` is
    null when the change did not touch ``term_taxonomy`` (wpcdc keeps no
    descriptions). ``posts_moved``: how many posts' permalinks the change moves
    (see README, "Links and cache tags")."""

    blog_id: int
    term_id: int
    term_taxonomy_id: int | None
    taxonomy: str | None
    name: str | None
    slug: str | None
    parent: int | None
    description: str | None
    changed: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    posts_moved: int = 0
    links: TermLinks | None = None
    cache_tags: list[str] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AuthorLinks:
    """``author``: ``get_author_posts_url()`` on the main site now; ``previous``:
    before the change, when it differs (the nicename changed)."""

    author: str | None
    previous: str | None = None


@dataclass(slots=True)
class AuthorData:
    """A user's public names changed (``{prefix}users``, the network's). ``changed``
    names them among nicename and display_name, ``before``/``after`` their values."""

    user_id: int
    nicename: str | None
    display_name: str | None
    changed: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    links: AuthorLinks | None = None
    cache_tags: list[str] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)
