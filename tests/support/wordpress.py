"""Installing a real WordPress into a test database."""

from __future__ import annotations

from tests.support.infra import InfraMissing, MysqlEndpoint
from wpcdc.errors import LocalStackError
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
