"""Seconds from ``scm ingest`` starting to the first events readable in bronze.

``python -m bench.first_events`` starts a broker of its own, produces one simulated day,
then starts a continuous ``scm ingest`` and polls ``bronze/orders`` (delta-rs, as a reader
would) until rows appear; then stops it with SIGTERM, produces the next day and starts it
again on the existing lake (a restart: tables, checkpoint and ledger already there).
Prints one JSON document: per start, seconds to the first readable rows and to every
valid event produced to ``scm.orders``, and how long the stop took.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.kill_trials import _environment, own_settings
from scm.settings import Settings


def _orders_in_bronze(settings: Settings) -> int:
    from deltalake import DeltaTable

    from scm.lake import Lake

    path = Lake.at(settings.lake).bronze("orders")
    if not DeltaTable.is_deltatable(path):
        return 0
    actions = DeltaTable(path).get_add_actions(flatten=True)
    return int(sum(actions.column("num_records").to_pylist() or [0]))


def one_start(settings: Settings, env: dict[str, str], log: Path, expected: int) -> dict[str, Any]:
    """Start ``scm ingest``, time the first and the complete rows, stop it."""
    before = _orders_in_bronze(settings)
    started = time.monotonic()
    with open(log, "wb") as out:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "scm.cli", "ingest"], env=env, stdout=out, stderr=out
        )
    first = complete = None
    while time.monotonic() - started < 300 and complete is None:
        rows = _orders_in_bronze(settings) - before
        now = time.monotonic() - started
        if rows and first is None:
            first = round(now, 1)
        if rows >= expected:
            complete = round(now, 1)
        time.sleep(0.2)
    stop_started = time.monotonic()
    ingest.send_signal(signal.SIGTERM)
    code = ingest.wait(timeout=120)
    return {
        "first_rows_s": first,
        "all_orders_s": complete,
        "orders": expected,
        "stop_s": round(time.monotonic() - stop_started, 1),
        "exit_code": code,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    from scm.broker import EmbeddedBroker
    from scm.contracts import validate_event
    from scm.kafka import ensure_topics, produce_all, producer
    from simulator import SimulationOptions, generate_history

    work = Path(tempfile.mkdtemp(prefix="scm-first-events-"))
    settings = own_settings(work)
    env = {**_environment(settings, work), "SCM_INGEST_TRIGGER_SECONDS": "1"}
    report: dict[str, Any] = {}
    try:
        with EmbeddedBroker(settings):
            ensure_topics(settings)
            history = generate_history(SimulationOptions(days=2, seed=args.seed, progress=False))
            days: dict[str, list[tuple[str, str, bytes]]] = {}
            for record in history:
                day = json.loads(record.value).get("event_time", "")[:10]
                days.setdefault(day, []).append((record.topic, record.key, record.value))
            kafka = producer(settings)
            for name, day in zip(("new_lake", "restart"), sorted(days)[:2], strict=True):
                records = days[day]
                produce_all(kafka, records, bootstrap=settings.kafka_bootstrap)
                orders = sum(
                    1 for topic, _, value in records
                    if topic == "scm.orders" and validate_event(topic, value) is None
                )  # fmt: skip
                report[name] = one_start(settings, env, work / f"{name}.log", orders)
                report[name]["records_produced"] = len(records)
                print(json.dumps({name: report[name]}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
