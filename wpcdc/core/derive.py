"""Deriving events: what one closed fold group of a post means, as domain events.

This module owns the reading of a group's row changes: at most one post event
(created, updated, a status transition or deleted, see :func:`_transition`),
one ``post_meta_changed`` (meta rows by ``meta_id``, values decoded) and one
``taxonomy_changed`` (term memberships by net change), all sharing the group's
origin so their ids are a function of binlog coordinates. It also owns how a
wp_posts row reads as a :class:`~wpcdc.core.events.Post` (:func:`to_post`) and
which posts stay unreported (auto-drafts nobody has been told about). The
grouping itself is in ``wpcdc.core.fold``.

Live, an event holds the group's net changes: a term added and removed within
the group, or a meta value changed and changed back, is not mentioned. After a
restart, the row changes the previous run may already have sent (up to where it
stopped reading) come again in groups that can overlap the ones on the topic.
Such *replayed* groups state everything they touched as it is after their last
change (a term removed, a meta row gone, the post row even if unchanged), so
that a consumer applying, per post and kind, only newer events ends in the
database's state whatever the two groupings were. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, Final

from wpcdc.core.author_events import author_datas
from wpcdc.core.decode import decode_meta, text
from wpcdc.core.events import (
    META_EVENT,
    SITE_POST_ID,
    TAXONOMY_EVENT,
    Event,
    EventData,
    MetaChange,
    MetaData,
    Origin,
    Post,
    PostData,
    TaxonomyData,
)
from wpcdc.core.group import NETWORK_BLOG_ID, entity_of
from wpcdc.core.links import annotate
from wpcdc.core.menu_events import menu_datas, menu_entity
from wpcdc.core.rows import Row
from wpcdc.core.site_events import site_datas
from wpcdc.core.term_events import term_datas

if TYPE_CHECKING:
    from wpcdc.core.fold import FoldConfig
    from wpcdc.core.group import Group
    from wpcdc.core.mirror import Mirror

# The status WordPress gives a post it creates when the editor opens; it is not
# reported until it becomes something else, unless FoldConfig.emit_auto_drafts.
AUTO_DRAFT: Final = "auto-draft"


def derive(group: Group, config: FoldConfig, mirror: Mirror | None = None) -> list[Event]:
    """The events of a closed group, in ordinal order: the post event 0, meta 1,
    taxonomy 2 (none for a group that only concerns an unreported auto-draft); a
    term's or an author's group makes at most one event (ordinal 0), a blog's
    menus group one per menu it changed (ordinal 0, each with its own key)."""
    datas: list[tuple[str, EventData]] = []
    if group.post_id < 0:  # a term's or an author's group (keys: wpcdc.core.group)
        if group.blog_id == NETWORK_BLOG_ID:
            return _events(group, author_datas(group, mirror))
        return _events(group, term_datas(group, mirror))
    if group.blog_id < 0:  # a blog's menus: an event per menu (wpcdc.core.menu_events)
        events = _events(group, menu_datas(group, mirror))
        for event in events:
            event.entity = menu_entity(event.data)
        return events
    if group.post_id == SITE_POST_ID:
        datas = site_datas(group, mirror)  # the blog's URL settings (wpcdc.core.site_events)
    post_event = None if group.post_id == SITE_POST_ID else _post_event(group, config)
    if isinstance(post_event, str):
        return []  # an auto-draft nobody has been told about: the whole group waits
    if post_event is not None:
        datas.append(post_event)
    terms = group.term_changes()
    if not group.deleted and group.post_id != SITE_POST_ID:
        post_type = _post_type(group)
        meta = _meta_changes(group, config)
        if meta:
            datas.append((META_EVENT, MetaData(group.blog_id, group.post_id, post_type, meta)))
        added, removed = terms
        if added or removed:
            datas.append(
                (
                    TAXONOMY_EVENT,
                    TaxonomyData(group.blog_id, group.post_id, post_type, added, removed),
                )
            )
    if mirror is not None and datas and group.post_id != SITE_POST_ID:
        annotate(datas, group, mirror, terms)  # links and cache tags (wpcdc.core.links)
    return _events(group, datas)


def _events(group: Group, datas: list[tuple[str, EventData]]) -> list[Event]:
    blog_id, entity = entity_of((group.blog_id, group.post_id))
    origin = Origin(
        file=group.origin.file,
        pos=group.origin.pos,
        gtid=group.origin_gtid,
        first=group.first,
        last=group.last,
    )
    return [
        Event(
            type=event_type,
            blog_id=blog_id,
            post_id=group.post_id,
            origin=origin,
            ordinal=ordinal,
            timestamp=group.last_timestamp,
            data=data,
            entity=entity,
        )
        for event_type, data in datas
        for ordinal in (_ORDINALS.get(event_type, 0),)
    ]


# The ordinal of each kind is fixed, so that, per post and kind, the sequences of
# events compare whatever else their groups held (a replay may group differently).
_ORDINALS: Final = {META_EVENT: 1, TAXONOMY_EVENT: 2}


def _post_type(group: Group) -> str | None:
    image = group.post_after or group.post_before
    if image is not None:
        return str(text(image.get("post_type")))
    return group.info.type if group.info is not None else None


def _status_before(group: Group) -> str | None:
    if group.post_seen:
        return (
            None if group.post_before is None else str(text(group.post_before.get("post_status")))
        )
    return group.info.status if group.info is not None else None


def _post_event(group: Group, config: FoldConfig) -> tuple[str, PostData] | str | None:
    """The group's post event; "suppress" when the whole group is an unreported auto-draft."""
    before, after = group.post_before, group.post_after
    status_before = _status_before(group)
    hidden_before = status_before == AUTO_DRAFT and not config.emit_auto_drafts
    if not group.post_seen:
        return "suppress" if hidden_before else None
    status_after = None if after is None else str(text(after.get("post_status")))
    if before is None and after is None:
        if group.replayed and group.post_last is not None:
            # Its creation may be on the topic already: say it is gone.
            return "post_deleted", _post_data(group, to_post(group.post_last))
        return None  # created and deleted within the group: nothing to report
    if after is None:
        if hidden_before:
            return "suppress"
        assert before is not None
        return "post_deleted", _post_data(group, to_post(before))
    post_after = to_post(after)
    if before is None or hidden_before:
        if status_after == AUTO_DRAFT and not config.emit_auto_drafts:
            return "suppress"
        return "post_created", _post_data(group, post_after)
    post_before = to_post(before)
    changed = [
        name for name in _COMPARED_FIELDS if getattr(post_before, name) != getattr(post_after, name)
    ]
    if not changed and not group.replayed:
        return None  # only bookkeeping columns changed (to_ping, pinged, ...)
    data = _post_data(group, post_after)
    data.changed = changed
    data.before = {name: getattr(post_before, name) for name in changed}
    event_type = _transition(status_before, status_after)
    if event_type != "post_updated":
        data.previous_status = status_before
    return event_type, data


