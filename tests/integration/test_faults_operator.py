"""Fault suite (issue 10), operator mistakes: each is noticed, stops `wpcdc` with one
line that says what to do, and the exit code the README documents. Real MariaDB, the
broker and `wpcdc` processes, as an operator would run them."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.support.stack import Stack, WordPressStack
from tests.support.streaming import Streamer
from wpcdc.core.errors import EXIT_CONFIG, EXIT_OK, EXIT_POSITION_LOST, EXIT_PREFLIGHT

pytestmark = pytest.mark.integration


def one_line_error(output: str) -> str:
    """The error line of a run that must fail without a traceback."""
    assert "Traceback" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output[-3000:]
    return errors[0]


def test_two_streamers_with_one_server_id_one_stops_with_exit_3(wp_stack: WordPressStack) -> None:
    first = wp_stack.streamer
    first.start()
    # The same settings, checkpoint and mysql.server_id: a second deployment by mistake.
    second = Streamer(env=dict(first.env), workdir=wp_stack.workdir)
    second.runs = 100  # its own log files
    try:
        second.start()
        deadline = time.monotonic() + 30
        while first.process.poll() is None and second.process.poll() is None:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "neither streamer noticed the other"
            time.sleep(0.1)
        stopped, survivor = (first, second) if first.process.poll() is not None else (second, first)  # type: ignore[union-attr]
        assert stopped.process.returncode == EXIT_PREFLIGHT, stopped.log_text()[-3000:]  # type: ignore[union-attr]
        line = one_line_error(stopped.log_text())
        assert "mysql.server_id" in line and first.env["WPCDC_MYSQL__SERVER_ID"] in line
        # The other one keeps streaming.
        wp_stack.wordpress.php("return wp_insert_post(['post_title' => 'after the clash']);")
        survivor.wait_caught_up(wp_stack.server)
        assert survivor.stop() == EXIT_OK
    finally:
        second.close()


def test_bad_metrics_address_and_bad_environment_are_one_line_exit_2(stack: Stack) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        cases = [
            ({"WPCDC_METRICS__PORT": port}, f"port {port} is already in use"),
            ({"WPCDC_METRICS__PORT": "9", "WPCDC_METRICS__HOST": ""}, "metrics.host ''"),
            (
                {"WPCDC_METRICS__PORT": "9", "WPCDC_METRICS__HOST": "no-such-host.invalid"},
                "metrics.host 'no-such-host.invalid' cannot be resolved",
            ),
            ({"WPCDC_MYSQL": "password=hunter2-secret"}, "WPCDC_MYSQL is not valid JSON"),
        ]
        for env, expected in cases:
            result = stack.wpcdc("run", timeout=60, env=env)
            assert result.returncode == EXIT_CONFIG, (env, result.stderr[-3000:])
            line = one_line_error(result.stderr)
            assert expected in line and "hunter2-secret" not in result.stderr, line
    assert stack.streamer.checkpoint() is None  # nothing started


def test_a_secret_of_the_wrong_type_is_never_echoed(stack: Stack) -> None:
    config = stack.workdir / "wpcdc.toml"
    config.write_text('[kafka]\nsasl = "hunter2-secret"\n')
    result = stack.wpcdc("check", "--config", str(config), timeout=60)
    assert result.returncode == EXIT_CONFIG
    assert "kafka.sasl" in result.stderr and "hunter2-secret" not in result.stderr


def test_a_lost_position_says_snapshot_force_which_then_works(wp_stack: WordPressStack) -> None:
    streamer = wp_stack.streamer
    streamer.start()
    wp_stack.wordpress.php("return wp_insert_post(['post_title' => 'before the gap']);")
    wp_stack.wait_caught_up()
    assert streamer.stop() == EXIT_OK
    # The checkpoint's binlog file is gone (as after a purge with wpcdc stopped too long).
    saved = json.loads(streamer.checkpoint_path.read_text())
    saved["position"]["file"] = "binlog.000000"
    streamer.checkpoint_path.write_text(json.dumps(saved))
    result = wp_stack.wpcdc("run", timeout=60)
    assert result.returncode == EXIT_POSITION_LOST
    line = one_line_error(result.stderr)
    assert "`wpcdc snapshot --force`" in line
    # The advice works as given (a plain `wpcdc snapshot` refuses: a checkpoint exists).
    assert wp_stack.wpcdc("snapshot", timeout=120).returncode == EXIT_CONFIG
    snapshot = wp_stack.wpcdc("snapshot", "--force", timeout=120)
    assert snapshot.returncode == EXIT_OK, snapshot.stderr[-3000:]
    streamer.start()
    assert streamer.stop() == EXIT_OK


def test_a_server_behind_what_was_acknowledged_stops_with_exit_4(wp_stack: WordPressStack) -> None:
    streamer = wp_stack.streamer
    streamer.start()
    wp_stack.wordpress.php("return wp_insert_post(['post_title' => 'read and acknowledged']);")
    wp_stack.wait_caught_up()
    assert streamer.stop() == EXIT_OK
    good = streamer.checkpoint_path.read_text()
    saved = json.loads(good)
    domain, server, seq = saved["position"]["gtid_set"].split(",")[0].split("-")
    # As after a crash that cut the binlog short: the server's GTID state is behind the
    # checkpoint, and it would hand out those GTIDs again.
    saved["position"]["gtid_set"] = f"{domain}-{server}-{int(seq) + 1000}"
    streamer.checkpoint_path.write_text(json.dumps(saved))
    result = wp_stack.wpcdc("run", timeout=60)
    assert result.returncode == EXIT_POSITION_LOST, result.stderr[-3000:]
    line = one_line_error(result.stderr)
    assert "GTID state" in line and "`wpcdc snapshot --force`" in line
    # Acknowledged events past the checkpoint whose transactions the binlog no longer has.
    saved = json.loads(good)
    index = int(saved["position"]["file"].rsplit(".", 1)[1])
    saved["covered"] = [[1, 1, [index, saved["position"]["pos"] + 10_000_000, 0]]]
    streamer.checkpoint_path.write_text(json.dumps(saved))
    result = wp_stack.wpcdc("run", timeout=60)
    assert result.returncode == EXIT_POSITION_LOST, result.stderr[-3000:]
    assert "acknowledged events hold row changes" in one_line_error(result.stderr)
    # The checkpoint as it was still works.
    streamer.checkpoint_path.write_text(good)
    streamer.start()
    assert streamer.stop() == EXIT_OK


def test_after_an_idle_flush_the_checkpoint_reaches_the_binlog_end(
    wp_stack: WordPressStack,
) -> None:
    # logrotate or a backup runs FLUSH BINARY LOGS while nobody writes: the new file
    # starts with events that hold no transaction (MariaDB's GTID list and binlog
    # checkpoint events), and the checkpoint must still reach the end.
    streamer = wp_stack.streamer
    assert wp_stack.wpcdc("snapshot", timeout=120).returncode == EXIT_OK  # WordPress's own posts
    streamer.start()
    wp_stack.wordpress.php("return wp_insert_post(['post_title' => 'before the flush']);")
    wp_stack.wait_caught_up()
    wp_stack.server.execute("FLUSH BINARY LOGS")
    wp_stack.wait_caught_up(timeout=15)
    began = time.monotonic()
    verify = wp_stack.wpcdc("verify", "--wait", "60", timeout=120)
    assert verify.returncode == EXIT_OK, verify.stdout[-3000:] + verify.stderr[-3000:]
    assert time.monotonic() - began < 30  # it did not wait out --wait
    assert streamer.stop() == EXIT_OK
