"""Menu events: a navigation menu changed (``menu_changed``), one per menu per save.

How WordPress writes a menu (wp-includes/nav-menu.php): the menu is a term of
taxonomy ``nav_menu`` (``wp_update_nav_menu_object()``: ``wp_insert_term()`` or
``wp_update_term()``); each item is a post of type ``nav_menu_item``
(``wp_update_nav_menu_item()``: ``wp_insert_post()``, the item's
term_relationships row to the menu's term, its ``_menu_item_type``,
``_menu_item_menu_item_parent``, ``_menu_item_object_id``, ``_menu_item_object``,
``_menu_item_target``, ``_menu_item_classes``, ``_menu_item_xfn`` and
``_menu_item_url`` meta, then ``wp_update_post()`` for an existing item); an item
is removed by ``wp_delete_post()`` (its meta, its relationships, its row), and
``wp_delete_nav_menu()`` removes every item, then the term. The admin's "Save
Menu" writes every item of the menu.

Every row of a ``nav_menu_item`` post (wp_posts, wp_postmeta,
wp_term_relationships) and of a ``nav_menu`` term (wp_terms, wp_term_taxonomy)
folds into the blog's one menus group (key ``(-blog, 0)``, wpcdc.core.group):
a new item's post row comes before the relationship that names its menu, so the
menu cannot be the key. At close, :func:`menu_datas` splits the group by menu
and makes one ``menu_changed`` per menu it changed (key
``"{blog}:menu/{term_id}"``, subject ``menu/{term_id}``):

- an item's menu is the ``nav_menu`` term among its relationships, before and
  after: as the group's relationship rows say, else (relationships the group
  did not touch) as the mirror's memberships; an item moved to another menu is
  removed from the one and added to the other;
- ``items``: each item added, updated or removed, with the fields the group's
  rows show (:class:`~wpcdc.core.entity_payloads.MenuItem`); live, an item
  whose shown fields did not change (the ``post_modified`` that "Save Menu"
  writes for every item) is not listed, and a menu with nothing listed and no
  change of its own makes no event;
- ``menu_change``: the menu was created, renamed (name or slug) or deleted; a
  new description alone (menus do not show it) makes no event;
- an item in no menu (a draft orphan the Customizer keeps while editing)
  makes no event until it joins one;
- a replayed group states everything it touched (see wpcdc.core.derive): every
  item, with every field it shows in ``changed``; a menu whose wp_terms row it
  touched as renamed; an item or menu created and deleted within it as removed
  or deleted.

``cache_tags``: ``menu:{blog}:{term_id}`` and ``site:{blog}`` (menus show on
every page of most themes). No links: where a menu shows (its theme locations,
an option of the theme) and each item's URL are not resolved. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from wpcdc.core.decode import decode_meta, text
from wpcdc.core.entity_payloads import MENU_EVENT, MenuData, MenuItem
from wpcdc.core.mirror import MENU_TAXONOMY, Mirror
from wpcdc.core.rows import Row, TableKind

if TYPE_CHECKING:
    from wpcdc.core.events import EventData
    from wpcdc.core.group import Group

# The post type of navigation menu items.
MENU_ITEM_TYPE: Final = "nav_menu_item"

# Item field <- wp_posts column, and <- _menu_item_* meta key.
_POST_FIELDS: Final = {
    "title": "post_title",
    "order": "menu_order",
    "status": "post_status",
    "attr_title": "post_excerpt",
    "description": "post_content",
}
_META_FIELDS: Final = {
    "_menu_item_type": "type",
    "_menu_item_menu_item_parent": "parent",
    "_menu_item_object_id": "object_id",
    "_menu_item_object": "object",
    "_menu_item_target": "target",
    "_menu_item_classes": "classes",
    "_menu_item_xfn": "xfn",
    "_menu_item_url": "url",
}
# In MenuItem's order.
ITEM_FIELDS: Final[tuple[str, ...]] = (
    "title",
    "url",
    "type",
    "object",
    "object_id",
    "parent",
    "order",
    "status",
    "target",
    "classes",
    "xfn",
    "attr_title",
    "description",
)
_INTEGERS: Final = frozenset({"object_id", "parent", "order"})
# Another meta key of an item changed (plugins keep their own there).
OTHER_META: Final = "meta"

Pair = list[Row | None]  # [row before the group's first change, after its last]


@dataclass(slots=True)
class _Item:
    """What the group holds of one item."""

    post: Pair | None = None
    meta: dict[str, Pair] = field(default_factory=dict)
    other_meta: list[Pair] = field(default_factory=list)
    # menu term id -> [a member before the group, after it]
    menus: dict[int, list[bool]] = field(default_factory=dict)


@dataclass(slots=True)
class _Menu:
    """What the group holds of one menu's own rows."""

    names: Pair | None = None
    taxa: Pair | None = None


