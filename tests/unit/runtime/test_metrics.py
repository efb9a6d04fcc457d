"""The metrics endpoint's address problems are one-line configuration errors (issue 10)."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import CollectorRegistry

from wpcdc.core.errors import EXIT_CONFIG, ConfigError
from wpcdc.runtime.metrics import Metrics


def serve_error(host: str, port: int) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Metrics(CollectorRegistry()).serve(host, port)
    assert info.value.exit_code == EXIT_CONFIG
    assert len(str(info.value).splitlines()) == 1
    return info.value


def test_a_port_in_use_names_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message = str(serve_error("127.0.0.1", port))
    assert f"port {port} is already in use" in message and "metrics.port" in message


@pytest.mark.parametrize("host", ["", "no-such-host.invalid"])
def test_an_empty_or_unresolvable_host_names_the_setting(host: str) -> None:
    message = str(serve_error(host, 0))
    assert f"metrics.host {host!r} cannot be resolved" in message


def test_an_address_of_another_machine_names_both_settings() -> None:
    message = str(serve_error("192.0.2.1", 0))  # TEST-NET-1: never local
    assert "cannot listen on 192.0.2.1" in message and "metrics.host" in message
