"""Memory of the whole platform: ``scm demo`` as a child process tree, sampled from start-up
until it has run for a while with every part up, then stopped with SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from typing import Any

from bench.context import REPO, SizeContext, scm_command
from bench.memory import MIB, MemorySampler, descendants

READY_LINE = "the platform is running"
READY_TIMEOUT_S = 900.0
HOLD_S = 60.0
STOP_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure_demo(context: SizeContext, result: dict[str, Any]) -> None:
    """Run ``scm demo --days <size>`` on its own broker port, lake and state; sample it."""
    work = context.work / "demo"
    work.mkdir(parents=True, exist_ok=True)
    env = context.subprocess_env(
        "demo",
        SCM_KAFKA_BOOTSTRAP=f"127.0.0.1:{_free_port()}",
        SCM_DAGSTER_PORT=str(_free_port()),
        SCM_STREAMLIT_PORT=str(_free_port()),
    )
    log = work / "demo.log"
    started = time.perf_counter()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            scm_command("demo", "--days", str(context.size.days)), env=env, cwd=REPO,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    ready_s: float | None = None
    with MemorySampler([process.pid], interval=0.5) as memory:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if READY_LINE in log.read_text(errors="replace"):
                ready_s = time.perf_counter() - started
                break
            time.sleep(1.0)
        if ready_s is not None:
            time.sleep(HOLD_S)
        tree = descendants([process.pid])
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for pid in tree:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            process.wait()
    summary = memory.summary()
    hwm_sum = sum(peak.hwm_bytes for peak in memory.peaks.values())
    lines = log.read_text(errors="replace").strip().splitlines()
    result.update(
        demo_days=context.size.days,
        demo_ready_s=round(ready_s, 1) if ready_s is not None else None,
        demo_held_s=HOLD_S if ready_s is not None else 0.0,
        demo_peak_total_rss_mib=summary["peak_total_rss_mib"],
        demo_sum_of_process_hwm_mib=round(hwm_sum / MIB, 1),
        demo_peak_rss_mib_by_role=summary["peak_rss_mib_by_role"],
        demo_processes=summary["processes"],
        demo_log_tail=lines[-5:],
    )
    if ready_s is None:
        result["notes"].append(
            f"scm demo did not print {READY_LINE!r} within {READY_TIMEOUT_S:.0f} s: "
            + (lines[-1] if lines else "no output")
        )
