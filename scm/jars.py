"""Resolve every jar the platform needs from Maven Central once, into the usual caches.

``python -m scm.jars`` is run by the setup script so that the first ``scm`` command on a
fresh machine does not stall on downloads: the broker's jars through Maven, and Spark's
packages (Delta, the Kafka source) through Spark's Ivy resolver.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from scm.broker import resolve_broker_jars
from scm.errors import ScmError
from scm.settings import load_settings


def _ivy_jars() -> list[Path]:
    """The jars Spark's Ivy resolver keeps (``~/.ivy2.5.2/jars`` for Spark 4)."""
    return sorted(jar for folder in Path.home().glob(".ivy2*/jars") for jar in folder.glob("*.jar"))


def _spark_marker(cache: Path) -> Path:
    """Records a finished resolution for these pyspark and delta-spark versions."""
    return cache / f"spark-{version('pyspark')}-delta-{version('delta-spark')}.json"


def spark_packages_cached(cache: Path) -> bool:
    """True when an earlier resolution of the same versions left all its jars in place."""
    marker = _spark_marker(cache)
    if not marker.is_file():
        return False
    try:
        jars = [Path(name) for name in json.loads(marker.read_text())]
    except ValueError:
        return False
    return bool(jars) and all(jar.is_file() for jar in jars)


def resolve_spark_packages(cache: Path) -> None:
    """Start a throw-away local Spark session so Ivy caches Delta and the Kafka source.

    Skipped when :func:`spark_packages_cached`: starting Spark only to find everything in
    Ivy's cache costs ~15 s on every setup run.
    """
    if spark_packages_cached(cache):
        return
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
    cache.mkdir(parents=True, exist_ok=True)
    _spark_marker(cache).write_text(json.dumps([str(jar) for jar in _ivy_jars()]))


def main() -> int:
    try:
        started = time.monotonic()
        cache = load_settings().jars_cache
        lib = resolve_broker_jars(cache)
        resolve_spark_packages(cache)
    except ScmError as error:
        print(f"scm: error: {error}", file=sys.stderr)
        return 2
    print(f"jars ready (broker in {lib}; Spark packages in ~/.ivy2) "
          f"in {time.monotonic() - started:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
