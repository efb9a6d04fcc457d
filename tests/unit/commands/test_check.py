"""Rendering preflight results: the aligned table, the fix blocks, JSON, exit codes."""

from __future__ import annotations

import orjson

from wpcdc.commands.check import as_json, as_table, exit_code
from wpcdc.core.errors import EXIT_OK, EXIT_PREFLIGHT
from wpcdc.core.facts import CheckResult, Status

PASSING = [
    CheckResult("connection", Status.PASS, True, "MariaDB 10.11 at h:3306"),
    CheckResult("binlog_retention", Status.WARN, True, "size limit", "lower it"),
    CheckResult("gtid", Status.INFO, False, "gtid_mode=ON"),
]
FAILING = [
    *PASSING,
    CheckResult("binlog_format", Status.FAIL, True, "MIXED", "line one\nline two"),
    CheckResult("topic", Status.SKIP, True, "skipped: needs a broker connection"),
]


def test_exit_code_is_zero_only_when_no_required_check_fails_or_is_skipped() -> None:
    assert exit_code(PASSING) == EXIT_OK
    assert exit_code(FAILING) == EXIT_PREFLIGHT
    assert exit_code([CheckResult("x", Status.SKIP, True, "s")]) == EXIT_PREFLIGHT
    assert exit_code([CheckResult("x", Status.SKIP, False, "s")]) == EXIT_OK


def test_table_columns_are_aligned_and_fixes_follow() -> None:
    text = as_table(FAILING)
    lines = text.splitlines()
    assert lines[0] == "STATUS  CHECK             DETAIL"
    assert lines[1] == "PASS    connection        MariaDB 10.11 at h:3306"
    assert lines[4] == "FAIL    binlog_format     MIXED"
    assert "fix for binlog_format:\n    line one\n    line two" in text
    assert "fix for binlog_retention:\n    lower it" in text
    assert lines[-1] == "Preflight failed: binlog_format (and 1 check skipped)."


def test_table_says_passed_with_warnings() -> None:
    assert as_table(PASSING).splitlines()[-1] == "Preflight passed (1 warning)."


def test_json_has_every_field_and_a_summary() -> None:
    document = orjson.loads(as_json(FAILING))
    assert document["checks"][3] == {
        "name": "binlog_format",
        "status": "FAIL",
        "required": True,
        "detail": "MIXED",
        "fix": "line one\nline two",
    }
    assert document["checks"][0]["fix"] is None
    summary = document["summary"]
    assert summary["ok"] is False
    assert summary["exit_code"] == EXIT_PREFLIGHT
    assert summary["failed"] == ["binlog_format", "topic"]
    assert summary["counts"] == {"PASS": 1, "FAIL": 1, "WARN": 1, "INFO": 1, "SKIP": 1}
