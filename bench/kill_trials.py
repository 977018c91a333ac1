"""kill -9 at random moments of a running ``scm ingest``, many times; then exactly-once.

``python -m bench.kill_trials --trials 10`` starts a broker of its own and simulates a few
days. Each trial starts ``scm ingest`` (continuous, 0.5 s trigger), produces the next slice
of the history in three parts while it runs (so there are several batches to interrupt),
and at a random moment 5–60 s after the start (start-up, a batch's bronze appends, its
ledger or position write, idle) kills the command and its Spark JVM with SIGKILL; each
trial reports how many batches it committed. After the last trial ``scm ingest --once``
catches up and the lake is checked against the topics:

* every Kafka record is in ``bronze/<entity>`` or ``bronze/quarantine`` exactly once, by
  its (topic, partition, offset);
* every inventory position equals the rule of kpis.md recomputed from all of
  ``bronze/inventory`` by DuckDB (latest snapshot + the movements after it, each event_id
  once), so the ledger survived every kill.

Prints one JSON document: the kill moments, what each check found, and ``passed``. The
work folder is removed afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.demo import _free_port
from bench.memory import descendants
from scm.settings import Settings, load_settings

INVENTORY_RULE = """
with deduplicated as (
    select * from bronze_inventory
    qualify row_number() over (partition by event_id order by _topic, _partition, _offset) = 1
), cut as (
    select location_id, sku, max((event_time, event_id)) as latest
    from deduplicated where event_type = 'inventory_snapshot' group by all
)
select u.location_id, u.sku,
    coalesce(max(case when (u.event_time, u.event_id) = c.latest then u.on_hand end), 0)
    + coalesce(sum(case when u.event_type = 'inventory_movement'
        and (c.latest is null or u.event_time > c.latest[1]) then u.quantity_delta end), 0)
        as on_hand
from deduplicated u left join cut c using (location_id, sku)
group by all
"""


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it (the Spark JVM runs in its own session,
    so a group kill would miss it): a power cut for the ingest."""
    for process in descendants([pid]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)


def own_settings(work: Path) -> Settings:
    """Settings of a bench with its own lake, state and broker port under ``work``."""
    (work / "settings.toml").write_text("")
    return load_settings(
        {"SCM_LAKE": str(work / "lake"), "SCM_STATE": str(work / "state"),
         "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}",
         "SCM_SETTINGS_FILE": str(work / "settings.toml")}
    )  # fmt: skip


def _environment(settings: Settings, work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SCM_LAKE": settings.lake,
        "SCM_STATE": str(settings.state),
        "SCM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SCM_INGEST_TRIGGER_SECONDS": "0.5",
        "SCM_SETTINGS_FILE": str(work / "settings.toml"),
    }


def _topic_coordinates(settings: Settings) -> set[tuple[str, int, int]]:
    """(topic, partition, offset) of every record of the ``scm.*`` input topics."""
    from confluent_kafka import Consumer, TopicPartition

    from scm.contracts import TOPICS

    consumer = Consumer({**settings.librdkafka_config(), "group.id": "kill-trials",
                         "enable.auto.commit": False})  # fmt: skip
    found: set[tuple[str, int, int]] = set()
    try:
        for topic in TOPICS:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            for partition in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition))
                found.update((topic, partition, offset) for offset in range(low, high))
    finally:
        consumer.close()
    return found


