"""The benchmark harness runs end to end on a tiny size and writes every measure's keys.

No timing is asserted anywhere: numbers from a shared CI machine mean nothing. Real runs
are made on demand with ``python -m bench`` and recorded in docs/performance.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import KEYS, MEASURES, SIZES, BenchOptions, run_bench

pytestmark = [pytest.mark.spark, pytest.mark.kafka]


# Every path starts real processes (broker, `scm ingest`, a page per process): minutes, not
# seconds, and more on a busy machine.
@pytest.mark.timeout(1800)
def test_bench_runs_every_measure_on_a_tiny_size(spark: object, tmp_path: Path) -> None:
    options = BenchOptions(
        sizes=[SIZES["tiny"]],
        results_dir=tmp_path / "results",
        work_dir=tmp_path / "work",
        spark_master="local[2]",
    )
    _results, path = run_bench(options)

    assert path.parent == tmp_path / "results" and path.suffix == ".json"
    written = json.loads(path.read_text())
    for measure in MEASURES:
        result = written["measures"][measure]["tiny"]
        missing = set(KEYS[measure]) - set(result)
        assert not missing, f"{measure} lacks {missing}"
        assert result["status"] == "ok", f"{measure}: {result['reason']}"
        assert set(result["load_after"]) == {"load_1m", "load_5m", "load_15m"}

    ingest = written["measures"]["ingest"]["tiny"]
    # Every path saw the same events from the same broker.
    assert ingest["events"] > 0
    assert ingest["direct_rows"] == ingest["events"]
    assert ingest["spark_inprocess_rows"] == ingest["events"]
    assert ingest["cli_rows"] == ingest["events"] and ingest["cli_exit_code"] == 0
    assert ingest["first_events_s"] is not None and ingest["first_events_exit_code"] == 0
    freshness = written["measures"]["freshness"]["tiny"]
    assert freshness["markers"] > 0 and freshness["bronze_p95_s"] is not None
    assert freshness["sustained_drained"] and freshness["sustained_batches"] >= 4
    assert freshness["sustained_eps"] > 0
    assert freshness["batches_under_load"] > 0 and freshness["batch_median_s"] > 0
    assert freshness["jobs_per_batch"] > 0 and freshness["stages_per_batch"] > 0
    dashboard = written["measures"]["dashboard"]["tiny"]
    assert dashboard["pages"] and dashboard["page_errors"] == 0
    assert written["measures"]["memory"]["tiny"]["ingest_cli_peak_mib"] > 0
    verdicts = {row["goal"]: row["passed"] for row in written["goals"]}
    assert len(verdicts) == 12
    # Every goal gets a verdict; the whole-demo memory one only where scm demo ran (not tiny).
    assert all(v in (True, False) for goal, v in verdicts.items() if "scm demo" not in goal)


def test_bench_command_rejects_an_unknown_measure() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "ingest,speed"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "unknown measure(s) speed: use ingest, freshness, refresh, dashboard, memory" in (
        result.stderr
    )
