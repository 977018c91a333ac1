"""Refresh under faults: one refresh at a time per lake, and a ``kill -9`` at any point
followed by a new refresh gives exactly the gold of an uninterrupted refresh.

The kills are real: ``scm refresh`` runs as its own process and is killed with SIGKILL the
moment a chosen Delta commit appears on disk (silver updated, gold half written, the refresh
recorded), each kill on the state the previous one left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from deltalake import DeltaTable

from orchestration.definitions import defs
from orchestration.resources import build_resources
from scm.cli import main
from scm.lake import Lake
from scm.settings import Settings, load_settings
from tests.conftest import _free_port, make_settings
from tests.test_refresh import PRODUCTS, ROUND_1, ROUND_2
from transforms.gold import GOLD_TABLES
from transforms.refresh import refresh
from transforms.testing import append_bronze

REPO = Path(__file__).resolve().parents[1]

_HOLDER = """
import sys
from scm.settings import load_settings
from scm.lake_lock import RefreshLock
lock = RefreshLock.for_settings(load_settings(), holder="scm refresh").acquire()
print("held", flush=True)
sys.stdin.readline()
"""


def _environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "SCM_LAKE": settings.lake,
        "SCM_STATE": str(settings.state),
        "SCM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SCM_SPARK_MASTER": "local[2]",
    }


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Settings, subprocess.Popen[str]]]:
    """Another process holding the lake's refresh lock until its stdin gets a line."""
    settings = make_settings(tmp_path, "127.0.0.1:1")
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER],
        env=_environment(settings),
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    yield settings, process
    process.kill()
    process.wait()


def test_a_second_refresh_is_refused_in_one_line(
    holder: tuple[Settings, subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, process = holder
    for name, value in _environment(settings).items():
        if name.startswith("SCM_"):
            monkeypatch.setenv(name, value)
    assert main(["refresh"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert error.startswith("scm: error: another refresh is already running on lake")
    assert f"pid {process.pid}" in error and "scm refresh" in error


def test_a_dagster_step_waits_for_the_running_refresh(
    holder: tuple[Settings, subprocess.Popen[str]],
) -> None:
    """The master-data step (no Spark needed) commits only after the holder let go."""
    settings, process = holder
    lake = Lake.at(settings.lake)
    Path(lake.landing).mkdir(parents=True)
    Path(lake.landing, "products.csv").write_text(PRODUCTS)
    key = dg.AssetKey(["bronze", "products"])
    outcome: dict[str, Any] = {}
    state = str(settings.state)

    def materialize() -> None:
        outcome["result"] = dg.materialize(
            [defs.get_assets_def(key)],
            resources=build_resources({"SCM_LAKE": settings.lake, "SCM_STATE": state}),
            instance=dg.DagsterInstance.ephemeral(),
        )

    run = threading.Thread(target=materialize)
    run.start()
    time.sleep(3.0)  # time enough to load one small file, had the step not waited
    assert process.stdin is not None
    released_ms = time.time() * 1000
    process.stdin.write("release\n")
    process.stdin.flush()
    process.wait(timeout=30)
    run.join(timeout=120)
    assert outcome["result"].success
    committed_ms = DeltaTable(lake.bronze("products")).history(1)[0]["timestamp"]
    assert committed_ms >= released_ms


# --- kill -9 at several points ------------------------------------------------------------


def _gold(spark: Any, lake: Lake) -> dict[str, list[tuple[object, ...]]]:
    return {
        name: sorted(
            (tuple(row) for row in spark.read.format("delta").load(lake.gold(name)).collect()),
            key=repr,
        )
        for name in GOLD_TABLES
    }


def _commits(table: str) -> int:
    log = Path(table, "_delta_log")
    return len(list(log.glob("*.json"))) if log.exists() else 0


def _refresh_killed_at(settings: Settings, table: str) -> int:
    """Run ``scm refresh``; SIGKILL it as soon as ``table`` has a new commit. Its exit code."""
    before = _commits(table)
    process = subprocess.Popen(
        [sys.executable, "-m", "scm.cli", "refresh"],
        env=_environment(settings),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while process.poll() is None and _commits(table) == before:
            time.sleep(0.01)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[str]:
    """A broker of this test's own: the killed refreshes ingest its (empty) topics, not the
    events other tests left in the shared one."""
    from scm.broker import EmbeddedBroker

    settings = load_settings(
        {"SCM_STATE": str(tmp_path / "broker"), "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}"}
    )
    with EmbeddedBroker(settings) as broker:
        yield broker.bootstrap


@pytest.mark.spark
@pytest.mark.timeout(1200)
def test_kill_9_at_any_point_then_refresh_gives_the_uninterrupted_gold(
    spark: Any, private_broker: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "killed", private_broker)
    lake = Lake.at(settings.lake)
    Path(lake.landing).mkdir(parents=True)
    Path(lake.landing, "products.csv").write_text(PRODUCTS)
    for entity, events in ROUND_1.items():
        append_bronze(lake, entity, events, first_offset=0)
    for entity, events in ROUND_2.items():
        append_bronze(lake, entity, events, first_offset=100)

    untouched = make_settings(tmp_path / "uninterrupted", private_broker)
    shutil.copytree(settings.lake, untouched.lake)
    refresh(spark, untouched, ingest=False)
    expected = _gold(spark, Lake.at(untouched.lake))

    second_gold_table = list(GOLD_TABLES)[1]
    kill_points = [
        lake.silver("order_lines"),  # silver updated, no gold yet
        lake.gold(second_gold_table),  # gold half written
        lake.checkpoint("refresh_state"),  # the refresh recorded, its process not yet done
    ]
    for table in kill_points:
        assert _refresh_killed_at(settings, table) == -signal.SIGKILL, table

    refresh(spark, settings, ingest=False)
    assert _gold(spark, lake) == expected
