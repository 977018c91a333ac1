"""Peak resident memory of process trees, sampled from /proc (psutil is not required).

A sampler thread walks the descendants of some root processes every ``interval`` seconds
and keeps, per process, the largest ``VmRSS`` seen and the last ``VmHWM`` (the kernel's own
lifetime peak), plus the largest sum of ``VmRSS`` over the whole tree at one instant.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType

MIB = 1024 * 1024
BROKER = frozenset({"broker JVM"})


@dataclass
class ProcessPeak:
    """What one process used while it was sampled."""

    pid: int
    role: str
    command: str
    peak_rss_bytes: int = 0
    hwm_bytes: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "role": self.role,
            "command": self.command[:400],
            "peak_rss_mib": round(self.peak_rss_bytes / MIB, 1),
            "hwm_mib": round(self.hwm_bytes / MIB, 1),
        }


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return None


def _status_kib(status: str, name: str) -> int:
    for line in status.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def _parent_map() -> dict[int, int]:
    """``pid -> ppid`` for every live process."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read(f"/proc/{entry}/stat")
        if stat is None:
            continue
        # The command name in field 2 may hold spaces and parentheses; ppid follows the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1:
            parents[int(entry)] = int(fields[1])
    return parents


def descendants(roots: Iterable[int], parents: dict[int, int] | None = None) -> set[int]:
    """The roots and every process below them."""
    children: dict[int, list[int]] = {}
    for pid, parent in (parents if parents is not None else _parent_map()).items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    stack = [pid for pid in roots if os.path.exists(f"/proc/{pid}")]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found.add(pid)
        stack.extend(children.get(pid, []))
    return found


def command_line(pid: int) -> str:
    raw = _read(f"/proc/{pid}/cmdline")
    return raw.replace("\0", " ").strip() if raw else ""


def classify(command: str) -> str:
    """A readable role for a platform process, from its command line."""
    if "java" in command.split(" ", 1)[0]:
        if "kafka.Kafka" in command:
            return "broker JVM"
        if "org.apache.spark.launcher.Main" in command:
            return "Spark launcher JVM"
        if "SparkSubmit" in command or "pyspark-shell" in command:
            return "Spark driver JVM"
        return "JVM"
    if "dagster" in command:
        return "Dagster"
    if "streamlit" in command:
        return "Streamlit"
    if "scm.cli ingest" in command or "scm ingest" in command:
        return "scm ingest (Python)"
    if "-m bench" in command:
        return "bench (Python, in-process Spark)"
    if "scm.cli demo" in command:
        return "scm demo (Python)"
    if "scm.cli" in command or "/scm " in command:
        return "scm (Python): " + command.split("scm.cli", 1)[-1].strip().split(" ")[0]
    if "python" in command:
        return "Python"
    return command.split(" ", 1)[0].rsplit("/", 1)[-1] or "?"


def machine_load() -> dict[str, float]:
    """The 1, 5 and 15 minute load averages (as ``uptime`` prints them)."""
    text = _read("/proc/loadavg") or "0 0 0"
    one, five, fifteen = (float(part) for part in text.split()[:3])
    return {"load_1m": one, "load_5m": five, "load_15m": fifteen}


def cpu_busy_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    first = (_read("/proc/stat") or "cpu 0 0 0 0").splitlines()[0].split()[1:]
    values = [int(value) for value in first]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


@dataclass
class MemorySampler:
    """Samples the process trees under ``roots`` in a background thread.

    ``roots`` may be a callable so processes started after the sampler (a CLI child) count.
    """

    roots: Callable[[], Iterable[int]] | Iterable[int]
    interval: float = 0.2
    exclude_roles: frozenset[str] = frozenset()
    peaks: dict[int, ProcessPeak] = field(default_factory=dict)
    peak_total_rss_bytes: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu_start: tuple[int, int] = (0, 0)
    _cpu_end: tuple[int, int] = (0, 0)

    def _root_pids(self) -> list[int]:
        roots = self.roots() if callable(self.roots) else self.roots
        return list(roots)

    def sample(self) -> None:
        """Take one sample now."""
        total = 0
        parents = _parent_map()
        for pid in descendants(self._root_pids(), parents):
            # A JVM forking a helper (chmod, readlink) shows the JVM's command line and its
            # copy-on-write pages until exec: not memory of its own.
            if pid not in self.peaks and command_line(pid) == command_line(parents.get(pid, 0)):
                continue
            status = _read(f"/proc/{pid}/status")
            if status is None:
                continue
            rss = _status_kib(status, "VmRSS") * 1024
            hwm = _status_kib(status, "VmHWM") * 1024
            if rss == 0:  # kernel threads and zombies
                continue
            peak = self.peaks.get(pid)
            if peak is None or peak.command.startswith("bash") or not peak.command:
                # spark-submit is a bash script that execs the JVM: look again until it has.
                command = command_line(pid)
                if peak is None:
                    peak = self.peaks[pid] = ProcessPeak(pid, classify(command), command)
                else:
                    peak.command, peak.role = command, classify(command)
            if peak.role not in self.exclude_roles:
                total += rss
            peak.peak_rss_bytes = max(peak.peak_rss_bytes, rss)
            peak.hwm_bytes = max(peak.hwm_bytes, hwm)
        self.peak_total_rss_bytes = max(self.peak_total_rss_bytes, total)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def start(self) -> MemorySampler:
        self._cpu_start = cpu_busy_ticks()
        self.sample()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._cpu_end = cpu_busy_ticks()

    def __enter__(self) -> MemorySampler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def machine_cpu_busy(self) -> float | None:
        """Share of the machine's CPU that was busy (anyone's) while sampling."""
        busy = self._cpu_end[0] - self._cpu_start[0]
        total = self._cpu_end[1] - self._cpu_start[1]
        return round(busy / total, 3) if total > 0 else None

    def by_role(self) -> dict[str, int]:
        """Largest single-process peak RSS per role, in bytes."""
        roles: dict[str, int] = {}
        for peak in self.peaks.values():
            roles[peak.role] = max(roles.get(peak.role, 0), peak.peak_rss_bytes)
        return roles

    def summary(self) -> dict[str, object]:
        """A JSON-ready summary: peaks per role and per process, and the tree's peak total."""
        return {
            "peak_total_rss_mib": round(self.peak_total_rss_bytes / MIB, 1),
            "total_excludes": sorted(self.exclude_roles),
            "peak_rss_mib_by_role": {
                role: round(value / MIB, 1) for role, value in sorted(self.by_role().items())
            },
            "processes": [
                peak.as_dict()
                for peak in sorted(self.peaks.values(), key=lambda p: -p.peak_rss_bytes)
                if peak.peak_rss_bytes >= 20 * MIB
            ],
            "samples": self.samples,
            "machine_cpu_busy": self.machine_cpu_busy(),
        }


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
