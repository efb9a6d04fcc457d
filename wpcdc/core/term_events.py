"""Term events: a term created, changed (name, slug, parent, description) or deleted.

``wp_insert_term()``, ``wp_update_term()`` and ``wp_delete_term()`` write a
term's ``{prefix}terms`` row and its ``{prefix}term_taxonomy`` row in a burst
of autocommitted statements; the fold groups them by term (key ``(blog,
-term_id)``, see wpcdc.core.group) like a post's rows, and a closed group
becomes at most one event: ``term_created``, ``term_updated`` or
``term_deleted`` (key ``"{blog}:term/{term_id}"``, subject ``term/{term_id}``).

- A ``term_taxonomy`` update that changes nothing but ``count`` (WordPress
  recounts a term on every post save) is routed to no group: it only feeds the
  mirror, as before (:func:`term_target`).
- A navigation menu (taxonomy ``nav_menu``) makes no term event: its rows fold
  with its items' into ``menu_changed`` (wpcdc.core.menu_events).
- A row the group did not touch did not change: its values come from the
  mirror (the term's taxonomy, slug, name, parent; the description, which the
  mirror does not keep, is then null).
- Live, a group reports net changes (renamed and renamed back: nothing); a
  replayed group states every field of the rows it touched, and a term created
  and deleted within it as deleted (see wpcdc.core.derive).

``links`` (computed from the site state at close, like every link) hold
``get_term_link()`` now and before; ``posts_moved`` counts the posts whose
permalink the change moves (:func:`posts_moved`); ``cache_tags`` are
``site:{blog}``, and for a taxonomy with public archives ``term:{blog}:{term_id}``
and ``taxonomy:{blog}:{taxonomy}``. Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from wpcdc.core.decode import text
from wpcdc.core.entity_payloads import (
    TERM_CREATED,
    TERM_DELETED,
    TERM_UPDATED,
    TermData,
    TermLinks,
)
from wpcdc.core.group import PostKey, menus_key, term_key
from wpcdc.core.links import PRIVATE_TAXONOMIES
from wpcdc.core.mirror import MENU_TAXONOMY
from wpcdc.core.permalinks import TermFacts, ancestors, permalink_category, term_link
from wpcdc.core.rows import Op, Row, RowChange, TableKind
from wpcdc.core.site import AsItWas, BlogView

if TYPE_CHECKING:
    from wpcdc.core.events import EventData
    from wpcdc.core.group import Group
    from wpcdc.core.mirror import Mirror

# The reported fields, and the table each comes from.
TERM_FIELDS: Final = ("name", "slug", "parent", "description")
_FROM_TERMS: Final = ("name", "slug")
_FROM_TAXONOMY: Final = ("parent", "description")
# The term_taxonomy columns whose change is a term change (count is not).
_TERM_COLUMNS: Final = ("term_id", "taxonomy", "description", "parent")


def term_target(change: RowChange, mirror: Mirror) -> PostKey | None:
    """The term group of a ``terms`` or ``term_taxonomy`` row change, the blog's
    menus group for a navigation menu's (wpcdc.core.menu_events), or None: a
    count-only update (or an id that is no WordPress term's) makes no event."""
    row = change.image
    term_id = int(row.get("term_id") or 0)
    if term_id < 1:
        return None
    blog_id = change.table.blog_id
    if change.table.kind is TableKind.TERM_TAXONOMY:
        if change.op is Op.UPDATE:
            before, after = change.before, change.after
            assert before is not None and after is not None
            if all(before.get(c) == after.get(c) for c in _TERM_COLUMNS):
                return None  # a recount
        if text(row.get("taxonomy")) == MENU_TAXONOMY:
            return menus_key(blog_id)
    elif term_id in mirror.blog(blog_id).menus:
        # A menu's wp_terms row. A new menu's comes before its term_taxonomy row
        # makes it known: that one folds as a term's, whose event derive drops.
        return menus_key(blog_id)
    return term_key(blog_id, term_id)


def term_datas(group: Group, mirror: Mirror | None) -> list[tuple[str, EventData]]:
    """The event of a term's closed group, or none (see the module docstring)."""
    blog_id, term_id = group.blog_id, -group.post_id
    rows = group.rows or {}
    names = rows.get((TableKind.TERMS, term_id, 0))
    # A term has one term_taxonomy row since WordPress 4.2 split shared terms; an
    # older site's shared term reports its first one in the group.
    tt_id, taxa = next(
        (
            (row_id, pair)
            for (kind, row_id, _), pair in rows.items()
            if kind is TableKind.TERM_TAXONOMY
        ),
        (None, None),
    )
    known = _known(mirror, blog_id, term_id)
    if tt_id is None:
        tt_id = known["term_taxonomy_id"]
    seen = [pair for pair in (names, taxa) if pair is not None]
    existed = all(pair[0] is not None for pair in seen)
    exists = all(pair[1] is not None for pair in seen)
    before = _values(known, names, taxa, 0)
    after = _values(known, names, taxa, 1)
    touched = [*(_FROM_TERMS if names else ()), *(_FROM_TAXONOMY if taxa else ())]
    changed: list[str] = []
    if existed and exists:
        event_type, state = TERM_UPDATED, after
        changed = [f for f in TERM_FIELDS if f in touched and before[f] != after[f]]
        if group.replayed:
            changed = [f for f in TERM_FIELDS if f in touched]
        if not changed:
            return []
    elif exists:
        event_type, state = TERM_CREATED, after
    elif existed or group.replayed:
        # Deleted; or created and deleted within a replayed group, whose creation
        # may be on the topic already: say it is gone.
        event_type, state = TERM_DELETED, before if existed else known
    else:
        return []  # created and deleted within the group: nothing to report
    taxonomy = _taxonomy(taxa) or known["taxonomy"]
    if taxonomy == MENU_TAXONOMY:
        return []  # a new menu's wp_terms row: its menu_changed tells (see term_target)
    data = TermData(
        blog_id=blog_id,
        term_id=term_id,
        term_taxonomy_id=tt_id,
        taxonomy=taxonomy,
        name=state["name"],
        slug=state["slug"],
        parent=state["parent"],
        description=state["description"],
        changed=changed,
        before={f: before[f] for f in changed},
        after={f: after[f] for f in changed},
        cache_tags=_cache_tags(blog_id, term_id, taxonomy),
    )
    if mirror is not None and taxonomy and taxonomy not in PRIVATE_TAXONOMIES:
        view = BlogView(mirror, blog_id)
        if view.option("home"):
            data.links = _links(view, data, before if existed else None, exists)
        moved = before["slug"] != after["slug"] or before["parent"] != after["parent"]
        if event_type == TERM_UPDATED and taxonomy == "category" and moved:
            data.posts_moved = posts_moved(mirror, blog_id, term_id)
    return [(event_type, data)]


def posts_moved(mirror: Mirror, blog_id: int, term_id: int) -> int:
    """How many posts have a permalink whose ``%category%`` path holds the term:
    posts (type ``post``) with a pretty permalink whose category (the lowest term id
    among theirs, or the default category) is the term or one of its descendants.
    Zero when the permalink structure has no ``%category%``. Called when a
    category's slug or parent changed: every such post has a new permalink."""
    view = BlogView(mirror, blog_id)
    if "%category%" not in view.option("permalink_structure"):
        return 0
    under: dict[int, bool] = {}  # a post's category -> whether its path holds the term
    count = 0
    for post_id, info in mirror.blog(blog_id).posts.items():
        if info.type != "post":
            continue
        facts = view.post(post_id)
        category = permalink_category(facts, view) if facts is not None else None
        if category is None:
            continue
        found = under.get(category)
        if found is None:
            found = under[category] = category == term_id or term_id in ancestors(category, view)
        count += found
    return count


def _links(
    view: BlogView, data: TermData, before: dict[str, Any] | None, exists: bool
) -> TermLinks:
    assert data.taxonomy is not None
    links = TermLinks(term=None)
    if exists and data.slug is not None:
        links.term = term_link(data.taxonomy, data.term_id, data.slug, view)
    if before is not None and before["slug"] is not None:
        was = AsItWas(view, term=(data.term_id, TermFacts(before["slug"], before["parent"] or 0)))
        previous = term_link(data.taxonomy, data.term_id, before["slug"], was)
        if previous != links.term:
            links.previous = previous
    return links


def _cache_tags(blog_id: int, term_id: int, taxonomy: str | None) -> list[str]:
    tags = [f"site:{blog_id}"]
    if taxonomy not in PRIVATE_TAXONOMIES:
        tags.append(f"term:{blog_id}:{term_id}")
        if taxonomy:
            tags.append(f"taxonomy:{blog_id}:{taxonomy}")
    return sorted(tags)


def _known(mirror: Mirror | None, blog_id: int, term_id: int) -> dict[str, Any]:
    """The term as the mirror knows it now (it keeps deleted terms)."""
    known: dict[str, Any] = dict.fromkeys(("term_taxonomy_id", "taxonomy", *TERM_FIELDS))
    if mirror is None:
        return known
    blog = mirror.blog(blog_id)
    name = blog.terms.get(term_id)
    if name is not None:
        known["name"], known["slug"] = name.name, name.slug
    # term_taxonomy_id -> term is the mirror's direction: a scan, only for a group
    # that did not touch the term's term_taxonomy row (a rename).
    for tt_id, info in blog.taxonomies.items():
        if info.term_id == term_id:
            known["term_taxonomy_id"], known["taxonomy"] = tt_id, info.taxonomy
            known["parent"] = mirror.site.blog(blog_id).term_parents.get(term_id, 0)
            break
    return known


def _values(
    known: dict[str, Any],
    names: list[Row | None] | None,
    taxa: list[Row | None] | None,
    side: int,
) -> dict[str, Any]:
    """The reported fields before (side 0) or after (1) the group: from its rows,
    else (a row it did not touch, or one that did not exist) as the mirror knows them."""
    values = {name: known[name] for name in TERM_FIELDS}
    row = names[side] if names is not None else None
    if row is not None:
        values["name"], values["slug"] = _str(row.get("name")), _str(row.get("slug"))
    row = taxa[side] if taxa is not None else None
    if row is not None:
        values["parent"] = int(row.get("parent") or 0)
        values["description"] = _str(row.get("description"))
    return values


def _taxonomy(taxa: list[Row | None] | None) -> str | None:
    if taxa is None:
        return None
    row = taxa[1] or taxa[0]
    return None if row is None else _str(row.get("taxonomy"))


def _str(value: Any) -> str | None:
    value = text(value)
    return None if value is None else str(value)
