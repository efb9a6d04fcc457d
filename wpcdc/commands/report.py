"""Rendering preflight results for people (an aligned table) and for programs (JSON).

Only presentation lives here; which results pass and what the exit code is come
from ``wpcdc.preflight``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from wpcdc.config.preflight import CheckResult, Status, passed
from wpcdc.core.errors import EXIT_OK, EXIT_PREFLIGHT


def exit_code(results: Sequence[CheckResult]) -> int:
    return EXIT_OK if passed(results) else EXIT_PREFLIGHT


def _summary(results: Sequence[CheckResult]) -> dict[str, Any]:
    counts = Counter(result.status.value for result in results)
    return {
        "ok": passed(results),
        "exit_code": exit_code(results),
        "counts": {status.value: counts.get(status.value, 0) for status in Status},
        "failed": [result.name for result in results if result.blocking],
    }


def as_json(results: Sequence[CheckResult]) -> str:
    document = {
        "checks": [
            {
                "name": result.name,
                "status": result.status.value,
                "required": result.required,
                "detail": result.detail,
                "fix": result.fix,
            }
            for result in results
        ],
        "summary": _summary(results),
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


def as_table(results: Sequence[CheckResult]) -> str:
    width = max([len("CHECK"), *(len(result.name) for result in results)])
    lines = [f"{'STATUS':<6}  {'CHECK':<{width}}  DETAIL"]
    lines += [
        f"{result.status.value:<6}  {result.name:<{width}}  {result.detail}" for result in results
    ]
    for result in results:
        if result.fix and result.status in (Status.FAIL, Status.WARN):
            lines += ["", f"fix for {result.name}:"]
            lines += [f"    {line}" for line in result.fix.splitlines()]
    summary = _summary(results)
    lines.append("")
    if summary["ok"]:
        warn = summary["counts"][Status.WARN.value]
        note = f" ({warn} warning{'s' if warn != 1 else ''})" if warn else ""
        lines.append(f"Preflight passed{note}.")
    else:
        failed = [r.name for r in results if r.blocking and r.status is Status.FAIL]
        skipped = [r.name for r in results if r.blocking and r.status is Status.SKIP]
        text = f"Preflight failed: {', '.join(failed)}"
        if skipped:
            text += f" (and {len(skipped)} check{'s' if len(skipped) != 1 else ''} skipped)"
        lines.append(text + ".")
    return "\n".join(lines)
