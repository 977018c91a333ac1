"""What the measures of one size share: its folders, the broker, the events, Spark."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.sizes import Size
from bench.workload import Workload
from scm.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent


@dataclass
class SparkHolder:
    """The bench process's one Spark session, started on first use and timed."""

    master: str
    session: Any = None
    startup_s: float | None = None
    owned: bool = False

    def get(self, settings: Settings) -> Any:
        if self.session is None:
            from pyspark.sql import SparkSession

            from scm.spark import spark_session

            # A session someone else started (a test run's) is reused and left running.
            self.owned = SparkSession.getActiveSession() is None
            started = time.perf_counter()
            self.session = spark_session(settings, app_name="scm-bench")
            # The first action pays for class loading too; count it as start-up.
            self.session.range(1).count()
            self.startup_s = time.perf_counter() - started
        return self.session

    def stop(self) -> None:
        if self.session is not None and self.owned:
            self.session.stop()
        self.session = None


@dataclass
class SizeContext:
    """One size's workspace: a lake and state folder per path, all on one broker."""

    size: Size
    work: Path
    bootstrap: str
    spark: SparkHolder
    workload: Workload | None = None
    lake_root: str | None = None  # an object-store prefix instead of the work folder
    main_lake_ready: bool = False
    gold_ready: bool = False
    notes: list[str] = field(default_factory=list)

    def environment(self, name: str) -> dict[str, str]:
        """``SCM_*`` variables of the path ``name`` (its own lake and state)."""
        lake = str(self.work / name / "lake")
        if self.lake_root:
            lake = f"{self.lake_root}/{self.size.name}-{name}"
        store = {key: value for key, value in os.environ.items() if key.startswith("SCM_S3_")}
        return {
            **store,
            "SCM_LAKE": lake,
            "SCM_STATE": str(self.work / name / "state"),
            "SCM_KAFKA_BOOTSTRAP": self.bootstrap,
            "SCM_SPARK_MASTER": self.spark.master,
            "SCM_SETTINGS_FILE": str(empty_settings_file(self.work)),
        }

    def settings(self, name: str) -> Settings:
        env = self.environment(name)
        (self.work / name / "state").mkdir(parents=True, exist_ok=True)
        return load_settings(env)

    def subprocess_env(self, name: str, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("SCM_")}
        python_path = [str(REPO), *filter(None, [env.get("PYTHONPATH")])]
        return {
            **env,
            **self.environment(name),
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }


def empty_settings_file(folder: Path) -> Path:
    """An empty settings file, so a ``scm.env`` in the working folder cannot leak in."""
    path = folder / "empty.env"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return path


def scm_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "scm.cli", *args]


def await_ingest(handle: Any, timeout: float) -> None:
    """Wait for what ``start_ingest(..., once=True)`` returned to finish, whatever its shape."""
    if handle is None:
        return
    for name in ("await_termination", "awaitTermination", "wait", "join"):
        method = getattr(handle, name, None)
        if callable(method):
            try:
                finished = method(timeout)
            except TypeError:
                finished = method()
            if finished is False:
                raise TimeoutError(f"ingest did not finish within {timeout:.0f} s")
            return
    if isinstance(handle, dict):
        handle = list(handle.values())
    if isinstance(handle, Iterable):
        deadline = time.monotonic() + timeout
        for query in list(handle):
            await_ingest(query, max(1.0, deadline - time.monotonic()))


def stop_ingest(handle: Any) -> None:
    """Stop continuous ingest queries, whatever shape ``start_ingest`` returned."""
    if handle is None:
        return
    method = getattr(handle, "stop", None)
    if callable(method):
        method()
        return
    if isinstance(handle, dict):
        handle = list(handle.values())
    if isinstance(handle, Iterable):
        for query in list(handle):
            stop_ingest(query)
