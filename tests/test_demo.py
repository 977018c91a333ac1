"""`scm demo` brings up the platform, serves both UIs, and Ctrl-C leaves nothing running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import _free_port


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_demo_serves_dagster_and_dashboards_then_stops_cleanly(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SCM_LAKE": str(tmp_path / "lake"),
        "SCM_STATE": str(tmp_path / "state"),
        "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}",
        "SCM_SPARK_MASTER": "local[2]",
        "SCM_DAGSTER_PORT": str(_free_port()),
        "SCM_STREAMLIT_PORT": str(_free_port()),
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "scm.cli", "demo", "--days", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    urls: dict[str, str] = {}
    output: list[str] = []
    started: set[int] = set()
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            output.append(line)
            found = re.search(r"demo: (Dagster UI|Dashboards): (http://\S+)", line)
            if found:
                urls[found.group(1)] = found.group(2)
            if "the platform is running" in line:
                break
        assert set(urls) == {"Dagster UI", "Dashboards"}, "".join(output)
        # The first refresh shows its steps as they finish, not minutes of silence.
        progress = [line for line in output if re.match(r"demo:   \[ *\d+\.\d s\] ", line)]
        assert any("gold.fill_rate_daily: " in line for line in progress), "".join(output)
        for url in urls.values():
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200
        assert (tmp_path / "lake" / "gold" / "fill_rate_daily" / "_delta_log").is_dir()
        started = _descendants(demo.pid)
        assert len(started) >= 5  # broker, ingest, live simulator, Dagster, Streamlit
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=120) == 0, "".join(output)
    finally:
        if demo.poll() is None:
            demo.kill()
    time.sleep(1)
    left = [pid for pid in started if _alive(pid)]
    assert left == [], f"processes left running: {left}"


def test_the_children_of_a_killed_demo_stop_with_it(tmp_path: Path) -> None:
    """``kill -9`` of ``scm demo`` leaves no ingest, simulator or UI running on its own."""
    supervise = (
        "import sys, time\nfrom pathlib import Path\nfrom scm.demo import Supervisor\n"
        "child = Supervisor(Path(sys.argv[1])).start(\n"
        "    'sleeper', [sys.executable, '-c', 'import time; time.sleep(120)'], {})\n"
        "print(child.pid, flush=True)\ntime.sleep(120)\n"
    )
    demo = subprocess.Popen(
        [sys.executable, "-c", supervise, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert demo.stdout is not None
    child = int(demo.stdout.readline())
    assert _alive(child)
    demo.kill()
    demo.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)
