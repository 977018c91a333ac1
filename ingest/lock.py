"""One ingest per lake: an advisory file lock that the kernel drops when the process dies.

Two ingests writing the same checkpoints would corrupt each other's offset logs, so the
second one is refused. ``fcntl.flock`` is tied to the open file, so a ``kill -9`` (or any
crash) releases it without a stale-lock cleanup step. The lock lives next to the
checkpoints it protects (``SCM_LAKE/_checkpoints/ingest.lock``) for a local lake; for an
object-store lake, where no file lock exists, it lives under ``SCM_STATE`` and only guards
this machine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from scm.errors import ScmError
from scm.lake import Lake
from scm.settings import Settings

# After a kill -9 the Spark JVM of the dead ingest exits on its own (it watches its stdin)
# but may need a moment for its shutdown hooks; a restart waits this long for it.
_ENGINE_EXIT_WAIT_SECONDS = 30.0


class IngestAlreadyRunning(ScmError):
    """Another ingest holds the lake's lock (callers such as ``scm refresh`` may skip)."""


def lock_path(settings: Settings) -> Path:
    """Where the lock file for ``settings.lake`` lives."""
    lake = Lake.at(settings.lake)
    if lake.is_local:
        return Path(lake.checkpoint("ingest.lock"))
    digest = hashlib.sha1(lake.root.encode()).hexdigest()[:12]
    return Path(settings.state).absolute() / "locks" / f"ingest-{digest}.lock"


def _is_foreign_java_process(pid: int) -> bool:
    """True for a live java process that is not our own Spark JVM (our child)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return b"java" in command and parent != os.getpid()


class IngestLock:
    """An exclusive, non-blocking lock on one lake's ingest; use as a context manager."""

    def __init__(self, path: Path, lake: str) -> None:
        self.path = path
        self.lake = lake
        self._file: IO[str] | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> IngestLock:
        return cls(lock_path(settings), Lake.at(settings.lake).root)

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> IngestLock:
        """Take the lock or raise :class:`IngestAlreadyRunning` naming the holder."""
        if self._file is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown process"
            handle.close()
            raise IngestAlreadyRunning(
                f"another ingest is already running on lake {self.lake} ({holder}): "
                f"stop it first (lock file {self.path})"
            ) from None
        handle.seek(0)
        previous = handle.read()
        self._file = handle
        self._wait_for_previous_engine(previous)
        self._write(f"pid {os.getpid()}, started {_now()}")
        return self

    def note_engine_pid(self, jvm_pid: int) -> None:
        """Record the Spark JVM's pid so a restart after kill -9 can wait for it to exit."""
        if self._file is not None:
            self._write(f"pid {os.getpid()}, started {_now()}, jvm {jvm_pid}")

    def release(self) -> None:
        if self._file is None:
            return
        with contextlib.suppress(OSError):
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None

    def _write(self, text: str) -> None:
        assert self._file is not None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(text + "\n")
        self._file.flush()

    def _wait_for_previous_engine(self, previous: str) -> None:
        """A dead holder's JVM may still be shutting down: give it time before we write."""
        words = previous.replace(",", " ").split()
        if "jvm" not in words or words.index("jvm") + 1 >= len(words):
            return
        pid_text = words[words.index("jvm") + 1]
        if not pid_text.isdigit():
            return
        deadline = time.monotonic() + _ENGINE_EXIT_WAIT_SECONDS
        while _is_foreign_java_process(int(pid_text)) and time.monotonic() < deadline:
            time.sleep(0.2)

    def __enter__(self) -> IngestLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
