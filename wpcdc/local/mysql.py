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

from wpcdc.local.ports import free_port
from wpcdc.local.server import BINLOG_ARGS, LocalServer, run_logged, spawn
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

    @classmethod
    def start(
        cls,
        directory: Path,
        *,
        tree: SidTree,
        port: int | None = None,
        binlog: bool = True,
        extra_args: tuple[str, ...] | list[str] = (),
        timeout: float = 60.0,
    ) -> MysqlServer:
        """Initialise ``directory`` (when new) and start a server in it; wait until it answers."""
        directory.mkdir(parents=True, exist_ok=True)
        datadir = directory / "data"
        common = _common_args(tree, datadir)
        if not (datadir / "mysql").is_dir():
            # An empty root password; the root account still uses caching_sha2_password.
            run_logged(
                tree.command(MYSQLD, *common, "--initialize-insecure"),
                directory / "install.log",
                "mysqld --initialize-insecure",
            )
        port = port or free_port()
        args = [
            *common,
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={directory / 'mysqld.sock'}",
            f"--pid-file={directory / 'mysqld.pid'}",
            f"--log-error={directory / 'mysqld.log'}",
            "--secure-file-priv=",
            *SPEED_ARGS,
        ]
        args.extend(MYSQL_BINLOG_ARGS if binlog else ("--skip-log-bin",))
        args.extend(extra_args)
        process = spawn(tree.command(MYSQLD, *args), cwd=datadir)
        server = cls(
            directory=directory,
            port=port,
            process=process,
            binlog=binlog,
            extra_args=tuple(extra_args),
            tree=tree,
        )
        server.wait_ready(timeout)
        return server

    def restarted(self) -> MysqlServer:
        assert self.tree is not None
        return MysqlServer.start(
            self.directory,
            tree=self.tree,
            port=self.port,
            binlog=self.binlog,
            extra_args=self.extra_args,
        )


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
