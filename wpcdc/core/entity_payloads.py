"""Payloads of the events about what is not a post: a term, an author, a menu.

Part of the event catalog (v1) of ``wpcdc.core.events``, which takes them into
its ``EventData``; kept here so that the catalog module stays small. Slotted
dataclasses, like every payload: orjson serializes them and pydantic derives
their JSON Schemas (``schemas/``). Deriving them from row changes is
``wpcdc.core.term_events``, ``wpcdc.core.author_events`` and
``wpcdc.core.menu_events``. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

TERM_CREATED: Final = "term_created"
TERM_UPDATED: Final = "term_updated"
TERM_DELETED: Final = "term_deleted"
TERM_EVENT_TYPES: Final = (TERM_CREATED, TERM_UPDATED, TERM_DELETED)
AUTHOR_EVENT: Final = "author_updated"
MENU_EVENT: Final = "menu_changed"


@dataclass  # no __slots__: see wpcdc.core.events
class TermLinks:
    """``term``: ``get_term_link()`` now (null when deleted); ``previous``: the
    link before the change, when it differs (slug or parent changed, or deleted)."""

    term: str | None
    previous: str | None = None


@dataclass  # no __slots__: see wpcdc.core.events
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


@dataclass  # no __slots__: see wpcdc.core.events
class AuthorLinks:
    """``author``: ``get_author_posts_url()`` on the main site now; ``previous``:
    before the change, when it differs (the nicename changed)."""

    author: str | None
    previous: str | None = None


@dataclass  # no __slots__: see wpcdc.core.events
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


@dataclass  # no __slots__: see wpcdc.core.events
class MenuItem:
    """A navigation menu item (a ``nav_menu_item`` post and its ``_menu_item_*``
    meta) that a change added to a menu, updated in it or removed from it. Its
    fields are as after the change (before it, for ``removed``) as far as the
    change wrote them: a field whose row the change did not write is null (wpcdc
    keeps no menu item meta). ``title`` is empty for an item that shows its
    object's title; ``url`` is a custom link's (empty for the others: item URLs
    are not resolved); ``type`` is ``custom``, ``post_type``, ``taxonomy`` or
    ``post_type_archive`` and ``object``/``object_id`` what it points to;
    ``parent`` the parent item's id (0: top level); ``order`` its position in the
    menu; only ``publish`` items show (``status``); ``attr_title`` and
    ``description`` are the post's excerpt and content. ``changed`` names the
    fields that differ (``updated``; ``meta`` for another meta key of the item),
    ``before`` their earlier values."""

    id: int
    op: Literal["added", "updated", "removed"]
    title: str | None = None
    url: str | None = None
    type: str | None = None
    object: str | None = None
    object_id: int | None = None
    parent: int | None = None
    order: int | None = None
    status: str | None = None
    target: str | None = None
    classes: Any = None
    xfn: str | None = None
    attr_title: str | None = None
    description: str | None = None
    changed: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)


@dataclass  # no __slots__: see wpcdc.core.events
class MenuData:
    """A navigation menu (a ``nav_menu`` term) changed: one event per menu per
    save. ``name`` and ``slug`` are the menu's after the change (before it, when
    deleted); ``menu_change`` says whether the menu itself was ``created``,
    ``renamed`` (``before`` then holds the name and slug that changed) or
    ``deleted`` (null: only items changed); ``items`` the items the change added,
    updated or removed, by id."""

    blog_id: int
    term_id: int
    name: str | None
    slug: str | None
    menu_change: Literal["created", "renamed", "deleted"] | None = None
    before: dict[str, Any] = field(default_factory=dict)
    items: list[MenuItem] = field(default_factory=list)
    cache_tags: list[str] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)
