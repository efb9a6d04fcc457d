"""Freshness: from WordPress returning from a save to the save being readable on the topic.

Starts a private MariaDB, the Tansu broker and a real WordPress, then two
``wpcdc run`` processes side by side on the same binlog, each to its own topic:

- ``fold``: the default settings (a group closes after ``fold.quiet_seconds`` of
  quiet, at ``fold.max_age_seconds`` at the latest);
- ``window0``: ``fold.window_seconds = 0``, every transaction its own events
  (the lowest latency wpcdc can offer, and the most events).

An editor then saves one post ``--saves`` times, ``--min-gap``..``--max-gap``
seconds apart: ``wp_update_post()`` with a new title and a tag, then
``update_post_meta()``, as the block editor's save does. PHP reports the time it
returned (``microtime(true)``; same machine, same clock); a consumer on both
topics notes when each record arrives. Per save and variant:

- *first*: the first event carrying any of the save's changes (it can come
  before PHP returns: with ``window0`` the title's transaction is on the topic
  while PHP still writes the tag and the meta);
- *whole*: the last of its changes (title, tag, meta) to become readable;
- *events*: how many events carried its changes, and all events on the topic
  per save (WordPress also writes revisions, counts, bookkeeping); *own*:
  whether its title came as an event of its own (not merged into the next save).

    .venv/bin/python benchmarks/bench_latency.py            # 20 saves, ~1 min
    .venv/bin/python benchmarks/bench_latency.py --saves 50 --min-gap 0.5 --max-gap 1.0
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _workload import install_wordpress

from wpcdc.local.broker import TansuBroker
from wpcdc.local.mariadb import MariaDBServer

VARIANTS: dict[str, dict[str, str]] = {
    "fold": {},
    "window0": {"WPCDC_FOLD__WINDOW_SECONDS": "0"},
}

CREATE = """
$id = wp_insert_post(['post_title' => 'Latency', 'post_status' => 'publish'], true);
if (is_wp_error($id)) { throw new Exception($id->get_error_message()); }
return $id;
"""

# One editor save: the post (title), its tags, one meta value; then the time.
SAVE = """
wp_update_post(['ID' => $args['id'], 'post_title' => "save {$args['n']}"]);
wp_set_post_tags($args['id'], ["t{$args['n']}"], true);
update_post_meta($args['id'], 'rev', (string) $args['n']);
return microtime(true);
"""


@dataclass
class Arrival:
    topic: str
    at: float
    event: dict[str, Any]


@dataclass
class Consumer:
    bootstrap: str
    topics: list[str]
    arrivals: list[Arrival] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=20)
                now = time.time()
                for tp, records in batches.items():
                    for record in records:
                        assert record.value is not None
                        event = orjson.loads(record.value)
                        self.arrivals.append(Arrival(tp.topic, now, event))
        finally:
            await consumer.stop()


def streamer(
    name: str, server: MariaDBServer, bootstrap: str, workdir: Path, server_id: int
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WPCDC_")}
    env.update(
        {
            "WPCDC_MYSQL__HOST": server.host,
            "WPCDC_MYSQL__PORT": str(server.port),
            "WPCDC_MYSQL__USER": server.user,
            "WPCDC_MYSQL__DATABASE": "bench",
            "WPCDC_MYSQL__SERVER_ID": str(server_id),
            "WPCDC_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "WPCDC_KAFKA__TOPIC": f"latency-{name}",
            "WPCDC_CHECKPOINT__PATH": str(workdir / f"{name}.checkpoint.json"),
            "WPCDC_METRICS__PORT": "0",
            **VARIANTS[name],
        }
    )
    log = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "wpcdc", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def save_parts(event: dict[str, Any], n: int) -> set[str]:
    """Which of save ``n``'s changes this event carries."""
    data = event.get("data", {})
    parts = set()
    if data.get("post", {}).get("title") == f"save {n}":
        parts.add("title")
    if any(t.get("slug") == f"t{n}" for t in data.get("added", [])):
        parts.add("tag")
    if any(c.get("key") == "rev" and c.get("value") == str(n) for c in data.get("changes", [])):
        parts.add("meta")
    return parts


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, arrivals: list[Arrival], saved: list[float]) -> None:
    mine = [a for a in arrivals if a.topic == f"latency-{name}"]
    first, whole, counts, own = [], [], [], 0
    for n, at in enumerate(saved):
        carrying = [(a, save_parts(a.event, n)) for a in mine]
        carrying = [(a, p) for a, p in carrying if p]
        seen: dict[str, float] = {}
        for arrival, parts in carrying:
            for part in parts:
                seen.setdefault(part, arrival.at)
        if set(seen) != {"title", "tag", "meta"}:
            print(f"  {name}: save {n} incomplete on the topic: {sorted(seen)}")
            continue
        first.append(min(seen.values()) - at)
        whole.append(max(seen.values()) - at)
        counts.append(len({a.event["id"] for a, _ in carrying}))
        titles = [a for a, p in carrying if "title" in p]
        own += all(not save_parts(a.event, m) for a in titles for m in range(len(saved)) if m != n)
    ms = [1000 * x for x in whole]
    everything = len({a.event["id"] for a in mine}) / len(saved)
    print(
        f"| {name} | {1000 * statistics.median(first):.0f} | {statistics.median(ms):.0f} "
        f"| {quantile(ms, 0.9):.0f} | {quantile(ms, 0.99):.0f} | {max(ms):.0f} "
        f"| {statistics.median(counts):.0f} ({min(counts)}-{max(counts)}) | {everything:.1f} "
        f"| {own}/{len(saved)} |"
    )


async def measure(args: argparse.Namespace, work: Path) -> None:
    server = MariaDBServer.start(work / "mysql")
    broker = TansuBroker.start(work / "broker")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        site, _ = install_wordpress(server)
        post_id = int(site.php(CREATE))
        processes = [
            streamer(name, server, broker.bootstrap_servers, work, 1000 + i)
            for i, name in enumerate(VARIANTS)
        ]
        for name in VARIANTS:  # both have saved their start position
            path = work / f"{name}.checkpoint.json"
            deadline = time.monotonic() + 60
            while not path.exists():
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not start: see {work / (name + '.log')}")
                await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # the readers are connected
        consumer = Consumer(broker.bootstrap_servers, [f"latency-{n}" for n in VARIANTS])
        stop = asyncio.Event()
        consuming = asyncio.create_task(consumer.run(stop))
        rng = random.Random(args.seed)
        saved: list[float] = []
        for n in range(args.saves):
            result = await asyncio.to_thread(site.php, SAVE, {"id": post_id, "n": n})
            saved.append(float(result))
            await asyncio.sleep(rng.uniform(args.min_gap, args.max_gap))
        await asyncio.sleep(3.0)
        stop.set()
        await consuming
        print(
            f"\n{args.saves} saves, {args.min_gap}-{args.max_gap} s apart "
            "(latency in ms from WordPress returning to readable by a consumer)\n"
        )
        print(
            "| variant | first p50 | whole p50 | whole p90 | whole p99 | max "
            "| events carrying a save | all events per save | own event |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for name in VARIANTS:
            report(name, consumer.arrivals, saved)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        broker.stop()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--saves", type=int, default=20)
    parser.add_argument("--min-gap", type=float, default=1.2)
    parser.add_argument("--max-gap", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wpcdc-latency-"))
    try:
        asyncio.run(measure(args, work))
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
