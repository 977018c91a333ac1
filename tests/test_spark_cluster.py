"""The cluster profile end to end: ``scm cluster up`` starts a Spark master and worker and an
S3 object store beside the Kafka cluster; streaming ingest and the Spark engine of
``scm refresh`` run on the Spark cluster, and the lake lives in the object store.

One test goes the way a user does: ``scm cluster up``, export what it prints (the lake is
``s3://…``), ``scm simulate``, ``scm ingest --once`` (a broker killed while it runs),
``SCM_ENGINE=spark scm refresh``, ``SCM_ENGINE=duckdb scm refresh --full``, ``scm cluster
down``. The master's JSON view must list the applications as finished, and their executors'
logs (in the worker's folder) must show tasks run there; bronze must hold every Kafka message
exactly once, gold must equal the independent reading of kpis.md (``tests.kpi_reference``)
whichever engine wrote it, the files must be in the store's bucket, and ``scm sql`` and a
dashboard page read it as any lake. Afterwards no process of the
cluster may be left.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from deltalake import DeltaTable
from streamlit.testing.v1 import AppTest

from scm.contracts import TOPICS
from scm.errors import ScmError
from scm.lake import Lake
from scm.settings import load_settings
from scm.spark_cluster import SparkCluster
from simulator.world import build_world, master_data
from tests import kpi_reference
from tests.conftest import _free_port
from tests.test_refresh_end_to_end import mismatches

SCM = [sys.executable, "-m", "scm.cli"]
DASHBOARDS = Path(__file__).resolve().parents[1] / "dashboards" / "app_pages"
SEED = 17
SIMULATION = ["--days", "3", "--orders-per-day", "8", "--seed", str(SEED), "--start",
              "2026-02-02", "--malformed-fraction", "0"]  # fmt: skip


def _cluster_processes(state: Path) -> list[str]:
    """Live processes of the cluster under ``state``: Kafka nodes (their configuration is
    there), Spark daemons, executors and their Python workers (they run in its folders)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            folder = os.readlink(entry / "cwd")
        except OSError:
            continue
        if folder.startswith(str(state)) or (b"kafka.Kafka" in command and bytes(state) in command):
            found.append(f"{entry.name}: {command.replace(bytes(1), b' ')[:120].decode()}")
    return found