def _transition(before: str | None, after: str | None) -> str:
    if before == after:
        return "post_updated"
    if after == "trash":
        return "post_trashed"
    if before == "trash":
        return "post_restored"
    if after == "publish":
        return "post_published"
    if before == "publish":
        return "post_unpublished"
    if after == "future":
        return "post_scheduled"
    return "post_updated"


def _post_data(group: Group, post: Post) -> PostData:
    return PostData(blog_id=group.blog_id, post_id=group.post_id, post_type=post.type, post=post)


def _meta_changes(group: Group, config: FoldConfig) -> list[MetaChange]:
    changes = []
    for meta_id in sorted(group.meta):
        before, after = group.meta[meta_id]
        key = str(text((after or before or {}).get("meta_key")))
        if key in config.ignored_meta_keys:
            continue
        if before is None and after is None:
            if not group.replayed:
                continue  # added and deleted within the group
            # Its addition may be on the topic already: say it is gone.
            changes.append(MetaChange(key, "deleted", meta_id))
            continue
        if before is None:
            assert after is not None
            value = decode_meta(after.get("meta_value"))
            changes.append(
                MetaChange(
                    key,
                    "added",
                    meta_id,
                    value.value,
                    None,
                    value.serialized,
                    value.raw,
                    None,
                    value.error,
                )
            )
        elif after is None:
            old = decode_meta(before.get("meta_value"))
            changes.append(
                MetaChange(
                    key,
                    "deleted",
                    meta_id,
                    None,
                    old.value,
                    old.serialized,
                    None,
                    old.raw,
                    old.error,
                )
            )
        elif (
            group.replayed
            or before.get("meta_value") != after.get("meta_value")
            or before.get("meta_key") != after.get("meta_key")
        ):
            value = decode_meta(after.get("meta_value"))
            old = decode_meta(before.get("meta_value"))
            changes.append(
                MetaChange(
                    key,
                    "updated",
                    meta_id,
                    value.value,
                    old.value,
                    value.serialized or old.serialized,
                    value.raw,
                    old.raw,
                    value.error or old.error,
                )
            )
    return changes


def to_post(row: Row) -> Post:
    get = row.get
    return Post(
        id=int(row["ID"]),
        type=_string(get("post_type")) or "",
        status=_string(get("post_status")) or "",
        title=_string(get("post_title")),
        content=_string(get("post_content")),
        excerpt=_string(get("post_excerpt")),
        name=_string(get("post_name")),
        author=_integer(get("post_author")),
        parent=_integer(get("post_parent")),
        date=_string(get("post_date")),
        date_gmt=_string(get("post_date_gmt")),
        modified=_string(get("post_modified")),
        modified_gmt=_string(get("post_modified_gmt")),
        menu_order=_integer(get("menu_order")),
        guid=_string(get("guid")),
        mime_type=_string(get("post_mime_type")),
        comment_status=_string(get("comment_status")),
        ping_status=_string(get("ping_status")),
        comment_count=_integer(get("comment_count")),
        password_protected=bool(get("post_password")),
    )


def _string(value: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value  # most columns: as they are
    value = text(value)
    return None if value is None else str(value)


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


_COMPARED_FIELDS = tuple(f.name for f in fields(Post) if f.name != "id")
