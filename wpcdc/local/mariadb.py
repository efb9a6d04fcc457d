"""A private MariaDB server started from the OS binaries, for the demo and the tests.

It lives in a directory of its own on a free loopback port with a ROW/FULL/FULL
binary log, so it never touches a system database. Needs Debian's
``mariadb-server`` (``mariadbd``, ``mariadb-install-db``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from wpcdc.core.errors import LocalStackError
from wpcdc.local.ports import free_port, log_tail, stop_process

# The settings wpcdc needs (see `wpcdc check`); tests that want a misconfigured
# server pass overrides, which win because mariadbd takes the last value given.
BINLOG_ARGS = (
    "--log-bin=binlog",
    "--server-id=1",
    "--binlog-format=ROW",
    "--binlog-row-image=FULL",
    "--binlog-row-metadata=FULL",
)
# Durability is not what a throwaway server is for; these make WordPress installs fast.
SPEED_ARGS = (
    "--innodb-flush-log-at-trx-commit=2",
    "--sync-binlog=0",
    "--innodb-buffer-pool-size=128M",
    "--innodb-log-file-size=64M",
    "--skip-name-resolve",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    "--max-allowed-packet=64M",
)

INSTALL_HINT = "install Debian's MariaDB: apt-get install -y mariadb-server mariadb-client"


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/usr/local/bin")
        if found:
            return found
    raise LocalStackError(f"{names[0]} not found: {INSTALL_HINT}")


@dataclass
class MariaDBServer:
    """A running private server. ``stop()`` ends it; the directory is the caller's."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    binlog: bool = True
    extra_args: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    user: str = "root"
    password: str = ""
    _log: Path = field(init=False)

    def __post_init__(self) -> None:
        self._log = self.directory / "mariadbd.log"

    @classmethod
    def start(
        cls,
        directory: Path,
        *,
        port: int | None = None,
        binlog: bool = True,
        extra_args: tuple[str, ...] | list[str] = (),
        timeout: float = 60.0,
    ) -> MariaDBServer:
        """Initialise ``directory`` (when new) and start a server in it; wait until it answers."""
        mariadbd = _binary("mariadbd", "mysqld")
        directory.mkdir(parents=True, exist_ok=True)
        datadir = directory / "data"
        if not (datadir / "mysql").is_dir():
            _install_db(datadir, directory / "install.log")
        port = port or free_port()
        args = [
            mariadbd,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={directory / 'mariadbd.sock'}",
            f"--pid-file={directory / 'mariadbd.pid'}",
            f"--log-error={directory / 'mariadbd.log'}",
            *SPEED_ARGS,
        ]
        if os.geteuid() == 0:
            args.append("--user=root")
        if binlog:
            args.extend(BINLOG_ARGS)
        else:
            args.append("--skip-log-bin")
        args.extend(extra_args)
        process = subprocess.Popen(
            args,
            cwd=datadir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal is ours to handle, not its
        )
        server = cls(
            directory=directory,
            port=port,
            process=process,
            binlog=binlog,
            extra_args=tuple(extra_args),
        )
        server._wait_ready(timeout)
        return server

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

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise LocalStackError(
                    f"mariadbd exited with code {self.process.returncode} while starting:\n"
                    + self.log_tail()
                )
            try:
                self.connect().close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise LocalStackError(
                        f"mariadbd did not answer on port {self.port} within {timeout:.0f}s:\n"
                        + self.log_tail()
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


def _install_db(datadir: Path, log: Path) -> None:
    install = _binary("mariadb-install-db", "mysql_install_db")
    args = [
        install,
        "--no-defaults",
        f"--datadir={datadir}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
    ]
    if os.geteuid() == 0:
        args.append("--user=root")
    with log.open("wb") as out:
        result = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise LocalStackError(f"mariadb-install-db failed (exit {result.returncode}):\n{tail}")
