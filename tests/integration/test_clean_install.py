"""A clean, non-editable install connects to Oracle MySQL with its default authentication.

MySQL accounts use caching_sha2_password unless told otherwise; over a
connection without TLS, PyMySQL needs the ``cryptography`` package to send the
password, which a clean ``pip install wpcdc`` (and the Docker image) only has
because wpcdc declares it. Built here as tests/support/clean_install.py says.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.support.clean_install import (
    build_wheel,
    closure,
    declared_requirements,
    fresh_environment,
)
from tests.support.infra import KafkaEndpoint, MysqlEndpoint
from tests.support.streaming import wpcdc_env
from wpcdc.core.errors import EXIT_OK, EXIT_PREFLIGHT
from wpcdc.local.wordpress import WordPressSite

pytestmark = [pytest.mark.integration, pytest.mark.flavors("mysql")]

PASSWORD = "clean-install-pw-1"


@pytest.fixture
def default_account(mysql_server: MysqlEndpoint, wordpress: WordPressSite) -> Iterator[str]:
    """An account as README creates it, with the server's default authentication."""
    name = f"wpcdc_{uuid.uuid4().hex[:8]}"
    mysql_server.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{PASSWORD}'")
    try:
        mysql_server.execute(f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{name}'@'%'")
        mysql_server.execute(f"GRANT SELECT ON `{wordpress.database}`.* TO '{name}'@'%'")
        ((plugin,),) = mysql_server.execute(f"SELECT plugin FROM mysql.user WHERE user = '{name}'")
        assert plugin == "caching_sha2_password"
        yield name
    finally:
        mysql_server.execute(f"DROP USER IF EXISTS '{name}'@'%'")


def check(python: Path, env: dict[str, str], cwd: Path) -> tuple[int, dict[str, dict[str, str]]]:
    # -I: nothing from the environment or the working directory joins sys.path.
    done = subprocess.run(
        [str(python), "-I", "-m", "wpcdc", "check", "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout, done.stderr
    return done.returncode, {c["name"]: c for c in orjson.loads(done.stdout)["checks"]}


def test_a_clean_install_logs_in_with_caching_sha2_password_over_plain_tcp(
    mysql_server: MysqlEndpoint,
    wordpress: WordPressSite,
    default_account: str,
    kafka_broker: KafkaEndpoint,
    kafka_topic: str,
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path / "dist")
    declared = declared_requirements(wheel)
    installed = closure(declared)
    assert "cryptography" in installed, declared
    env = wpcdc_env(
        mysql_server, wordpress.database, kafka_broker.bootstrap_servers, kafka_topic, tmp_path
    )
    env.update({"WPCDC_MYSQL__USER": default_account, "WPCDC_MYSQL__PASSWORD": PASSWORD})
    workdir = tmp_path / "work"
    workdir.mkdir()

    # The control: the same install without cryptography cannot log in. (FLUSH
    # PRIVILEGES empties the server's cache of verified passwords, so each login
    # below does the full exchange, not the cached shortcut.)
    without = fresh_environment(
        tmp_path / "without", wheel, closure(declared, without=frozenset({"cryptography"}))
    )
    mysql_server.execute("FLUSH PRIVILEGES")
    code, checks = check(without, env, workdir)
    assert code == EXIT_PREFLIGHT and checks["connection"]["status"] == "FAIL", checks
    assert "cryptography" in checks["connection"]["detail"] + checks["connection"]["fix"]

    python = fresh_environment(tmp_path / "clean", wheel, installed)
    location = subprocess.run(
        [str(python), "-I", "-c", "import wpcdc; print(wpcdc.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert location.startswith(str(tmp_path / "clean")), location  # not the source tree
    mysql_server.execute("FLUSH PRIVILEGES")
    code, checks = check(python, env, workdir)
    assert checks["connection"]["status"] == "PASS", checks["connection"]
    assert "no TLS" in checks["connection"]["detail"]
    assert code == EXIT_OK, checks
