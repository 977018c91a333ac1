"""A one-line progress display on stderr, only for a person watching a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Rewrites one stderr line (``\\r``) at most ten times a second; silent off a TTY."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self._last = 0.0
        self._shown = False

    def show(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        self._shown = True
        self.stream.write(f"\r{text[:110]:<110}")
        self.stream.flush()

    def count(self, label: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        self.show(f"{label} {done:,}/{total:,} ({percent}%)", force=done == total)

    def clear(self) -> None:
        """Erase the line so the summary that follows starts clean."""
        if self._shown:
            self.stream.write("\r" + " " * 110 + "\r")
            self.stream.flush()
            self._shown = False
