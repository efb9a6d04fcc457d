"""``wpcdc demo``: the whole flow on this machine, from nothing to events on screen.

Starts a private MariaDB with a binlog, the Tansu broker and a real WordPress
(wpcdc.local), runs ``wpcdc run`` against them as a separate process, edits
posts through WordPress and behind its back (raw SQL), then prints the topic
the way ``wpcdc tail`` does. Everything lives in one directory and is stopped
at the end unless ``keep`` is set.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from wpcdc.config.settings import KafkaSettings
from wpcdc.core.errors import LocalStackError
from wpcdc.local.broker import TansuBroker
from wpcdc.local.mariadb import MariaDBServer
from wpcdc.local.wordpress import WordPressSite

DATABASE = "wordpress"
TOPIC = "wordpress.events"

# Each step: what a reader should know, and the PHP that does it inside WordPress.
STEPS: list[tuple[str, str]] = [
    (
        "wp_insert_post(): a draft with two tags and a meta array",
        """return wp_insert_post(['post_title' => 'Hello from wpcdc', 'post_content' => 'First draft',
            'post_status' => 'draft', 'tags_input' => ['cdc', 'binlog'],
            'meta_input' => ['reading_time' => ['minutes' => 3, 'words' => 540]]], true);""",
    ),
    (
        "wp_update_post(): a new title",
        "return wp_update_post(['ID' => $args['id'], 'post_title' => 'Hello again, wpcdc'], true);",
    ),
    ("wp_publish_post()", "wp_publish_post($args['id']); return true;"),
    (
        "raw SQL behind WordPress's back: UPDATE wp_posts SET post_content = ...",
        """global $wpdb;
        return $wpdb->query($wpdb->prepare(
            "UPDATE {$wpdb->posts} SET post_content = %s WHERE ID = %d",
            'Rewritten by a migration script', $args['id']));""",
    ),
    (
        "raw SQL: INSERT INTO wp_term_relationships (tag the post without WordPress)",
        """global $wpdb;
        $term = wp_insert_term('direct-sql', 'post_tag');
        return $wpdb->insert($wpdb->term_relationships,
            ['object_id' => $args['id'], 'term_taxonomy_id' => $term['term_taxonomy_id']]);""",
    ),
    ("wp_trash_post()", "return (bool) wp_trash_post($args['id']);"),
]


def run(directory: Path, *, keep: bool, say: Callable[[str], None]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with _stack(directory, keep=keep, say=say) as (db, broker, site):
        env = _environment(db, broker, directory)
        say("starting `wpcdc run` (log: " + str(directory / "wpcdc-run.log") + ")")
        with _streamer(env, directory / "wpcdc-run.log") as streamer:
            _wait_for_start(directory / "checkpoint.json", streamer)
            post_id: int | None = None
            for number, (title, php) in enumerate(STEPS, start=1):
                say(f"  {number}. {title}")
                result = site.php(php, {"id": post_id})
                if post_id is None:
                    post_id = int(result)
                # More than the fold window: each step becomes its own set of events.
                time.sleep(2.2)
            say("waiting for the last events to be acknowledged")
            time.sleep(3)
        say("")
        say(f"events on topic {TOPIC} (wpcdc tail --from-beginning --no-follow):")
        say("")
        _print_topic(broker.bootstrap_servers)
        if keep:
            say("")
            say("the servers keep running; connect with:")
            for name, value in env.items():
                if name.startswith("WPCDC_") and "METRICS" not in name:
                    say(f"  export {name}={value}")
            say(f"  wpcdc tail      # and edit posts via php, see {directory}")


@contextlib.contextmanager
def _stack(
    directory: Path, *, keep: bool, say: Callable[[str], None]
) -> Iterator[tuple[MariaDBServer, TansuBroker, WordPressSite]]:
    say(f"starting a private MariaDB with a binary log in {directory / 'mariadb'}")
    db = MariaDBServer.start(directory / "mariadb")
    broker: TansuBroker | None = None
    try:
        say("starting the Tansu broker (Kafka API)")
        broker = TansuBroker.start(directory / "broker")
        say(f"  broker on {broker.bootstrap_servers}, MariaDB on 127.0.0.1:{db.port}")
        with contextlib.closing(db.connect()) as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
            cursor.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
        say("installing WordPress (Debian's package) into it")
        site = WordPressSite(
            host=db.host, port=db.port, user=db.user, password=db.password, database=DATABASE
        )
        site.install(title="wpcdc demo")
        yield db, broker, site
    finally:
        if not keep:
            if broker is not None:
                broker.stop()
            db.stop()


def _environment(db: MariaDBServer, broker: TansuBroker, directory: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("WPCDC_")}
    env.update(
        {
            "WPCDC_MYSQL__HOST": db.host,
            "WPCDC_MYSQL__PORT": str(db.port),
            "WPCDC_MYSQL__USER": db.user,
            "WPCDC_MYSQL__DATABASE": DATABASE,
            "WPCDC_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "WPCDC_KAFKA__TOPIC": TOPIC,
            "WPCDC_CHECKPOINT__PATH": str(directory / "checkpoint.json"),
            "WPCDC_METRICS__PORT": "0",
        }
    )
    return env


@contextlib.contextmanager
def _streamer(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "wpcdc", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_start(checkpoint: Path, process: subprocess.Popen[bytes]) -> None:
    # `wpcdc run` saves its starting checkpoint before it reads anything.
    deadline = time.monotonic() + 60
    while not checkpoint.exists():
        if process.poll() is not None:
            raise LocalStackError(
                f"`wpcdc run` exited with code {process.returncode}; see its log in "
                f"{checkpoint.parent / 'wpcdc-run.log'}"
            )
        if time.monotonic() > deadline:
            raise LocalStackError("`wpcdc run` did not start within 60 s")
        time.sleep(0.1)
    time.sleep(1.0)  # the reader connects right after the checkpoint is saved


def _print_topic(bootstrap_servers: str) -> None:
    from wpcdc.commands import tail

    options = tail.TailOptions(
        topic=TOPIC,
        as_json=False,
        from_beginning=True,
        follow=False,
        filter=tail.TailFilter(),
        max_events=None,
        color=tail.color_wanted(sys.stdout),
    )
    tail.run(KafkaSettings(bootstrap_servers=bootstrap_servers, topic=TOPIC), options)
