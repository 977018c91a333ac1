"""`scm ingest` under failure: kill -9, a broker restart, an unreachable broker, a failing query.

The kill -9 test runs the real command line in a subprocess (its own Spark JVM); the broker
restart runs a continuous ingest in-process against a private broker it can stop and start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from scm.lake import Lake
from scm.settings import Settings, load_settings
from tests.conftest import _free_port, make_settings
from tests.test_ingest import (
    Produced,
    build_data_set,
    ensure_all_topics,
    produce,
    read_alerts,
)

pytestmark = [pytest.mark.spark, pytest.mark.kafka]

SCM = str(Path(sys.executable).with_name("scm"))


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def delta_rows(path: str, columns: list[str]) -> list[dict[str, Any]]:
    """Rows of a Delta table read with delta-rs (no Spark), [] when it does not exist yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(path).to_pyarrow_table(columns=columns).to_pylist()
    except TableNotFoundError:
        return []


def landed(settings: Settings, token: str) -> tuple[list[tuple[str, int, int]], list[Any]]:
    """Kafka coordinates of this run's bronze rows (all tables) and quarantine rows."""
    from scm.contracts import TOPICS

    lake = Lake.at(settings.lake)
    bronze = []
    for topic in TOPICS.values():
        for row in delta_rows(
            lake.bronze(topic.entity), ["event_id", "_topic", "_partition", "_offset"]
        ):
            if row["event_id"].startswith(token):
                bronze.append((row["_topic"], row["_partition"], row["_offset"]))
    quarantine = [
        (row["topic"], row["partition"], row["offset"])
        for row in delta_rows(lake.quarantine, ["topic", "partition", "offset", "key"])
        if row["key"] is not None and row["key"].startswith(f"{token}-bad")
    ]
    return bronze, quarantine


def assert_exactly_once(settings: Settings, token: str, produced: list[Produced]) -> None:
    bronze, quarantine = landed(settings, token)
    assert len(bronze) == len(set(bronze)), "a record landed twice in bronze"
    assert len(quarantine) == len(set(quarantine)), "a record landed twice in quarantine"
    assert set(bronze) == {p.coordinates for p in produced if p.error is None}
    assert set(quarantine) == {p.coordinates for p in produced if p.error is not None}


def subprocess_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SCM_LAKE": settings.lake,
        "SCM_STATE": str(settings.state),
        "SCM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SCM_SPARK_MASTER": "local[2]",
        **extra,
    }


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def _exited(pid: int) -> Callable[[], bool]:
    return lambda: not Path(f"/proc/{pid}").exists()


