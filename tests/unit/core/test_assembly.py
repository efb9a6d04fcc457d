"""Transaction assembly and position bookkeeping of the binlog source, fed by hand."""

from __future__ import annotations

import pytest

from wpcdc.core.assembly import TransactionAssembler
from wpcdc.core.errors import WpcdcError
from wpcdc.core.positions import Position
from wpcdc.core.rows import Op, TableKind, TableRef, TransactionPart

POSTS = TableRef(blog_id=1, kind=TableKind.POSTS)
META = TableRef(blog_id=2, kind=TableKind.POSTMETA)
START = Position("binlog.000007", 1000, "0-1-41")


def insert(assembler: TransactionAssembler, post_id: int) -> TransactionPart | None:
    return assembler.row(POSTS, Op.INSERT, None, {"ID": post_id}, 100)


def test_mariadb_transaction_one_part_with_end_and_gtid() -> None:
    assembler = TransactionAssembler(start=START)
    assembler.gtid("0-1-42", 100, opens=True)
    assert insert(assembler, 1) is None
    assert assembler.row(META, Op.DELETE, {"meta_id": 3}, None, 100) is None
    part = assembler.commit(1500, 101)
    assert part.transaction.start == START
    assert part.transaction.gtid == "0-1-42"
    assert part.transaction.thread_id is None
    assert part.transaction.timestamp == 100
    assert [(c.table, c.op, c.row) for c in part.changes] == [
        (POSTS, Op.INSERT, 0),
        (META, Op.DELETE, 1),
    ]
    assert part.end == Position("binlog.000007", 1500, "0-1-42")
    assert assembler.position == part.end
    assert not assembler.in_transaction


def test_mysql_begin_gives_the_thread_and_commit_the_gtid_interval() -> None:
    uuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    assembler = TransactionAssembler(start=Position("binlog.000001", 4, f"{uuid}:1-9"))
    assembler.gtid(f"{uuid}:10", 100, opens=False)
    assembler.begin(77, 100)
    insert(assembler, 1)
    part = assembler.commit(900, 100)
    assert part.transaction.thread_id == 77
    assert part.end is not None and part.end.gtid_set == f"{uuid}:1-10"


def test_standalone_statement_is_a_transaction_without_changes() -> None:
    assembler = TransactionAssembler(start=START)
    assembler.gtid("0-1-42", 100, opens=False)
    part = assembler.statement(1200, 100)
    assert part is not None
    assert part.changes == ()
    assert part.end == Position("binlog.000007", 1200, "0-1-42")


def test_statement_inside_an_open_transaction_does_not_end_it() -> None:
    assembler = TransactionAssembler(start=START)
    assembler.gtid(None, 100, opens=False)
    assembler.begin(5, 100)
    assert assembler.statement(1100, 100) is None
    assert assembler.in_transaction
    assert assembler.commit(1200, 100).end == Position("binlog.000007", 1200, "0-1-41")


def test_large_transaction_comes_in_bounded_parts_and_only_the_last_has_end() -> None:
    assembler = TransactionAssembler(start=START, max_part_rows=3)
    assembler.gtid("0-1-42", 100, opens=True)
    parts = [p for i in range(7) if (p := insert(assembler, i)) is not None]
    parts.append(assembler.commit(5000, 100))
    assert [len(p.changes) for p in parts] == [3, 3, 1]
    assert [p.end is None for p in parts] == [True, True, False]
    assert [c.row for p in parts for c in p.changes] == list(range(7))
    assert len({p.transaction for p in parts}) == 1


def test_exact_multiple_ends_with_an_empty_last_part() -> None:
    assembler = TransactionAssembler(start=START, max_part_rows=2)
    assembler.gtid("0-1-42", 100, opens=True)
    parts = [p for i in range(4) if (p := insert(assembler, i)) is not None]
    last = assembler.commit(5000, 100)
    assert [len(p.changes) for p in parts] == [2, 2]
    assert last.changes == () and last.end is not None