def menu_entity(data: EventData) -> str | None:
    """What a menu event is about (its key and subject): ``menu/{term_id}``."""
    return f"menu/{data.term_id}" if isinstance(data, MenuData) else None


def menu_datas(group: Group, mirror: Mirror | None) -> list[tuple[str, EventData]]:
    """One ``menu_changed`` per menu the closed menus group changed (module docstring)."""
    blog_id = -group.blog_id
    mirror = mirror if mirror is not None else Mirror()
    items, menus = _split(group, blog_id, mirror)
    listed: dict[int, list[MenuItem]] = {}
    memberships = mirror.site.blog(blog_id).post_terms
    for item_id in sorted(items):
        item = items[item_id]
        # Relationships the group did not touch: a member of those menus throughout.
        for tt_id in memberships.get(item_id, ()):
            menu = _menu_of(mirror, blog_id, tt_id)
            if menu is not None and menu not in item.menus:
                item.menus[menu] = [True, True]
        for menu, (was, stays) in item.menus.items():
            reported = _item(item_id, item, group, mirror, blog_id, was, stays)
            if reported is not None:
                listed.setdefault(menu, []).append(reported)
    datas: list[tuple[str, EventData]] = []
    for term_id in sorted({*listed, *menus}):
        data = _menu(blog_id, term_id, menus.get(term_id), group.replayed, mirror)
        data.items = listed.get(term_id, [])
        if data.items or data.menu_change is not None:
            datas.append((MENU_EVENT, data))
    return datas


def _split(group: Group, blog_id: int, mirror: Mirror) -> tuple[dict[int, _Item], dict[int, _Menu]]:
    """The group's rows by item and by menu."""
    items: dict[int, _Item] = {}
    menus: dict[int, _Menu] = {}
    for (kind, row_id, tt_id), pair in (group.rows or {}).items():
        if kind is TableKind.POSTS:
            items.setdefault(row_id, _Item()).post = pair
        elif kind is TableKind.POSTMETA:
            row = pair[1] or pair[0]
            if row is None:
                continue  # added and deleted within the group: its item's rows tell
            item = items.setdefault(int(row["post_id"]), _Item())
            name = _META_FIELDS.get(str(text(row.get("meta_key"))))
            if name is None:
                item.other_meta.append(pair)
            else:
                item.meta[name] = pair
        elif kind is TableKind.TERM_RELATIONSHIPS:
            menu = _menu_of(mirror, blog_id, tt_id)
            if menu is not None:  # another taxonomy's term: no menu's business
                membership = [pair[0] is not None, pair[1] is not None]
                items.setdefault(row_id, _Item()).menus[menu] = membership
        elif kind is TableKind.TERMS:
            menus.setdefault(row_id, _Menu()).names = pair
        elif kind is TableKind.TERM_TAXONOMY:
            row = pair[1] or pair[0]
            # Added and deleted within the group: the mirror keeps deleted ids.
            menu = int(row.get("term_id") or 0) if row else _menu_of(mirror, blog_id, row_id)
            if menu:
                menus.setdefault(menu, _Menu()).taxa = pair
    return items, menus


def _menu_of(mirror: Mirror, blog_id: int, tt_id: int) -> int | None:
    """The menu (term id) a term_taxonomy id is, None when it is no menu. The mirror
    keeps deleted terms' ids, so a deleted menu's relationships still resolve."""
    info = mirror.blog(blog_id).taxonomies.get(tt_id)
    return info.term_id if info is not None and info.taxonomy == MENU_TAXONOMY else None


