"""The position moves past events that hold no transaction when the server says it has
sent them (issue 10: after an idle FLUSH the checkpoint stayed short of the binlog end)."""

from __future__ import annotations

from wpcdc.core.assembly import TransactionAssembler
from wpcdc.core.fold import FoldConfig, Folder
from wpcdc.core.mirror import Mirror
from wpcdc.core.positions import Position
from wpcdc.core.rows import Op, TableKind, TableRef

START = Position("binlog.000007", 1000, "0-1-41")
POSTS = TableRef(blog_id=1, kind=TableKind.POSTS)


def test_a_heartbeat_after_a_rotation_moves_the_position_past_the_new_files_header() -> None:
    assembler = TransactionAssembler(start=START)
    assembler.rotate("binlog.000008", 4)
    assembler.gtid_list("0-1-41")
    assembler.sent_up_to("binlog.000008", 379)
    assert assembler.position == Position("binlog.000008", 379, "0-1-41")


def test_a_heartbeat_inside_a_transaction_or_behind_or_elsewhere_changes_nothing() -> None:
    assembler = TransactionAssembler(start=START)
    assembler.sent_up_to("binlog.000007", 900)
    assembler.sent_up_to("binlog.000006", 5000)
    assert assembler.position == START
    assembler.gtid("0-1-42", 100, opens=True)
    assembler.row(POSTS, Op.INSERT, None, {"ID": 1}, 100)
    assembler.sent_up_to("binlog.000007", 1400)
    assert assembler.position == START
    part = assembler.commit(1500, 100)
    assert part.end == Position("binlog.000007", 1500, "0-1-42")


def test_the_fold_takes_the_idle_position_so_the_checkpoint_can_reach_it() -> None:
    folder = Folder(config=FoldConfig(), mirror=Mirror())
    folder.idle(Position("binlog.000008", 379))
    assert folder.position == Position("binlog.000008", 379)
    folder.idle(Position("binlog.000008", 4))  # never backwards
    assert folder.position == Position("binlog.000008", 379)
