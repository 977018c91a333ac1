"""Resolve every jar the platform needs from Maven Central once, into the usual caches.

``python -m scm.jars`` is run by the setup script so that the first ``scm`` command on a
fresh machine does not stall on downloads: the broker's, the object store's (S3Proxy) and
Spark's s3a connector's jars through Maven, and Spark's packages (Delta, the Kafka source)
through Spark's Ivy resolver; then the Spark driver's class-data archive
(:mod:`scm.class_archive`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from scm.broker import resolve_broker_jars
from scm.class_archive import build_archive
from scm.errors import ScmError
from scm.local_fs import resolve_local_fs_jar
from scm.object_store import resolve_s3a_jars, resolve_s3proxy_jar
from scm.settings import load_settings


def _spark_marker(cache: Path) -> Path:
    """Records a finished resolution for these pyspark and delta-spark versions."""
    return cache / f"spark-{version('pyspark')}-delta-{version('delta-spark')}-classpath.json"


def cached_spark_jars(cache: Path) -> list[Path] | None:
    """The jars an earlier resolution of the same versions found, if all are still there.

    Spark sessions pass them as ``spark.jars``: the same class path ``spark.jars.packages``
    gives, without an Ivy resolution (~1 s and a 100-line report) at every start.
    """
    marker = _spark_marker(cache)
    if not marker.is_file():
        return None
    try:
        jars = [Path(name) for name in json.loads(marker.read_text())]
    except ValueError:
        return None
    return jars if jars and all(jar.is_file() for jar in jars) else None


def resolve_spark_packages(cache: Path) -> None:
    """Start a throw-away local Spark session so Ivy caches Delta and the Kafka source.

    Skipped when :func:`cached_spark_jars`: starting Spark only to find everything in
    Ivy's cache costs ~15 s on every setup run.
    """
    if cached_spark_jars(cache):
        return
    # Resolve with spark.jars.packages (no marker yet) and keep the jar list Ivy put on the
    # class path: exactly these versions, not whatever else sits in Ivy's folder.
    code = (
        "import json, urllib.parse; from scm.settings import load_settings; "
        "from scm.spark import spark_session; "
        "s = spark_session(load_settings({'SCM_SPARK_MASTER': 'local[1]'})); "
        "print(json.dumps([urllib.parse.urlparse(j).path for j in "
        "s.sparkContext.getConf().get('spark.jars').split(',')])); s.stop()"
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
    jars = json.loads(result.stdout.strip().splitlines()[-1])
    cache.mkdir(parents=True, exist_ok=True)
    _spark_marker(cache).write_text(json.dumps(jars))


def object_store_jars(cache: Path) -> list[Path]:
    """The jars a Spark session adds (``spark.jars``) for an ``s3://`` lake: hadoop-aws and
    the AWS SDK modules it uses, beside pyspark's own Hadoop; resolved once, then listed."""
    return resolve_s3a_jars(cache)


def main() -> int:
    try:
        started = time.monotonic()
        cache = load_settings().jars_cache
        lib = resolve_broker_jars(cache)
        s3proxy = resolve_s3proxy_jar(cache)
        s3a = object_store_jars(cache)
        local_fs = resolve_local_fs_jar(cache)
        resolve_spark_packages(cache)
    except ScmError as error:
        print(f"scm: error: {error}", file=sys.stderr)
        return 2
    try:
        archive = f"Spark class archive {build_archive(cache).name}"
    except ScmError as error:  # Spark starts without it, only slower
        archive = f"no Spark class archive: {error}"
    print(f"jars ready (broker in {lib}; object store {s3proxy}; Spark s3a in {s3a[0].parent};"
          f" local file system {local_fs.name};"
          f" Spark packages in ~/.ivy2; {archive})"
          f" in {time.monotonic() - started:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
