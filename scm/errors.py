"""The one error type users see: a one-line message that says what to do."""

from __future__ import annotations


class ScmError(Exception):
    """A user-facing failure (bad setting, bad input, unreachable service).

    The CLI prints ``scm: error: <message>`` and exits non-zero; no traceback.
    """
