"""Installing a real WordPress into a test database."""

from __future__ import annotations

import threading
from typing import Any

from tests.support.infra import InfraMissing, MysqlEndpoint
from wpcdc.core.errors import LocalStackError
from wpcdc.local.wordpress import WordPressSite


def install_wordpress(
    server: MysqlEndpoint, database: str, *, table_prefix: str = "wp_", multisite: bool = False
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
