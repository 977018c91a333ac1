"""Advisory per-lake locks (one ingest, one refresh at a time) that die with their holder.

Two writers of the same checkpoints or the same gold partitions would interleave their
commits, so each activity takes an exclusive ``fcntl.flock`` first. The lock is tied to the
open file, so a ``kill -9`` (or any crash) releases it without a stale-lock cleanup step;
the file holds a line naming the holder for the message a second process gets. For a local
lake the lock lives next to the checkpoints it protects (``SCM_LAKE/_checkpoints/<name>.lock``);
for an object-store lake, where no file lock exists, under ``SCM_STATE/locks`` (this machine).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Self

from scm.errors import ScmError
from scm.lake import Lake
from scm.settings import Settings

_POLL_SECONDS = 0.5
# After a kill -9 the Spark JVM of the dead holder exits on its own (it watches its stdin)
# but may need a moment for its shutdown hooks; the next holder waits this long for it.
_ENGINE_EXIT_WAIT_SECONDS = 30.0


class LakeBusy(ScmError):
    """Another process holds this lock on the lake."""


def lock_file(settings: Settings, name: str) -> Path:
    """Where the ``name`` lock of ``settings.lake`` lives."""
    lake = Lake.at(settings.lake)
    if lake.is_local:
        return Path(lake.checkpoint(f"{name}.lock"))
    digest = hashlib.sha1(lake.root.encode()).hexdigest()[:12]
    return Path(settings.state).absolute() / "locks" / f"{name}-{digest}.lock"


class LakeLock:
    """An exclusive lock on one activity of one lake; use as a context manager.

    Subclasses name the activity, the error a refused caller gets and what it should do.
    """

    name: ClassVar[str] = "lake"
    busy: ClassVar[type[LakeBusy]] = LakeBusy
    advice: ClassVar[str] = "wait for it to finish"

    def __init__(self, path: Path, lake: str, *, holder: str = "") -> None:
        self.path = path
        self.lake = lake
        self.holder = holder  # e.g. "scm refresh" or "Dagster run 1a2b3c4d", for the message
        self._file: IO[str] | None = None
        self._since = ""  # when this holder took the lock, for the holder line

    @classmethod
    def for_settings(cls, settings: Settings, *, holder: str = "") -> Self:
        return cls(lock_file(settings, cls.name), Lake.at(settings.lake).root, holder=holder)

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(
        self, *, wait_seconds: float = 0.0, on_wait: Callable[[str], None] | None = None
    ) -> Self:
        """Take the lock, waiting up to ``wait_seconds`` for a holder to finish.

        Raises :attr:`busy` naming the holder when it is still held after the wait;
        ``on_wait`` hears the holder once when the wait begins (for a log line).
        """
        if self._file is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown process"
                if time.monotonic() >= deadline:
                    handle.close()
                    raise self.busy(self._refusal(holder)) from None
                if on_wait is not None and not told:
                    on_wait(holder)
                    told = True
                time.sleep(_POLL_SECONDS)
        handle.seek(0)
        previous = handle.read()
        self._file = handle
        self._since = _now()
        self._taken(previous)
        self.describe()
        return self

    def describe(self, extra: str = "") -> None:
        """Rewrite the holder line (``extra`` adds facts such as an engine's pid)."""
        if self._file is None:
            return
        parts = [f"pid {os.getpid()}", f"started {self._since}"]
        if self.holder:
            parts.append(self.holder)
        if extra:
            parts.append(extra)
        self._file.seek(0)
        self._file.truncate()
        self._file.write(", ".join(parts) + "\n")
        self._file.flush()

    def _refusal(self, holder: str) -> str:
        return (
            f"another {self.name} is already running on lake {self.lake} ({holder}): "
            f"{self.advice} (lock file {self.path})"
        )

    def note_engine_pid(self, jvm_pid: int) -> None:
        """Record the Spark JVM's pid so the next holder after a kill -9 waits for it to exit."""
        self.describe(f"jvm {jvm_pid}")

    def _taken(self, previous: str) -> None:
        """A dead holder's JVM may still be finishing a write: let it exit before ours."""
        words = previous.replace(",", " ").split()
        if "jvm" not in words or words.index("jvm") + 1 >= len(words):
            return
        pid_text = words[words.index("jvm") + 1]
        if not pid_text.isdigit():
            return
        deadline = time.monotonic() + _ENGINE_EXIT_WAIT_SECONDS
        while _is_foreign_java_process(int(pid_text)) and time.monotonic() < deadline:
            time.sleep(0.2)

    def release(self) -> None:
        if self._file is None:
            return
        with contextlib.suppress(OSError):
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _is_foreign_java_process(pid: int) -> bool:
    """True for a live java process that is not our own Spark JVM (our child)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return b"java" in command and parent != os.getpid()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RefreshAlreadyRunning(LakeBusy):
    """Another refresh (a CLI refresh or a Dagster silver or gold step) holds the lake."""


class RefreshLock(LakeLock):
    """Held by ``scm refresh`` and by the Dagster silver and gold steps while they write."""

    name = "refresh"
    busy = RefreshAlreadyRunning
    advice = "wait for it to finish"
