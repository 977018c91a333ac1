"""Child JVM processes of the platform's commands (the Kafka nodes, the Spark daemons):
finding Java, choosing ports, and tying a child's life to its parent."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
from pathlib import Path

from scm.errors import ScmError


def find_java() -> str:
    """The ``java`` of JAVA_HOME, else on PATH; a one-line error when there is none."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    if candidate is not None and candidate.exists():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise ScmError("Java was not found: install JDK 17 (apt-get install openjdk-17-jdk)")
    return found


def port_free(host: str, port: int) -> bool:
    """Whether ``port`` on ``host`` can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


# Below Linux's ephemeral range (32768-60999): a port the kernel hands out for ``bind(0)``
# is also what the next outgoing connection on this machine may take, before the JVM that
# was given it has bound it (an S3Proxy start takes seconds).
_LISTEN_PORTS = range(20000, 32768)


def free_port(host: str) -> int:
    """A port free on ``host`` now, outside the range outgoing connections draw from."""
    for _ in range(50):
        port = random.choice(_LISTEN_PORTS)
        if port_free(host, port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGTERM it when we die."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def first_error_in_log(log_file: Path, start: int) -> str:
    """``": <first exception line>"`` of a child's log from byte ``start``, or nothing."""
    try:
        with log_file.open("rb") as log:
            log.seek(start)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in lines:
        if "Exception" in line or "Error" in line:
            return f": {line.strip()[:200]}"
    return ""
