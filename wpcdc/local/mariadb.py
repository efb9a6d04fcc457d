"""A private MariaDB server started from the OS binaries, for the demo and the tests.

It lives in a directory of its own on a free loopback port with a ROW/FULL/FULL
binary log, so it never touches a system database. Needs Debian's
``mariadb-server`` (``mariadbd``, ``mariadb-install-db``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from wpcdc.core.errors import LocalStackError
from wpcdc.local.ports import free_port
from wpcdc.local.server import BINLOG_ARGS, LocalServer, run_logged, spawn

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
class MariaDBServer(LocalServer):
    """A running private MariaDB. ``stop()`` ends it; the directory is the caller's."""

    program: str = "mariadbd"

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
        process = spawn(args, cwd=datadir)
        server = cls(
            directory=directory,
            port=port,
            process=process,
            binlog=binlog,
            extra_args=tuple(extra_args),
        )
        server.wait_ready(timeout)
        return server

    def restarted(self) -> MariaDBServer:
        return MariaDBServer.start(
            self.directory, port=self.port, binlog=self.binlog, extra_args=self.extra_args
        )


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
    run_logged(args, log, "mariadb-install-db")
