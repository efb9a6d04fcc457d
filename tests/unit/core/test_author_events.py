"""Author events: a user's nicename or display name changed (author_updated), from the
network's users table, with the author archive before and after."""

from __future__ import annotations

from typing import Any

from tests.support.binlog_builder import Binlog, delete, insert, update
from tests.support.fold import fold_all
from wpcdc.core.entity_payloads import AuthorData
from wpcdc.core.events import Event, to_envelope
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Position
from wpcdc.core.rows import TableKind

USERS = TableKind.USERS


def user(user_id: int, nicename: str, display_name: str) -> dict[str, Any]:
    # Only the columns wpcdc keeps reach the fold (KEEP_COLUMNS).
    return {"ID": user_id, "user_nicename": nicename, "display_name": display_name}


def network() -> Mirror:
    mirror = Mirror()
    mirror.site.load_options(
        1, [("home", "http://a.test"), ("permalink_structure", "/%postname%/")]
    )
    mirror.site.load_options(2, [("home", "http://a.test/two")])
    mirror.site.load_users([(3, "jane", "Jane")])
    return mirror


def fold(*parts: Any, mirror: Mirror | None = None, **folder: Any) -> list[Event]:
    config = FoldConfig()
    return fold_all(Folder(config=config, mirror=mirror or network(), **folder), list(parts))


def test_a_new_nicename_is_author_updated_with_the_archive_before_and_after() -> None:
    log = Binlog()
    log.txn(update(USERS, user(3, "jane", "Jane"), user(3, "jane-doe", "Jane Doe")))
    (event,) = fold(*log.log)
    data = event.data
    assert isinstance(data, AuthorData)
    assert (event.type, event.key) == ("author_updated", b"1:author/3")
    assert to_envelope(event, "s")["subject"] == "author/3"
    assert data.changed == ["nicename", "display_name"]
    assert data.before == {"nicename": "jane", "display_name": "Jane"}
    assert data.after == {"nicename": "jane-doe", "display_name": "Jane Doe"}
    assert (data.nicename, data.display_name) == ("jane-doe", "Jane Doe")
    assert data.links is not None
    assert data.links.author == "http://a.test/author/jane-doe/"
    assert data.links.previous == "http://a.test/author/jane/"
    # The author's posts carry author:{blog}:{id} on every blog.
    assert data.cache_tags == ["author:1:3", "author:2:3"]


def test_a_display_name_alone_keeps_the_archive() -> None:
    log = Binlog()
    log.txn(update(USERS, user(3, "jane", "Jane"), user(3, "jane", "J. Doe")))
    (event,) = fold(*log.log)
    assert isinstance(event.data, AuthorData) and event.data.changed == ["display_name"]
    assert event.data.links is not None
    assert (event.data.links.author, event.data.links.previous) == (
        "http://a.test/author/jane/",
        None,
    )


def test_other_columns_new_users_and_deleted_users_make_no_event() -> None:
    log = Binlog()
    # A new password or e-mail address: the kept columns are the same.
    same = log.txn(update(USERS, user(3, "jane", "Jane"), user(3, "jane", "Jane")))
    folder = Folder(config=FoldConfig(), mirror=network())
    assert folder.target(same.changes[0]) is None
    log.txn(insert(USERS, user(4, "bob", "Bob")))
    log.txn(delete(USERS, user(5, "old", "Old")), after_seconds=5)
    assert fold_all(folder, log.log) == []


def test_renamed_and_back_is_nothing_live_and_stated_in_a_replay() -> None:
    log = Binlog()
    log.txn(update(USERS, user(3, "jane", "Jane"), user(3, "jd", "Jane")))
    log.txn(update(USERS, user(3, "jd", "Jane"), user(3, "jane", "Jane")))
    assert fold(*log.log) == []
    (event,) = fold(*log.log, replay_until=Position(log.file, log.pos))
    assert isinstance(event.data, AuthorData)
    assert event.data.after == {"nicename": "jane", "display_name": "Jane"}


def test_an_author_and_a_post_with_the_same_id_fold_apart() -> None:
    folder = Folder(config=FoldConfig(), mirror=network())
    part = Binlog().txn(update(USERS, user(3, "jane", "Jane"), user(3, "jd", "Jane")))
    assert folder.target(part.changes[0]) == (0, -3)  # blog 0: the network, nobody's blog
    folder.feed(part)
    (closed,) = folder.close_all()
    assert (closed.blog_id, closed.post_id) == (0, -3)
    assert [e.blog_id for e in closed.events] == [1]