def test_rewind_skips_changes_already_handed_out() -> None:
    assembler = TransactionAssembler(start=START, max_part_rows=2)
    assembler.gtid("0-1-42", 100, opens=True)
    handed = [p for i in range(5) if (p := insert(assembler, i)) is not None]
    assert [c.row for p in handed for c in p.changes] == [0, 1, 2, 3]
    # The connection breaks; the reader restarts at the transaction's start.
    assembler.rewind()
    assert assembler.position == START and not assembler.in_transaction
    # A second failure before the transaction was read again keeps the skip.
    assembler.rewind()
    assembler.gtid("0-1-42", 100, opens=True)
    again = [p for i in range(5) if (p := insert(assembler, i)) is not None]
    again.append(assembler.commit(5000, 100))
    assert [c.row for p in again for c in p.changes] == [4]
    assert again[-1].transaction == handed[0].transaction
    # The skip applies to that transaction only.
    assembler.gtid("0-1-43", 100, opens=True)
    insert(assembler, 9)
    assert [c.row for c in assembler.commit(6000, 100).changes] == [0]


def test_rewind_between_transactions_replays_nothing_twice() -> None:
    assembler = TransactionAssembler(start=START)
    assembler.gtid("0-1-42", 100, opens=True)
    insert(assembler, 1)
    end = assembler.commit(1500, 100).end
    assembler.rewind()
    assert assembler.position == end
    assembler.gtid("0-1-43", 100, opens=True)
    insert(assembler, 2)
    part = assembler.commit(1600, 100)
    assert [c.row for c in part.changes] == [0]
    assert part.transaction.start == end


def test_rotate_moves_the_boundary_to_the_new_file() -> None:
    assembler = TransactionAssembler(start=START)
    assembler.rotate("binlog.000007", 1000)  # the fake rotate at connect: no change
    assert assembler.position is START
    assembler.rotate("binlog.000008", 4)
    assert assembler.position == Position("binlog.000008", 4, "0-1-41")
    assembler.gtid("0-1-42", 100, opens=True)
    assert assembler.commit(400, 100).transaction.start == Position("binlog.000008", 4, "0-1-41")


def test_gtid_list_completes_an_unknown_base() -> None:
    assembler = TransactionAssembler(start=Position("binlog.000002", 4))
    assembler.gtid_list("0-1-8")
    assert assembler.position == Position("binlog.000002", 4, "0-1-8")
    assembler.gtid_list("0-1-99")  # a known state is not replaced
    assert assembler.position.gtid_set == "0-1-8"


def test_rows_without_a_transaction_start_one() -> None:
    # A start position inside a transaction: its tail still arrives, as a transaction.
    assembler = TransactionAssembler(start=START)
    insert(assembler, 1)
    part = assembler.commit(1100, 100)
    assert part.transaction.start == START and part.transaction.gtid is None
    assert len(part.changes) == 1


def test_commit_without_anything_open_still_advances() -> None:
    assembler = TransactionAssembler(start=START)
    part = assembler.commit(1100, 100)
    assert part.changes == () and part.end == Position("binlog.000007", 1100, "0-1-41")


def test_uncommitted_rows_before_the_next_gtid_are_refused() -> None:
    assembler = TransactionAssembler(start=START)
    assembler.gtid("0-1-42", 100, opens=True)
    insert(assembler, 1)
    with pytest.raises(WpcdcError, match="no commit"):
        assembler.gtid("0-1-43", 100, opens=True)


def test_an_empty_unterminated_transaction_is_dropped() -> None:
    assembler = TransactionAssembler(start=START)
    assembler.gtid("0-1-42", 100, opens=False)
    assembler.gtid("0-1-43", 101, opens=True)
    part = assembler.commit(1300, 101)
    assert part.transaction.gtid == "0-1-43"


def test_an_unparsed_gtid_event_turns_gtid_tracking_off() -> None:
    assembler = TransactionAssembler(start=START)
    assembler.gtid(None, 100, opens=False, understood=False)
    assembler.begin(1, 100)
    assert assembler.commit(1300, 100).end == Position("binlog.000007", 1300, None)


def test_max_part_rows_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TransactionAssembler(start=START, max_part_rows=0)
