"""Author events: a user's nicename or display name changed (``author_updated``).

``{prefix}users`` is the network's one table (wpcdc keeps only ``ID``,
``user_nicename`` and ``display_name`` of it, wpcdc.core.rows). Its row changes
fold per user (key ``(0, -user_id)``, see wpcdc.core.group) and a closed group
becomes at most one ``author_updated`` (key ``"1:author/{user_id}"``, subject
``author/{user_id}``):

- an update that leaves both names as they were (a new password, e-mail
  address or activation key) is routed to no group (:func:`author_target`);
- a new user makes no event (no page of theirs exists yet), nor a deleted one
  (WordPress deletes or reassigns their posts first, each with its own event);
- live, the names that differ; a replayed group states both names.

``links`` hold ``get_author_posts_url()`` on the main site (blog 1) now and
before; ``cache_tags`` are ``author:{blog}:{user_id}`` for every blog wpcdc
streams (the tag post events carry for the author's posts), read from the site
state at close like the links. Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from wpcdc.core.decode import text
from wpcdc.core.entity_payloads import AUTHOR_EVENT, AuthorData, AuthorLinks
from wpcdc.core.group import MAIN_BLOG_ID, PostKey, author_key
from wpcdc.core.permalinks import author_link
from wpcdc.core.rows import Op, Row, RowChange, TableKind
from wpcdc.core.site import AsItWas, BlogView

if TYPE_CHECKING:
    from wpcdc.core.events import EventData
    from wpcdc.core.group import Group
    from wpcdc.core.mirror import Mirror

# Reported field -> {prefix}users column.
AUTHOR_FIELDS: Final = {"nicename": "user_nicename", "display_name": "display_name"}


def author_target(change: RowChange) -> PostKey | None:
    """The author group of a users row change, or None when neither name changed."""
    user_id = int(change.image.get("ID") or 0)
    if user_id < 1:
        return None
    if change.op is Op.UPDATE:
        before, after = change.before, change.after
        assert before is not None and after is not None
        if all(before.get(c) == after.get(c) for c in AUTHOR_FIELDS.values()):
            return None
    return author_key(user_id)


def author_datas(group: Group, mirror: Mirror | None) -> list[tuple[str, EventData]]:
    """The event of an author's closed group, or none (see the module docstring)."""
    user_id = -group.post_id
    pair = (group.rows or {}).get((TableKind.USERS, user_id, 0))
    if pair is None or pair[1] is None:
        return []  # deleted
    if pair[0] is None and not group.replayed:
        return []  # a new user
    before, after = _names(pair[0]), _names(pair[1])
    changed = [f for f in AUTHOR_FIELDS if group.replayed or before[f] != after[f]]
    if not changed:
        return []
    data = AuthorData(
        user_id=user_id,
        nicename=after["nicename"],
        display_name=after["display_name"],
        changed=changed,
        before={f: before[f] for f in changed},
        after={f: after[f] for f in changed},
        cache_tags=[f"author:{MAIN_BLOG_ID}:{user_id}"],
    )
    if mirror is not None:
        blogs = {MAIN_BLOG_ID, *mirror.site.blog_ids()}
        data.cache_tags = [f"author:{blog}:{user_id}" for blog in sorted(blogs)]
        view = BlogView(mirror, MAIN_BLOG_ID)
        if view.option("home"):
            links = AuthorLinks(author=author_link(user_id, view))
            if before["nicename"] is not None:
                was = AsItWas(view, user=(user_id, before["nicename"]))
                previous = author_link(user_id, was)
                if previous != links.author:
                    links.previous = previous
            data.links = links
    return [(AUTHOR_EVENT, data)]


def _names(row: Row | None) -> dict[str, Any]:
    if row is None:
        return dict.fromkeys(AUTHOR_FIELDS)
    values = {field: text(row.get(column)) for field, column in AUTHOR_FIELDS.items()}
    return {field: None if value is None else str(value) for field, value in values.items()}