def test_kill_9_mid_stream_then_restart_is_exactly_once(
    spark: Any, kafka_broker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest import run_ingest

    settings = make_settings(tmp_path, kafka_broker)
    ensure_all_topics(settings)
    token = f"t{uuid.uuid4().hex[:8]}"
    messages = build_data_set(token).round1
    produced = produce(settings, messages[: len(messages) // 2])
    env = subprocess_env(settings, SCM_INGEST_TRIGGER_SECONDS="0.5")
    progress = Path(settings.state) / "ingest-progress.jsonl"
    log = tmp_path / "ingest.log"
    with open(log, "wb") as output:
        ingest = subprocess.Popen([SCM, "ingest"], env=env, stdout=output, stderr=output)
    try:
        wait_until(
            lambda: progress.exists() and "valid_rows" in progress.read_text(),
            600,
            f"the continuous ingest's first batch (log: {log})",
        )
        # While it runs, a second ingest on the same lake is refused at once.
        second = subprocess.run(
            [SCM, "ingest", "--once"], env=env, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 2
        assert second.stderr.strip().splitlines() == [second.stderr.strip()]
        assert "already running on lake" in second.stderr
        produced += produce(settings, messages[len(messages) // 2 :])
        time.sleep(2.0)  # the next micro-batch is picking them up
        engines = children(ingest.pid)
        os.kill(ingest.pid, signal.SIGKILL)
        ingest.wait(timeout=30)
        for pid in engines:  # the Spark JVM exits by itself once its parent is gone
            wait_until(_exited(pid), 60, "the Spark JVM to exit")
    finally:
        if ingest.poll() is None:
            ingest.kill()
            ingest.wait()

    # `scm ingest --once`, in-process on the test run's warm Spark session (a second
    # subprocess would only add another JVM start-up).
    assert run_ingest(settings, once=True) == 0
    assert "ingest caught up" in capsys.readouterr().out
    assert_exactly_once(settings, token, produced)


def test_continuous_ingest_survives_a_broker_restart(spark: Any, tmp_path: Path) -> None:
    from ingest import start_ingest
    from scm.broker import EmbeddedBroker

    broker = EmbeddedBroker(
        load_settings(
            {
                "SCM_STATE": str(tmp_path / "broker"),
                "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}",
            }
        )
    ).start()
    try:
        settings = make_settings(tmp_path, broker.bootstrap, SCM_INGEST_TRIGGER_SECONDS="0.5")
        ensure_all_topics(settings)
        token = f"t{uuid.uuid4().hex[:8]}"
        data = build_data_set(token)
        produced = produce(settings, data.round1)
        run = start_ingest(spark, settings, once=False)
        try:
            expected = {p.coordinates for p in produced if p.error is None}
            wait_until(lambda: set(landed(settings, token)[0]) == expected, 600, "round 1")
            broker.stop()
            time.sleep(2.0)
            broker.start()
            started = time.monotonic()
            produced += produce(settings, data.round2)
            position = Lake.at(settings.lake).silver("inventory_position")
            location, sku = data.stockout_key.split(":")

            def stocked_out() -> bool:
                rows = delta_rows(position, ["location_id", "sku", "on_hand"])
                return any(
                    (r["location_id"], r["sku"], r["on_hand"]) == (location, sku, 0) for r in rows
                )

            wait_until(stocked_out, 600, "the position to follow round 2")
            latency = time.monotonic() - started
            expected = {p.coordinates for p in produced if p.error is None}
            wait_until(lambda: set(landed(settings, token)[0]) == expected, 600, "round 2")
            assert not run.await_completion(timeout=0.1), "the ingest stopped by itself"
        finally:
            run.stop()
        print(f"position visible {latency:.1f} s after producing (machine load included)")
        assert_exactly_once(settings, token, produced)
        assert len(read_alerts(settings, data.stockout_key)) == 1
    finally:
        broker.stop()


def test_unreachable_broker_fails_fast_with_one_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"127.0.0.1:{_free_port()}")
    started = time.monotonic()
    result = subprocess.run(
        [SCM, "ingest", "--once"],
        env=subprocess_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"scm: error: cannot reach Kafka at {settings.kafka_bootstrap}: start it with "
        "`scm broker` or set SCM_KAFKA_BOOTSTRAP"
    )
    assert time.monotonic() - started < 60  # no Spark start-up before the check


def test_failed_query_is_one_line_error(spark: Any, kafka_broker: str, tmp_path: Path) -> None:
    """A table whose schema no longer matches the contract fails the query, cleanly."""
    from ingest import start_ingest
    from ingest.tables import create_delta_table
    from scm.errors import ScmError

    settings = make_settings(tmp_path, kafka_broker)
    ensure_all_topics(settings)
    create_delta_table(
        Lake.at(settings.lake).bronze("orders"), pa.schema([("order_id", pa.int64())])
    )
    produce(settings, [build_data_set(f"t{uuid.uuid4().hex[:8]}").round1[0]])
    with start_ingest(spark, settings, once=False) as run, pytest.raises(ScmError) as failure:
        run.await_completion(timeout=600)
    message = str(failure.value)
    assert message.startswith("ingest query scm_ingest_bronze failed: ")
    assert "DELTA_FAILED_TO_MERGE_FIELDS" in message and "order_id" in message, message
    assert "\n" not in message


def _batch_in_flight(checkpoint: Path, after: int) -> bool:
    """A micro-batch later than ``after`` has planned its offsets but not committed yet."""
    planned = {int(p.name) for p in (checkpoint / "offsets").glob("[0-9]*")}
    committed = {int(p.name) for p in (checkpoint / "commits").glob("[0-9]*")}
    return any(batch > after and batch not in committed for batch in planned)


def _last_batch(checkpoint: Path) -> int:
    return max((int(p.name) for p in (checkpoint / "offsets").glob("[0-9]*")), default=-1)


# A signal to the group reaches the ingest as `kill PID` does, and every other process of
# the group too (the Spark JVM, were it still there): the harder case of each signal.
@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm-to-the-group", "ctrl-c"]
)
def test_a_stop_during_a_batch_is_one_line_exit_0_and_loses_nothing(
    spark: Any,
    kafka_broker: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    signum: int,
) -> None:
    """``kill``, a service manager stopping the whole process group, or Ctrl-C in a terminal
    (SIGINT to the group): the ingest reports its stop in one line, exits 0, and a restart
    lands every record exactly once."""
    from ingest import run_ingest
    from ingest.offset_log import BRONZE_QUERY

    settings = make_settings(tmp_path, kafka_broker)
    ensure_all_topics(settings)
    token = f"t{uuid.uuid4().hex[:8]}"
    messages = build_data_set(token).round1
    produced = produce(settings, messages[: len(messages) // 2])
    checkpoint = Path(Lake.at(settings.lake).checkpoint(BRONZE_QUERY))
    env = subprocess_env(settings, SCM_INGEST_TRIGGER_SECONDS="0.5")
    ingest = subprocess.Popen(
        [SCM, "ingest"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal or a service gives it
    )
    try:
        wait_until(lambda: (checkpoint / "commits" / "0").exists(), 600, "the first batch")
        last = _last_batch(checkpoint)
        produced += produce(settings, messages[len(messages) // 2 :])
        deadline = time.monotonic() + 120
        while not _batch_in_flight(checkpoint, last) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _batch_in_flight(checkpoint, last), "no batch picked up the second half"
        os.killpg(ingest.pid, signum)
        out, err = ingest.communicate(timeout=120)
    finally:
        if ingest.poll() is None:
            os.killpg(ingest.pid, signal.SIGKILL)
            ingest.wait()

    assert ingest.returncode == 0, err
    assert out.strip().splitlines()[-1] == "stopping ingest gracefully... stopped", out
    for noise in ("Traceback", "py4j", "Exception", " ERROR ", "KeyboardInterrupt"):
        assert noise not in err, err
    assert run_ingest(settings, once=True) == 0
    capsys.readouterr()
    assert_exactly_once(settings, token, produced)
