"""Site events: a blog's URL settings changed (``site_settings_changed``).

The options that shape a blog's URLs (``WATCHED_OPTIONS``, wpcdc.core.rows)
fold like a post's rows, in the blog's own group (post id 0, key "N:0",
subject ``site``): one save of Settings → Permalinks writes several options in
a burst and becomes one event. The other option rows never get here (the
assembler drops them). Pure: no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from wpcdc.core.decode import text
from wpcdc.core.events import SITE_EVENT, EventData, Links, SiteData
from wpcdc.core.permalinks import home_link, posts_page_link
from wpcdc.core.rows import Row
from wpcdc.core.site import BlogView

if TYPE_CHECKING:
    from wpcdc.core.group import Group
    from wpcdc.core.mirror import Mirror

# Every URL of the blog depends on these: a change is a whole-site purge.
SITE_WIDE: Final = frozenset({"home", "permalink_structure", "category_base", "tag_base"})


def site_datas(group: Group, mirror: Mirror | None) -> list[tuple[str, EventData]]:
    """The site event of the blog's group, or none when no value changed (a
    replayed group states every option it touched)."""
    changed: list[str] = []
    before: dict[str, str | None] = {}
    after: dict[str, str | None] = {}
    for name in sorted(group.options):
        old, new = (_value(row) for row in group.options[name])
        if old == new and not group.replayed:
            continue
        changed.append(name)
        before[name], after[name] = old, new
    if not changed:
        return []
    data = SiteData(
        blog_id=group.blog_id,
        changed=changed,
        before=before,
        after=after,
        moves_all_urls=bool(SITE_WIDE.intersection(changed)),
        cache_tags=[f"site:{group.blog_id}"],
    )
    if mirror is not None:
        view = BlogView(mirror, group.blog_id)
        if view.option("home"):
            data.links = Links(
                permalink=None, home=home_link(view), posts_page=posts_page_link(view)
            )
    return [(SITE_EVENT, data)]


def _value(row: Row | None) -> str | None:
    if row is None:
        return None
    value = text(row.get("option_value"))
    return None if value is None else str(value)