def _scm(*arguments: str, env: dict[str, str], timeout: float = 1200) -> str:
    result = subprocess.run(
        [*SCM, *arguments], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"scm {' '.join(arguments)}: {result.stderr[-2000:]}"
    return result.stdout


def _master_state(web_ui: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{web_ui}/json/", timeout=5) as response:
        state: dict[str, Any] = json.load(response)
    return state


def _finished_applications(web_ui: str, names: set[str]) -> dict[str, str]:
    """Name to id of the applications the master lists as completed, once all ``names`` are
    (an application moves there a moment after its driver has stopped)."""
    deadline = time.monotonic() + 30
    while True:
        completed = {app["name"]: app["id"] for app in _master_state(web_ui)["completedapps"]}
        if names <= set(completed) or time.monotonic() > deadline:
            return completed
        time.sleep(0.5)


def _wait_for_application(web_ui: str, name: str, driver: subprocess.Popen[str]) -> None:
    """Return once the master runs application ``name`` (its driver has its executors)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        if any(app["name"] == name for app in _master_state(web_ui)["activeapps"]):
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} never ran on the master (exit code {driver.poll()})")


def _kill_broker(state: Path, node: int) -> int:
    """SIGKILL the Kafka node ``node`` of the cluster under ``state``; its pid."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        if b"kafka.Kafka" in command and f"{state}/kafka-cluster/node-{node}/".encode() in command:
            os.kill(int(entry.name), signal.SIGKILL)
            return int(entry.name)
    raise AssertionError(f"no Kafka node {node} runs under {state}")


def _is_alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # not a zombie
    except OSError:
        return False


def _kafka_offsets(bootstrap: str) -> set[tuple[str, int, int]]:
    """Every (topic, partition, offset) the platform's topics hold."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-spark-cluster"})
    try:
        offsets: set[tuple[str, int, int]] = set()
        for topic in TOPICS:  # the event topics, each landing in its bronze table
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            for number in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, number), 10)
                offsets.update((topic, number, offset) for offset in range(low, high))
        return offsets
    finally:
        consumer.close()


def _bronze(lake: Lake) -> list[dict[str, Any]]:
    rows = []
    columns = ["event_id", "_topic", "_partition", "_offset"]
    for topic in TOPICS.values():
        table = DeltaTable(lake.bronze(topic.entity))
        rows += table.to_pyarrow_table(columns=columns).to_pylist()
    return rows


def _reference(events: list[dict[str, Any]]) -> kpi_reference.Reference:
    """kpis.md read independently, from the simulated events and the products they name."""
    header, *rows = master_data(build_world(SEED))["products.csv"]
    products = {
        row[header.index("sku")]: kpi_reference.Product(
            category=row[header.index("category")],
            unit_cost=kpi_reference.money(row[header.index("unit_cost")]),
        )
        for row in rows
    }
    return kpi_reference.compute(events, products)


def _gold_mismatches(lake: Lake, reference: kpi_reference.Reference) -> list[str]:
    problems = []
    for name, expected in reference.gold.items():
        written = DeltaTable(lake.gold(name)).to_pyarrow_table().to_pylist()
        problems += mismatches(name, expected, written)
    return problems


def test_a_taken_master_port_is_refused_in_one_line_before_anything_starts(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(
            {"SCM_STATE": str(tmp_path), "SCM_SPARK_MASTER": f"spark://127.0.0.1:{port}"}
        )
        with pytest.raises(ScmError, match=rf"^port {port} for the Spark master is in use: "):
            SparkCluster(settings).start()
    assert not (tmp_path / "spark-cluster").exists()


def test_missing_java_is_reported_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ScmError, match=r"^Java was not found: install JDK 17"):
        SparkCluster(load_settings({"SCM_STATE": str(tmp_path)})).start()


# A cold Kafka cluster, a Spark cluster, an object store and three Spark applications on a
# shared 2-core machine.
@pytest.mark.cluster
@pytest.mark.timeout(1800)
def test_the_cluster_profile_runs_ingest_and_both_engines_over_an_s3_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, lake = tmp_path / "state", Lake.at("s3://scm-e2e/lake")
    ports: set[int] = set()
    while len(ports) < 5:
        ports.add(_free_port())
    kafka_ports, (spark_port, s3_port) = sorted(ports)[:3], sorted(ports)[3:]
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("AWS_")},
        "SCM_STATE": str(state),
        "SCM_LAKE": lake.root,
        "SCM_KAFKA_BOOTSTRAP": ",".join(f"127.0.0.1:{port}" for port in kafka_ports),
        "SCM_SPARK_MASTER": f"spark://127.0.0.1:{spark_port}",
        "SCM_S3_ENDPOINT": f"http://127.0.0.1:{s3_port}",
        "SCM_S3_ACCESS_KEY_ID": "e2e",
        "SCM_S3_SECRET_ACCESS_KEY": "e2e-secret",
    }
    # This process reads the lake with delta-rs as the commands do: the store's address and
    # keys as the AWS SDK's variables (restored when the test ends).
    for name, value in load_settings(env).object_store.environment().items():
        monkeypatch.setenv(name, value)
    up = subprocess.Popen(
        [*SCM, "cluster", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert up.stdout is not None and up.stderr is not None
        ready = up.stdout.readline()
        assert ready, up.stderr.read()
        exports = dict(re.findall(r"(SCM_[A-Z0-9_]+)=(\S+?)[,;)]?(?:\s|$)", ready))
        assert exports == {
            "SCM_KAFKA_BOOTSTRAP": env["SCM_KAFKA_BOOTSTRAP"],
            "SCM_SPARK_MASTER": env["SCM_SPARK_MASTER"],
            "SCM_S3_ENDPOINT": env["SCM_S3_ENDPOINT"],
            "SCM_S3_ACCESS_KEY_ID": "e2e",
            "SCM_S3_SECRET_ACCESS_KEY": "e2e-secret",
            "SCM_LAKE": lake.root,  # its bucket made by `cluster up`
        }
        web_ui = re.findall(r"web UI (http://\S+),", ready)[0]
        master = _master_state(web_ui)
        assert (master["status"], master["aliveworkers"]) == ("ALIVE", 1)

        _scm("simulate", *SIMULATION, "--quiet", "--output", str(tmp_path / "events.jsonl"),
             env=env)  # fmt: skip
        events = [
            json.loads(json.loads(line)["value"])
            for line in (tmp_path / "events.jsonl").read_text().splitlines()
        ]
        _scm("simulate", *SIMULATION, "--quiet", env=env)  # same seed: the same messages

        # A broker dies while the ingest runs: the other two hold every partition (replication
        # factor 3, two in sync), so nothing is lost and nothing is read twice.
        ingest = subprocess.Popen(
            [*SCM, "ingest", "--once"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        _wait_for_application(web_ui, "scm-ingest", ingest)
        killed = _kill_broker(state, node=3)
        out, err = ingest.communicate(timeout=600)
        assert ingest.returncode == 0, f"scm ingest --once: {err[-2000:]}"
        assert not _is_alive(killed)
        bronze = _bronze(lake)
        produced = _kafka_offsets(env["SCM_KAFKA_BOOTSTRAP"])
        assert len(produced) == len(events)
        # Every message exactly once: none lost, none written twice.
        stored = sorted((row["_topic"], row["_partition"], row["_offset"]) for row in bronze)
        assert stored == sorted(produced)
        assert collections.Counter(row["event_id"] for row in bronze) == collections.Counter(
            event["event_id"] for event in events
        )

        _scm("refresh", env={**env, "SCM_ENGINE": "spark"})
        applications = _finished_applications(web_ui, {"scm-ingest", "scm-refresh"})
        for name in ("scm-ingest", "scm-refresh"):
            assert name in applications, f"the master ran no {name}: {applications}"
            logs = list((state / "spark-cluster" / "work" / applications[name]).glob("*/stderr"))
            assert any("Finished task" in log.read_text() for log in logs), (
                f"no task of {name} ran on an executor of the worker"
            )

        # Gold as kpis.md defines it, written by Spark on the cluster, then by DuckDB and
        # delta-rs in this machine's process; both read and write the same s3:// tables.
        reference = _reference(events)
        assert sum(bool(rows) for rows in reference.gold.values()) >= 5
        assert _gold_mismatches(lake, reference) == [], "Spark's gold differs from kpis.md"
        versions = {name: DeltaTable(lake.gold(name)).version() for name in reference.gold}
        _scm("refresh", "--full", env={**env, "SCM_ENGINE": "duckdb"})
        assert all(DeltaTable(lake.gold(n)).version() > v for n, v in versions.items())
        assert _gold_mismatches(lake, reference) == [], "DuckDB's gold differs from kpis.md"

        # The lake is in the store's bucket.
        bucket = state / "object-store" / "data" / "scm-e2e" / "lake"
        assert {"bronze", "silver", "gold", "_checkpoints", "landing"} <= {
            entry.name for entry in bucket.iterdir()
        }

        # Analysts read the lake the cluster built as any other: `scm sql` and a dashboard.
        details = DeltaTable(lake.gold("order_line_fulfilment")).to_pyarrow_table().num_rows
        query = "select count(*) as n from gold.order_line_fulfilment"
        assert json.loads(_scm("sql", query, "--format", "json", env=env)) == [{"n": details}]
        for name in ("SCM_LAKE", "SCM_STATE"):
            monkeypatch.setenv(name, env[name])
        page = AppTest.from_file(str(DASHBOARDS / "fill_rate.py"), default_timeout=60).run()
        assert not page.exception, [error.message for error in page.exception]
        assert {"Order fill rate", "Line fill rate"} <= {metric.label for metric in page.metric}

        down = subprocess.run(
            [*SCM, "cluster", "down"], env=env, capture_output=True, text=True, timeout=120
        )
        stopped = "Kafka, Spark and object store stopped\n"
        assert (down.returncode, down.stdout) == (0, stopped), down.stderr
        assert up.wait(timeout=10) == 0
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGKILL)
            up.wait()
    assert _cluster_processes(state) == []
    assert not list((state / "spark-cluster").glob("*.pid"))
    assert not list((state / "object-store").glob("*.pid"))