def _item(
    item_id: int,
    item: _Item,
    group: Group,
    mirror: Mirror,
    blog_id: int,
    was: bool,
    stays: bool,
) -> MenuItem | None:
    """The item as one menu's event lists it, or None when it has nothing to say."""
    if item.post is not None:
        existed, exists = item.post[0] is not None, item.post[1] is not None
    else:  # the group did not touch its post row: as the mirror knows it
        existed = exists = mirror.post(blog_id, item_id) is not None
    before, after = existed and was, exists and stays
    op: Literal["added", "updated", "removed"]
    if before and after:
        op = "updated"
    elif after:
        op = "added"
    elif before or group.replayed:
        # Removed; or in a replayed group, added and removed within it: its
        # addition may be on the topic already.
        op = "removed"
    else:
        return None  # added and removed within the group, or never in this menu
    side = 0 if op == "removed" else 1
    old, new = _fields(item, 0), _fields(item, side)
    reported = MenuItem(id=item_id, op=op)
    for name, value in new.items():
        setattr(reported, name, value)
    if op == "updated":
        shown = [f for f in ITEM_FIELDS if f in old]
        changed = shown if group.replayed else [f for f in shown if old[f] != new[f]]
        if any(group.replayed or pair[0] != pair[1] for pair in item.other_meta):
            changed.append(OTHER_META)
        if not changed:
            return None  # only bookkeeping columns (post_modified) changed
        reported.changed = changed
        reported.before = {f: old[f] for f in changed if f != OTHER_META}
    return reported


def _fields(item: _Item, side: int) -> dict[str, Any]:
    """The item's fields before (0) or after (1) the group, those its rows show."""
    values: dict[str, Any] = {}
    if item.post is not None:
        row = item.post[side] or item.post[1 - side]
        if row is not None:
            for name, column in _POST_FIELDS.items():
                values[name] = _value(name, text(row.get(column)))
    for name, pair in item.meta.items():
        row = pair[side]
        values[name] = (
            None if row is None else _value(name, decode_meta(row.get("meta_value")).value)
        )
    return values


def _value(name: str, value: Any) -> Any:
    if name in _INTEGERS and value is not None:
        try:
            return int(value)
        except (TypeError, ValueError):
            return value  # not what WordPress writes: as stored
    return value


def _menu(
    blog_id: int, term_id: int, menu: _Menu | None, replayed: bool, mirror: Mirror
) -> MenuData:
    """The menu's part of its event: its name and slug, and its own change."""
    known = mirror.blog(blog_id).terms.get(term_id)
    data = MenuData(
        blog_id=blog_id,
        term_id=term_id,
        name=None if known is None else known.name,
        slug=None if known is None else known.slug,
        cache_tags=[f"menu:{blog_id}:{term_id}", f"site:{blog_id}"],
    )
    if menu is None:
        return data  # only its items changed
    seen = [pair for pair in (menu.names, menu.taxa) if pair is not None]
    existed = all(pair[0] is not None for pair in seen)
    exists = all(pair[1] is not None for pair in seen)
    names = menu.names
    if names is not None and (names[1] or names[0]) is not None:
        row = names[1] or names[0]
        assert row is not None
        data.name, data.slug = _str(row.get("name")), _str(row.get("slug"))
    if existed and exists:
        if names is None or names[0] is None:
            return data  # its description or parent: not shown
        before = {"name": _str(names[0].get("name")), "slug": _str(names[0].get("slug"))}
        now = {"name": data.name, "slug": data.slug}
        data.before = {f: v for f, v in before.items() if replayed or v != now[f]}
        if data.before:
            data.menu_change = "renamed"
    elif exists:
        data.menu_change = "created"
    elif existed or replayed:
        # Deleted; or created and deleted within a replayed group: say it is gone.
        data.menu_change = "deleted"
    return data


def _str(value: Any) -> str | None:
    value = text(value)
    return None if value is None else str(value)
