"""What the private database servers of the demo and the tests have in common.

A :class:`LocalServer` is one server process on a free loopback port with a
directory of its own (data, socket, log), started by
:class:`~wpcdc.local.mariadb.MariaDBServer` or :class:`~wpcdc.local.mysql.MysqlServer`.
This module owns waiting until it answers, connecting as its root account, and
stopping it cleanly or as a crash would.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import pymysql

from wpcdc.core.errors import LocalStackError
from wpcdc.local.ports import free_port, log_tail, stop_process

# The binlog settings wpcdc needs (see `wpcdc check`), on either flavor; tests
# that want a misconfigured server pass overrides, which win because the server
# takes the last value given.
BINLOG_ARGS = (
    "--log-bin=binlog",
    "--server-id=1",
    "--binlog-format=ROW",
    "--binlog-row-image=FULL",
    "--binlog-row-metadata=FULL",
)


@dataclass
class LocalServer:
    """A running private server. ``stop()`` ends it; the directory is the caller's.

    :meth:`start` is the same for every flavor; a flavor says how to initialise a
    data directory (:meth:`_initialise`), which arguments its server takes
    (:meth:`_server_args`) and how to run its program (:meth:`_command`).
    """

    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    binlog: bool = True
    extra_args: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    user: str = "root"
    password: str = ""
    # The server program's name, for messages.
    program: str = "mysqld"
    _log: Path = field(init=False)

    def __post_init__(self) -> None:
        self._log = self.directory / f"{self.program}.log"

    # The binlog arguments of this flavor (BINLOG_ARGS, or more).
    binlog_args: ClassVar[tuple[str, ...]] = BINLOG_ARGS

    @classmethod
    def start(
        cls,
        directory: Path,
        *,
        port: int | None = None,
        binlog: bool = True,
        extra_args: Sequence[str] = (),
        timeout: float = 60.0,
        **flavor: Any,
    ) -> Self:
        """Initialise ``directory`` (when new) and start a server in it; wait until it
        answers. ``flavor`` holds what a flavor needs besides (MySQL: its ``tree``)."""
        directory.mkdir(parents=True, exist_ok=True)
        datadir = directory / "data"
        if not (datadir / "mysql").is_dir():
            cls._initialise(directory, datadir, **flavor)
        port = port or free_port()
        program = cls.program  # the field's default
        args = [
            *cls._server_args(datadir, **flavor),
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={directory / f'{program}.sock'}",
            f"--pid-file={directory / f'{program}.pid'}",
            f"--log-error={directory / f'{program}.log'}",
            *(cls.binlog_args if binlog else ("--skip-log-bin",)),
            *extra_args,
        ]
        process = spawn(cls._command(args, **flavor), cwd=datadir)
        server = cls(
            directory=directory,
            port=port,
            process=process,
            binlog=binlog,
            extra_args=tuple(extra_args),
            **flavor,
        )
        server.wait_ready(timeout)
        return server

    def restarted(self) -> Self:
        """A new server on the same directory, port and settings (after stop or kill)."""
        return self.start(
            self.directory,
            port=self.port,
            binlog=self.binlog,
            extra_args=self.extra_args,
            **self._flavor(),
        )

    @classmethod
    def _initialise(cls, directory: Path, datadir: Path, **flavor: Any) -> None:
        raise NotImplementedError

    @classmethod
    def _server_args(cls, datadir: Path, **flavor: Any) -> list[str]:
        raise NotImplementedError

    @classmethod
    def _command(cls, args: list[str], **flavor: Any) -> list[str]:
        raise NotImplementedError

    def _flavor(self) -> dict[str, Any]:
        """What :meth:`start` needs besides the common settings to start this server again."""
        return {}

    @property
    def url(self) -> str:
        return f"mysql://{self.user}@{self.host}:{self.port}"

    def connect(self, database: str | None = None) -> pymysql.connections.Connection:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=5,
        )

    def wait_ready(self, timeout: float) -> None:
        """Return once the server accepts a login; raise LocalStackError with its log if
        it exits or does not answer within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise LocalStackError(
                    f"{self.program} exited with code {self.process.returncode} while starting:\n"
                    + self.log_tail()
                )
            try:
                self.connect().close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise LocalStackError(
                        f"{self.program} did not answer on port {self.port} within "
                        f"{timeout:.0f}s:\n" + self.log_tail()
                    ) from None
                time.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self._log, lines)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop cleanly (SIGTERM), killing the server if it does not finish in time."""
        stop_process(self.process, timeout)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def spawn(argv: list[str], *, cwd: Path) -> subprocess.Popen[bytes]:
    """Start a server process detached from the terminal: its output goes to its own
    log (the argv names it), and a Ctrl-C in the terminal is ours to handle, not its."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def run_logged(argv: list[str], log: Path, what: str, *, cwd: Path | None = None) -> None:
    """Run a one-off setup command (initialising a data directory) into ``log``; raise
    LocalStackError with the log's tail when it fails."""
    with log.open("wb") as out:
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, check=False)
    if result.returncode != 0:
        raise LocalStackError(f"{what} failed (exit {result.returncode}):\n{log_tail(log)}")
