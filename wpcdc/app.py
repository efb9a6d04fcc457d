"""Wiring: settings in, adapters built with explicit arguments, results out.

Each command of the CLI is one function here; the CLI only parses options and
prints. Nothing here holds a rule: rules live in the pure modules.
"""

from __future__ import annotations

import asyncio

from wpcdc.database import read_server_facts
from wpcdc.kafka import read_broker_facts
from wpcdc.preflight import BrokerFacts, CheckResult, ServerFacts, ServerUnreachable, evaluate
from wpcdc.settings import Settings


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
