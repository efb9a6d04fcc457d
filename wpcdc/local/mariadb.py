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
from typing import Any

from wpcdc.core.errors import LocalStackError
from wpcdc.local.server import LocalServer, run_logged

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
    def _initialise(cls, directory: Path, datadir: Path, **flavor: Any) -> None:
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
        run_logged(args, directory / "install.log", "mariadb-install-db")

    @classmethod
    def _server_args(cls, datadir: Path, **flavor: Any) -> list[str]:
        args = ["--no-defaults", f"--datadir={datadir}", *SPEED_ARGS]
        if os.geteuid() == 0:
            args.append("--user=root")
        return args

    @classmethod
    def _command(cls, args: list[str], **flavor: Any) -> list[str]:
        return [_binary("mariadbd", "mysqld"), *args]
