"""Resolve every jar the platform needs from Maven Central once, into the usual caches.

``python -m scm.jars`` is run by the setup script so that the first ``scm`` command on a
fresh machine does not stall on downloads: the broker's jars through Maven, and Spark's
packages (Delta, the Kafka source) through Spark's Ivy resolver.
"""

from __future__ import annotations

import subprocess
import sys
import time

from scm.broker import resolve_broker_jars
from scm.errors import ScmError


def resolve_spark_packages() -> None:
    """Start a throw-away local Spark session so Ivy caches Delta and the Kafka source."""
    code = (
        "from scm.settings import load_settings; from scm.spark import spark_session; "
        "spark_session(load_settings({'SCM_SPARK_MASTER': 'local[1]'})).stop()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = [
            line for line in result.stderr.splitlines() if "unresolved" in line or "Error" in line
        ]
        raise ScmError(
            "could not resolve Spark packages from Maven Central: "
            + (lines[0].strip() if lines else result.stderr.strip()[-300:])
        )


def main() -> int:
    try:
        started = time.monotonic()
        lib = resolve_broker_jars()
        resolve_spark_packages()
    except ScmError as error:
        print(f"scm: error: {error}", file=sys.stderr)
        return 2
    print(f"jars ready (broker in {lib}; Spark packages in ~/.ivy2) "
          f"in {time.monotonic() - started:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
