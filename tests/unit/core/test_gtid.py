"""GTID state tracking of the binlog source (the pure part)."""

from __future__ import annotations

from wpcdc.core.gtid import GtidState

UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
UUID2 = "1c2aad49-ae92-409a-b4df-d05a03e4702e"


def test_mariadb_keeps_the_latest_sequence_per_domain() -> None:
    state = GtidState("0-1-41,1-2-7")
    state.add("0-1-42")
    state.add("2-1-1")
    assert state.value == "0-1-42,1-2-7,2-1-1"


def test_mariadb_gtid_list_with_several_servers_per_domain_keeps_the_latest() -> None:
    assert GtidState("0-1-100,0-2-150,0-3-120").value == "0-2-150"


def test_empty_base_is_known_and_grows() -> None:
    state = GtidState("")
    assert state.value == ""
    state.add("0-1-1")
    assert state.value == "0-1-1"


def test_unknown_base_stays_unknown_until_reset() -> None:
    state = GtidState(None)
    state.add("0-1-5")
    assert state.value is None
    state.reset("0-1-5")
    state.add("0-1-6")
    assert state.value == "0-1-6"


def test_mysql_intervals_extend_and_merge() -> None:
    state = GtidState(f"{UUID}:1-5:7-9")
    state.add(f"{UUID}:10")
    assert state.value == f"{UUID}:1-5:7-10"
    state.add(f"{UUID}:6")
    assert state.value == f"{UUID}:1-10"
    state.add(f"{UUID2.upper()}:3")
    assert state.value == f"{UUID2}:3,{UUID}:1-10"


def test_mysql_set_as_the_server_prints_it() -> None:
    state = GtidState(f"{UUID}:1-3,\n{UUID2}:1-2:4")
    assert state.value == f"{UUID2}:1-2:4,{UUID}:1-3"


def test_tagged_or_garbled_sets_make_tracking_unknown() -> None:
    assert GtidState(f"{UUID}:mytag:1-5").value is None
    assert GtidState("nonsense").value is None
    state = GtidState("0-1-1")
    state.add("not-a-gtid")
    assert state.value is None


def test_a_single_domain_state_reads_as_its_latest_gtid_whatever_came_in() -> None:
    state = GtidState("0-1-10")
    state.add("0-1-11")
    assert state.value == "0-1-11"
    state.add("0-1-9")  # older: the state stays at 11
    assert state.value == "0-1-11"
    state.add("0-01-12")  # not written canonically: the rendered form
    assert state.value == "0-1-12"
    state.add("1-2-5")  # a second domain: both
    assert state.value == "0-1-12,1-2-5"
    fresh = GtidState("0-1-10")
    fresh.add("0-1-3")  # never rendered before, and older
    assert fresh.value == "0-1-10"


def test_gtids_a_reader_parsed_make_the_same_set_as_their_text() -> None:
    # The fast reader hands over the numbers it decoded; add() parses the text.
    mariadb = ["0-1-42", "0-1-43", "1-2-7", "0-1-44", "0-3-40", "2-1-1"]
    mysql = [(UUID, 5), (UUID, 6), (UUID2, 1), (UUID, 9), (UUID, 7), (UUID, 8)]
    for base in ("0-1-41", "", f"{UUID}:1-4"):
        by_text, by_parts = GtidState(base), GtidState(base)
        for gtid in mariadb:
            domain, server, seq = (int(x) for x in gtid.split("-"))
            by_text.add(gtid)
            by_parts.add_mariadb(gtid, domain, server, seq)
            assert by_parts.value == by_text.value
        for uuid, number in mysql:
            by_text.add(f"{uuid}:{number}")
            by_parts.add_mysql(uuid, number)
            assert by_parts.value == by_text.value
    unknown = GtidState(None)
    unknown.add_mariadb("0-1-1", 0, 1, 1)
    unknown.add_mysql(UUID, 1)
    assert unknown.value is None
