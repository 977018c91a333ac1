"""``scm demo``: the whole platform on one machine, as supervised child processes.

Order: the embedded broker; a simulated history (first run only); ``scm refresh``; then,
side by side, continuous ingest, a live simulator, the Dagster UI and Streamlit. Ctrl-C
stops every child (each runs in its own process group, so their own children go too); if
``scm demo`` itself is killed, each child gets SIGTERM from the kernel and stops the same
way. A second run reuses the broker data and the lake.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from scm.errors import ScmError
from scm.processes import die_with_parent
from scm.settings import Settings

_REPO = Path(__file__).resolve().parent.parent


@dataclass
class Supervisor:
    """Starts children in their own process groups and stops them all, newest first."""

    logs: Path
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"demo-{name}.log", "ab")  # noqa: SIM115 - the child owns it
        child = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=_REPO,
            start_new_session=True, preexec_fn=die_with_parent,
        )  # fmt: skip
        log.close()
        self.children.append((name, child))
        return child

    def failed(self) -> str | None:
        for name, child in self.children:
            if child.poll() is not None:
                return (
                    f"{name} exited with code {child.returncode}: see {self.logs}/demo-{name}.log"
                )
        return None

    def stop_all(self) -> None:
        for _name, child in reversed(self.children):
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for _name, child in reversed(self.children):
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def _scm() -> list[str]:
    return [sys.executable, "-m", "scm.cli"]


def _wait_http(url: str, seconds: float, supervisor: Supervisor) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        failure = supervisor.failed()
        if failure:
            raise ScmError(failure)
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise ScmError(f"{url} did not answer within {seconds:.0f} s")


def _run_step(
    name: str, command: list[str], env: dict[str, str], logs: Path, *, echo: bool = False
) -> None:
    """Run one set-up step, its output in its log; ``echo`` also shows its progress lines."""
    print(f"demo: {name} ...", flush=True)
    started = time.monotonic()
    with open(logs / f"demo-{name}.log", "ab") as log:
        step = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=log, cwd=_REPO)
        assert step.stdout is not None
        for line in step.stdout:
            log.write(line)
            log.flush()
            if echo:
                print(f"demo:   {line.decode(errors='replace').rstrip()}", flush=True)
        returncode = step.wait()
    if returncode != 0:
        raise ScmError(f"{name} failed (exit {returncode}): see {logs}/demo-{name}.log")
    print(f"demo: {name} done in {time.monotonic() - started:.0f} s", flush=True)


def run_demo(settings: Settings, *, days: int = 60) -> int:
    """Bring up the platform; return when interrupted (0) or when a part fails (1)."""
    state = Path(settings.state).absolute()
    logs = state / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SCM_LAKE": os.path.abspath(settings.lake) if "://" not in settings.lake else settings.lake,
        "SCM_STATE": str(state),
        "DAGSTER_HOME": str(state / "dagster"),
        "PYTHONUNBUFFERED": "1",
    }
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(logs)
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        print(f"demo: starting the Kafka broker on {settings.kafka_bootstrap}", flush=True)
        supervisor.start("broker", [*_scm(), "broker"], env)
        _wait_for_log_line(logs / "demo-broker.log", "broker ready", 120, supervisor)
        history_marker = state / "demo-history.done"
        if not history_marker.exists():
            _run_step("simulate", [*_scm(), "simulate", "--days", str(days), "--quiet"], env, logs)
            history_marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        _run_step("refresh", [*_scm(), "refresh"], env, logs, echo=True)
        supervisor.start("ingest", [*_scm(), "ingest"], env)
        supervisor.start(
            "live-simulator",
            [*_scm(), "simulate", "--live", "--days", "0", "--rate", "20", "--quiet"],
            env,
        )
        supervisor.start(
            "dagster",
            [_bin("dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
             "-p", str(settings.dagster_port)],
            env,
        )  # fmt: skip
        supervisor.start(
            "streamlit",
            [_bin("streamlit"), "run", "dashboards/streamlit_app.py", "--server.headless",
             "true", "--server.port", str(settings.streamlit_port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            env,
        )  # fmt: skip
        urls = [
            ("Dagster UI", f"http://127.0.0.1:{settings.dagster_port}"),
            ("Dashboards", f"http://127.0.0.1:{settings.streamlit_port}"),
        ]
        for label, url in urls:
            _wait_http(url, 180, supervisor)
            print(f"demo: {label}: {url}", flush=True)
        print("demo: the platform is running; Ctrl-C stops everything", flush=True)
        while not stopping:
            failure = supervisor.failed()
            if failure:
                raise ScmError(failure)
            time.sleep(0.5)
    finally:
        print("demo: stopping ...", flush=True)
        supervisor.stop_all()
        print("demo: stopped", flush=True)
    return 0


def _bin(program: str) -> str:
    return str(Path(sys.executable).parent / program)


def _wait_for_log_line(log: Path, needle: str, seconds: float, supervisor: Supervisor) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        failure = supervisor.failed()
        if failure:
            raise ScmError(failure)
        if log.exists() and needle in log.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise ScmError(f"timed out waiting for {needle!r} in {log}")
