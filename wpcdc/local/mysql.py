"""A private Oracle MySQL server from the Debian sid tree, for the tests.

Like :mod:`wpcdc.local.mariadb`, it lives in a directory of its own on a free
loopback port with the binary log wpcdc needs, so it never touches a system
database. The server is ``mysqld`` from :mod:`wpcdc.local.sidtree` (Oracle
MySQL 9.x), run with the tree's own libraries; its accounts use MySQL's default
authentication (``caching_sha2_password``), and ``--initialize`` gives it a CA
and server certificate (``ca.pem``, ``server-cert.pem`` in the data directory)
so that TLS works out of the box.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wpcdc.local.server import BINLOG_ARGS, LocalServer, run_logged
from wpcdc.local.sidtree import SidTree

MYSQLD = "/usr/sbin/mysqld"
# What wpcdc needs, with GTIDs on as most MySQL replication setups have them.
MYSQL_BINLOG_ARGS = (*BINLOG_ARGS, "--gtid-mode=ON", "--enforce-gtid-consistency=ON")
# A throwaway server: no durability, small memory (performance_schema off:
# ~290 MB resident instead of ~530 MB, measured on 9.7), no X protocol port to
# collide with other servers on the machine.
SPEED_ARGS = (
    "--innodb-flush-log-at-trx-commit=2",
    "--sync-binlog=0",
    "--innodb-buffer-pool-size=64M",
    "--performance-schema=OFF",
    "--mysqlx=OFF",
    "--max-allowed-packet=64M",
)


@dataclass
class MysqlServer(LocalServer):
    """A running private Oracle MySQL. ``stop()`` ends it; the directory is the caller's."""

    tree: SidTree | None = None
    program: str = "mysqld"
    _datadir: Path = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._datadir = self.directory / "data"

    @property
    def datadir(self) -> Path:
        """Where the server keeps its data, and the certificates ``--initialize`` made."""
        return self._datadir

    binlog_args = MYSQL_BINLOG_ARGS

    @classmethod
    def _initialise(cls, directory: Path, datadir: Path, **flavor: Any) -> None:
        tree: SidTree = flavor["tree"]
        # An empty root password; the root account still uses caching_sha2_password.
        run_logged(
            tree.command(MYSQLD, *_common_args(tree, datadir), "--initialize-insecure"),
            directory / "install.log",
            "mysqld --initialize-insecure",
        )

    @classmethod
    def _server_args(cls, datadir: Path, **flavor: Any) -> list[str]:
        return [*_common_args(flavor["tree"], datadir), "--secure-file-priv=", *SPEED_ARGS]

    @classmethod
    def _command(cls, args: list[str], **flavor: Any) -> list[str]:
        tree: SidTree = flavor["tree"]
        return tree.command(MYSQLD, *args)

    def _flavor(self) -> dict[str, Any]:
        return {"tree": self.tree}


def _common_args(tree: SidTree, datadir: Path) -> list[str]:
    """What both --initialize and the server need: where the data and the tree's
    shared files (error messages, character sets, plugins) are."""
    args = [
        "--no-defaults",
        f"--datadir={datadir}",
        f"--basedir={tree.mysql_basedir}",
        f"--lc-messages-dir={tree.root / 'usr/share/mysql'}",
        f"--character-sets-dir={tree.root / 'usr/share/mysql/charsets'}",
        f"--plugin-dir={tree.root / 'usr/lib/mysql/plugin'}",
    ]
    if os.geteuid() == 0:
        args.append("--user=root")
    return args
