"""Seconds from ``scm ingest`` starting to the first events readable in bronze.

Two ways, one reader (delta-rs on the bronze table, as an analyst's query would see it):

* :func:`first_events_live`, part of ``python -m bench``'s ingest measure (beside the direct
  floor): a continuous ``scm ingest`` on a new lake joins a live stream at its end
  (``SCM_INGEST_STARTING_OFFSETS=latest``) while a marker event goes out every 0.2 s; the
  seconds from launching the command to the first marker readable in ``bronze/inventory``,
  then the SIGTERM stop.
* ``python -m bench.first_events`` starts a broker of its own, produces one simulated day,
  then starts a continuous ``scm ingest`` and polls ``bronze/orders`` until rows appear;
  then stops it with SIGTERM, produces the next day and starts it again on the existing lake
  (a restart: tables, checkpoint and ledger already there). Prints one JSON document: per
  start, seconds to the first readable rows and to every valid event produced to
  ``scm.orders``, and how long the stop took.
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
import uuid
from pathlib import Path
from typing import Any

from bench.kill_trials import _environment, own_settings
from scm.settings import Settings

STARTUP_LIMIT_S = 300.0
MARKER_INTERVAL_S = 0.2


def _rows_in_bronze(settings: Settings, entity: str = "orders") -> int:
    from deltalake import DeltaTable

    from scm.lake import Lake

    path = Lake.at(settings.lake).bronze(entity)
    if not DeltaTable.is_deltatable(path):
        return 0
    actions = DeltaTable(path).get_add_actions(flatten=True)
    return int(sum(actions.column("num_records").to_pylist() or [0]))


def _stop(ingest: subprocess.Popen[bytes]) -> dict[str, Any]:
    """SIGTERM, as a service manager stops it: seconds to exit and the exit code."""
    started = time.monotonic()
    ingest.send_signal(signal.SIGTERM)
    try:
        code = ingest.wait(timeout=120)
    except subprocess.TimeoutExpired:
        ingest.kill()
        code = ingest.wait()
    return {"stop_s": round(time.monotonic() - started, 1), "exit_code": code}


def first_events_live(settings: Settings, env: dict[str, str], log: Path) -> dict[str, Any]:
    """Launch ``scm ingest`` at the end of a live stream; seconds to the first marker in
    bronze (None when none showed up within ``STARTUP_LIMIT_S``), then stop it."""
    from confluent_kafka import Producer

    from bench.freshness import marker_event
    from bench.workload import producer_config

    producer = Producer({**producer_config(settings), "linger.ms": 0})
    run = uuid.uuid4().hex[:6]
    env = {**env, "SCM_INGEST_STARTING_OFFSETS": "latest"}
    launched = time.monotonic()
    with open(log, "wb") as out:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "scm.cli", "ingest"], env=env, stdout=out, stderr=out
        )
    first = None
    sent = 0
    try:
        while first is None and time.monotonic() - launched < STARTUP_LIMIT_S:
            if ingest.poll() is not None:
                break
            topic, key, value, _sku = marker_event(run, sent)
            producer.produce(topic, value=value, key=key)
            producer.poll(0)
            sent += 1
            if _rows_in_bronze(settings, "inventory"):
                first = round(time.monotonic() - launched, 1)
            time.sleep(MARKER_INTERVAL_S)
    finally:
        producer.flush(30)
        stopped = _stop(ingest) if ingest.poll() is None else {"exit_code": ingest.returncode}
    return {"first_events_s": first, "markers_sent": sent, **stopped}


def one_start(settings: Settings, env: dict[str, str], log: Path, expected: int) -> dict[str, Any]:
    """Start ``scm ingest``, time the first and the complete rows, stop it."""
    before = _rows_in_bronze(settings)
    started = time.monotonic()
    with open(log, "wb") as out:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "scm.cli", "ingest"], env=env, stdout=out, stderr=out
        )
    first = complete = None
    while time.monotonic() - started < STARTUP_LIMIT_S and complete is None:
        rows = _rows_in_bronze(settings) - before
        now = time.monotonic() - started
        if rows and first is None:
            first = round(now, 1)
        if rows >= expected:
            complete = round(now, 1)
        time.sleep(0.2)
    return {"first_rows_s": first, "all_orders_s": complete, "orders": expected, **_stop(ingest)}


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
