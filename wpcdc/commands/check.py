"""``wpcdc check``: the preflight run against the configured server and broker, rendered.

This module owns the command: gathering the facts from both sides at once
(:func:`wpcdc.mysql.facts.read_server_facts`,
:func:`wpcdc.kafka.facts.read_broker_facts`), having them judged
(:func:`wpcdc.config.preflight.evaluate`, where the rules live), and the
presentation: an aligned table for people or JSON for programs, and the exit
code (0 when every required check passes, 3 otherwise).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson
import typer

from wpcdc.config.preflight import evaluate
from wpcdc.config.settings import Settings
from wpcdc.core.errors import EXIT_OK, EXIT_PREFLIGHT
from wpcdc.core.facts import (
    BrokerFacts,
    CheckResult,
    ServerFacts,
    ServerUnreachable,
    Status,
    passed,
)
from wpcdc.kafka.facts import read_broker_facts
from wpcdc.mysql.facts import read_server_facts


def run(settings: Settings, *, json_format: bool) -> int:
    """Print the results (JSON or a table); returns the exit code."""
    results = check(settings)
    typer.echo(as_json(results) if json_format else as_table(results))
    return exit_code(results)


def check(settings: Settings) -> list[CheckResult]:
    """Run the preflight against the configured server and broker."""
    server, broker = asyncio.run(_gather_facts(settings))
    return evaluate(server, broker, settings)


async def _gather_facts(settings: Settings) -> tuple[ServerFacts | ServerUnreachable, BrokerFacts]:
    # Both sides may wait for their timeouts; waiting for them side by side
    # keeps the worst case to the longer of the two. PyMySQL blocks, so it gets
    # a thread.
    server, broker = await asyncio.gather(
        asyncio.to_thread(read_server_facts, settings.mysql),
        read_broker_facts(settings.kafka),
    )
    return server, broker


# --- presentation -------------------------------------------------------------------


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
