"""Installing a real WordPress into a test database, in the release the test asks for.

Releases (:data:`RELEASES`): "6.1" is Debian stable's ``wordpress`` package
(/usr/share/wordpress, installed by scripts/bootstrap), "7" the current one from
the Debian sid tree (:mod:`wpcdc.local.sidtree`). Both run on the host's PHP.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tests.support.infra import InfraMissing, MysqlEndpoint, oracle_mysql_tree
from wpcdc.core.errors import LocalStackError
from wpcdc.local.sidtree import find_tree, wordpress_version
from wpcdc.local.wordpress import DEFAULT_ROOT, WordPressSite

RELEASES = ("6.1", "7")
DEFAULT_RELEASE = "6.1"


def wordpress_root(release: str) -> Path:
    """Where the files of WordPress ``release`` are (the sid tree is built when missing)."""
    if release == "6.1":
        return DEFAULT_ROOT
    if release == "7":
        return oracle_mysql_tree().wordpress_root
    raise ValueError(f"unknown WordPress release {release!r}; known: {', '.join(RELEASES)}")


def installed_version(root: Path) -> str:
    """``$wp_version`` of the WordPress files in ``root``, or why there is none."""
    try:
        return wordpress_version(root)
    except LocalStackError as exc:
        return str(exc)


def wordpress_summary() -> str:
    """Which WordPress each release runs, for the test report's header."""
    tree = find_tree()
    sid = f"{tree.wordpress_version} in {tree.root}" if tree else "sid tree not built yet"
    return f"6.1: {installed_version(DEFAULT_ROOT)} in {DEFAULT_ROOT}; 7: {sid}"


def install_wordpress(
    server: MysqlEndpoint,
    database: str,
    *,
    table_prefix: str = "wp_",
    multisite: bool = False,
    root: Path = DEFAULT_ROOT,
) -> WordPressSite:
    try:
        site = WordPressSite(
            host=server.host,
            port=server.port,
            user=server.user,
            password=server.password,
            database=database,
            table_prefix=table_prefix,
            multisite=multisite,
            root=root,
        )
        site.install(title=f"wpcdc test {database}")
    except LocalStackError as exc:
        raise InfraMissing(str(exc)) from None
    return site


class BackgroundPhp(threading.Thread):
    """A PHP snippet running inside WordPress in the background, as a busy site's
    writer would; ``finish()`` joins it and returns what the snippet returned."""

    def __init__(self, site: WordPressSite, code: str, args: Any = None, timeout: float = 600):
        super().__init__(daemon=True)
        self._site, self._code, self._args, self._timeout = site, code, args, timeout
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._site.php(self._code, self._args, timeout=self._timeout)
        except BaseException as exc:  # raised again by finish()
            self.error = exc

    def finish(self, timeout: float = 300) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "the WordPress writer did not finish"
        if self.error is not None:
            raise self.error
        return self.result
