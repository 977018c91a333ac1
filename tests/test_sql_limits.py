"""A read-only query cannot fill the disk: spill is bounded, refused in one line, cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

SCM = [sys.executable, "-m", "scm.cli"]
HUGE_SORT = "select * from range(1000000000000) t(i) order by i desc"
SPILL_LIMIT_BYTES = 200 * 1000 * 1000


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "lake").mkdir(exist_ok=True)
    return {
        **os.environ,
        "SCM_STATE": str(tmp_path / "state"),
        "SCM_LAKE": str(tmp_path / "lake"),
        "SCM_SQL_MEMORY_LIMIT": "100MB",
        "SCM_SQL_SPILL_LIMIT": "200MB",
    }


def _bytes_under(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except FileNotFoundError:  # DuckDB removes blocks while we walk
            pass
    return total


def test_a_query_that_would_fill_the_disk_stops_at_the_spill_limit(tmp_path: Path) -> None:
    spill = tmp_path / "state" / "tmp"
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            if spill.exists():
                peak = max(peak, _bytes_under(spill))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = subprocess.run(
            [*SCM, "sql", HUGE_SORT], env=_env(tmp_path), cwd=tmp_path,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        done.set()
        sampler.join()
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "scm: error: the query needs more than 200MB of temporary disk (SCM_SQL_SPILL_LIMIT)"
        " and was stopped: filter or aggregate more, or raise the limit"
    ]
    assert peak > 0, "the query never spilled: the test does not exercise the limit"
    assert peak <= SPILL_LIMIT_BYTES
    assert list(spill.iterdir()) == []
    assert not (tmp_path / ".tmp").exists()  # DuckDB's default spill folder in the cwd


def test_spill_left_by_a_killed_query_is_removed_by_the_next_session(tmp_path: Path) -> None:
    spill = tmp_path / "state" / "tmp"
    env = _env(tmp_path)
    query = subprocess.Popen(
        [*SCM, "sql", HUGE_SORT], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (spill.exists() and _bytes_under(spill) > 0):
        time.sleep(0.02)
    query.send_signal(signal.SIGKILL)
    query.wait()
    assert _bytes_under(spill) > 0, "the killed query left nothing to clean up"

    result = subprocess.run(
        [*SCM, "sql", "select 42 as answer", "--format", "csv"], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["answer", "42"]
    assert list(spill.iterdir()) == []
