"""A private Kafka-compatible broker with transactions (noida-db) for the tests.

The Tansu broker (:mod:`wpcdc.local.broker`) has no idempotent producer and no
transactions, so ``kafka.exactly_once`` is tested against ``noida-db``
(installed with the ``test`` extra): one small binary that speaks the Kafka
protocol with idempotent and transactional producers, fencing and
``read_committed`` reads, keeping its data in ``--data-dir`` across restarts.
Started with ``--only kafka``: otherwise it also opens Postgres, MySQL, Redis...
ports. Its consumer groups can hang when a member joins a running group, so
readers assign their partitions (as :mod:`wpcdc.kafka.topic` does anyway).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from wpcdc.core.errors import LocalStackError
from wpcdc.local.broker import LocalBroker
from wpcdc.local.ports import free_port

INSTALL_HINT = "install it: pip install 'wpcdc[test]' (or pip install noida-db)"


def noida_binary() -> str:
    """The noida-db binary inside its wheel (run directly: the ``noida-db`` script
    is a Python wrapper whose child would outlive a kill of the wrapper)."""
    try:
        from importlib.resources import files

        binary = files("noida_db").joinpath("noida-db")
    except ImportError:
        raise LocalStackError(f"no noida-db broker available: {INSTALL_HINT}") from None
    if not binary.is_file():
        raise LocalStackError(f"the noida-db binary is missing from its package: {INSTALL_HINT}")
    path = str(binary)
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)  # wheels do not always keep the mode
    return path


@dataclass
class NoidaBroker(LocalBroker):
    @classmethod
    def start(
        cls, directory: Path, *, port: int | None = None, timeout: float = 30.0
    ) -> NoidaBroker:
        """Start a broker on ``port`` (a free one by default), its data in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        args = [
            noida_binary(),
            "start",
            "--data-dir",
            str(directory / "data"),
            "--host",
            "127.0.0.1",
            "--only",
            "kafka",
            "--kafka-port",
            str(port),
        ]
        return cls.launch(
            args,
            directory=directory,
            port=port,
            log=directory / "noida.log",
            timeout=timeout,
            what="noida-db",
        )
