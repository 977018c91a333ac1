"""A poor man's JVM profiler: sample ``jstack`` of the Spark driver while a measure runs.

Every ``interval`` seconds the RUNNABLE task and stream-execution threads are classified by
what their stack is doing (code generation, JSON/variant parsing, regex, Parquet, Delta
log, Kafka fetch...) and their innermost Spark/Delta/Kafka frame is counted. Shares of
samples approximate shares of CPU time in those threads.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

# (category, marker in any frame), first match wins, most specific first.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("Janino compile (codegen)", "org.codehaus"),
    ("code generation", "expressions.codegen"),
    ("regex", "java.util.regex"),
    ("variant/JSON parse", "variant"),
    ("variant/JSON parse", "json"),
    ("Parquet write", "parquet.hadoop.InternalParquetRecordWriter"),
    ("Parquet write", "ParquetOutputWriter"),
    ("Parquet read", "parquet"),
    ("Delta log / snapshot", "sql.delta"),
    ("Kafka fetch", "org.apache.kafka"),
    ("shuffle", "shuffle"),
    ("sort", "UnsafeExternalSorter"),
    ("generated code", "GeneratedClass"),
)
_OWN_PACKAGES = (
    "org.apache.spark",
    "io.delta",
    "org.apache.kafka",
    "org.apache.parquet",
    "org.codehaus",
)


def _threads(dump: str) -> list[tuple[str, list[str]]]:
    threads = []
    for block in dump.split("\n\n"):
        if not block.startswith('"'):
            continue
        name = block.split('"', 2)[1]
        if "RUNNABLE" not in block:
            continue
        if not (name.startswith("Executor task launch") or name.startswith("stream execution")):
            continue
        frames = [
            line.strip()[3:].split("(")[0]
            for line in block.splitlines()
            if line.strip().startswith("at ")
        ]
        if frames:
            threads.append((name, frames))
    return threads


@dataclass
class JstackSampler:
    """Samples one JVM's busy Spark threads in a background thread."""

    pid: int
    interval: float = 1.0
    samples: int = 0
    busy_threads: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        try:
            dump = subprocess.run(
                ["jstack", str(self.pid)], capture_output=True, text=True, timeout=20
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return
        self.samples += 1
        for _name, frames in _threads(dump):
            self.busy_threads += 1
            stack = " ".join(frames)
            category = next((c for c, marker in CATEGORIES if marker in stack), "other")
            self.categories[category] += 1
            own = next((f for f in frames if f.startswith(_OWN_PACKAGES)), frames[0])
            self.frames[own] += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> JstackSampler:
        if shutil.which("jstack"):
            self._thread = threading.Thread(target=self._run, name="jstack-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def summary(self) -> dict[str, Any]:
        busy = max(1, self.busy_threads)
        return {
            "samples": self.samples,
            "busy_thread_samples": self.busy_threads,
            "share_by_category": {
                name: round(count / busy, 3) for name, count in self.categories.most_common()
            },
            "top_frames": dict(self.frames.most_common(12)),
        }


def driver_pid(spark: Any) -> int:
    """The process id of a session's driver JVM."""
    return int(spark._jvm.java.lang.ProcessHandle.current().pid())