def check_lake(settings: Settings) -> dict[str, Any]:
    """What the lake holds against the topics and the inventory rule (see the module doc)."""
    import duckdb
    import pyarrow as pa
    from deltalake import DeltaTable

    from scm.contracts import TOPICS
    from scm.lake import Lake

    lake = Lake.at(settings.lake)
    landed: list[tuple[str, int, int]] = []
    for topic in TOPICS.values():
        rows = DeltaTable(lake.bronze(topic.entity)).to_pyarrow_table(
            columns=["_topic", "_partition", "_offset"]
        )
        landed += list(zip(*(rows.column(c).to_pylist() for c in rows.column_names), strict=True))
    rejected = DeltaTable(lake.quarantine).to_pyarrow_table(
        columns=["topic", "partition", "offset"]
    )
    landed += list(
        zip(*(rejected.column(c).to_pylist() for c in rejected.column_names), strict=True)
    )
    expected = _topic_coordinates(settings)
    connection = duckdb.connect()
    connection.register("bronze_inventory", DeltaTable(lake.bronze("inventory")).to_pyarrow_table())
    connection.register(
        "position", DeltaTable(lake.silver("inventory_position")).to_pyarrow_table()
    )
    rule: pa.Table = connection.sql(INVENTORY_RULE).to_arrow_table()
    connection.register("rule", rule)
    mismatched = connection.sql(
        "select count(*) from rule full join position p using (location_id, sku)"
        " where rule.on_hand is distinct from p.on_hand"
    ).fetchall()[0]
    checks = {
        "records_in_topics": len(expected),
        "records_landed": len(landed),
        "duplicates": len(landed) - len(set(landed)),
        "missing": len(expected - set(landed)),
        "unexpected": len(set(landed) - expected),
        "positions": rule.num_rows,
        "positions_off_the_rule": int(mismatched[0]) if mismatched else -1,
    }
    checks["passed"] = (
        checks["duplicates"] == checks["missing"] == checks["unexpected"] == 0
        and checks["positions_off_the_rule"] == 0
    )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the lake and the logs")
    args = parser.parse_args()
    from scm.broker import EmbeddedBroker
    from scm.kafka import ensure_topics, produce_all, producer
    from simulator import SimulationOptions, generate_history

    chance = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="scm-kill-trials-"))
    settings = own_settings(work)
    env = _environment(settings, work)
    scm = [sys.executable, "-m", "scm.cli"]
    report: dict[str, Any] = {"trials": [], "work": str(work)}
    with EmbeddedBroker(settings):
        ensure_topics(settings)
        history = generate_history(
            SimulationOptions(days=args.days, seed=args.seed, progress=False)
        )
        records = [(r.topic, r.key, r.value) for r in history]
        size = -(-len(records) // args.trials)
        slices = [records[i : i + size] for i in range(0, len(records), size)]
        kafka = producer(settings)
        commits = Path(settings.lake) / "_checkpoints" / "scm_ingest_bronze" / "commits"
        for number, piece in enumerate(slices):
            committed_before = len(list(commits.glob("[0-9]*"))) if commits.exists() else 0
            with open(work / f"ingest-{number}.log", "wb") as log:
                ingest = subprocess.Popen([*scm, "ingest"], env=env, stdout=log, stderr=log)
            after = round(chance.uniform(5.0, 60.0), 1)
            started = time.monotonic()
            third = -(-len(piece) // 3)
            # Parts at +0, +10 and +20 s and the kill, in time order; a part due after the
            # kill is produced right after it (the next trial ingests it).
            moments = [(10.0 * part, part) for part in range(3)] + [(after, None)]
            for moment, part in sorted(moments, key=lambda m: (m[0], m[1] is None)):
                time.sleep(max(0.0, started + moment - time.monotonic()))
                if part is None:
                    _kill_tree(ingest.pid)
                    ingest.wait()
                else:
                    produce_all(kafka, piece[part * third : (part + 1) * third],
                                bootstrap=settings.kafka_bootstrap)  # fmt: skip
            committed = len(list(commits.glob("[0-9]*"))) if commits.exists() else 0
            report["trials"].append(
                {"killed_after_s": after, "records_produced": len(piece),
                 "batches_committed": committed - committed_before}
            )  # fmt: skip
            print(json.dumps(report["trials"][-1]), flush=True)
        caught_up = subprocess.run([*scm, "ingest", "--once"], env=env, capture_output=True)
        report["catch_up_exit_code"] = caught_up.returncode
        report["checks"] = check_lake(settings)
    report["passed"] = report["catch_up_exit_code"] == 0 and report["checks"]["passed"]
    print(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
