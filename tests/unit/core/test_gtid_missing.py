"""Whether a server's GTID state includes the checkpoint's (issue 10: a binlog cut short
by a crash reissues GTIDs that acknowledged event ids already hold)."""

from __future__ import annotations

from wpcdc.core.gtid import GtidState

UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"


def missing(server: str | None, checkpoint: str | None) -> list[str]:
    return GtidState(server).missing(GtidState(checkpoint))


def test_mariadb_server_ahead_or_equal_includes_the_checkpoint() -> None:
    assert missing("0-1-50,1-2-7", "0-1-42,1-2-7") == []
    assert missing("0-2-60", "0-1-50") == []  # another server id, later in the domain


def test_mariadb_server_behind_lacks_the_checkpoints_transactions() -> None:
    assert missing("0-1-42", "0-1-50") == ["0-1-50"]
    assert missing("0-1-60", "0-1-50,1-1-3") == ["1-1-3"]
    assert missing("", "0-1-50") == ["0-1-50"]  # RESET MASTER


def test_mysql_sets_are_compared_by_interval() -> None:
    assert missing(f"{UUID}:1-100", f"{UUID}:1-90") == []
    assert missing(f"{UUID}:1-80", f"{UUID}:1-90") == [f"{UUID}:1-90"]
    assert missing(f"{UUID}:1-10:12-20", f"{UUID}:1-5:11") == [f"{UUID}:11"]


def test_unknown_states_are_not_compared() -> None:
    assert missing(None, "0-1-5") == []
    assert missing("0-1-5", None) == []
