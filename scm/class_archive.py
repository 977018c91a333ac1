"""A class-data archive of the Spark driver: a JVM start maps Spark's classes, not loads them.

Every ``scm`` command that starts Spark loads tens of thousands of classes from Spark's,
Delta's and Kafka's jars, parsing and verifying each: most of a start's CPU on a small
machine. The JVM can write the classes one run loaded to an archive
(``-XX:ArchiveClassesAtExit``) and map that archive at later starts
(``-XX:SharedArchiveFile``); measured on two cores, a session's start and first query went
from 9.2–11.8 s (10–13 CPU-s) to 5.6–5.8 s (5.9–6.4 CPU-s), see docs/performance.md.

``python -m scm.jars`` (the setup step) builds it once per environment, from a run that does
what the commands do (Delta writes, MERGE and reads, SQL, a Delta stream, the Kafka
source); sessions use it when it is there. The JVM maps an archive only on the class path
it was written with (pyspark's jar folder, so the environment's own path) and the same JDK
build, and silently ignores any other: the archive therefore lives in the environment
(``<venv>/share/scm``), named after the Java, pyspark, delta-spark and jars it was built
from, and goes with the environment when that is deleted or recreated elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from scm.errors import ScmError
from scm.processes import find_java

# The JVM's own notes about the archive (e.g. "Unable to use shared archive" after a JDK
# update) would land on the user's terminal: off.
_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


_FOLDER = Path(sys.prefix) / "share" / "scm"


def archive_path(cache: Path) -> Path:
    """Where the archive for this environment, Java and Spark jars (in ``cache``) lives."""
    import pyspark

    from scm.jars import cached_spark_jars
    from scm.local_fs import local_fs_jar

    java = Path(find_java()).resolve()
    local_fs = local_fs_jar(cache)
    parts = [
        f"{java}:{java.stat().st_mtime_ns}",
        str(Path(pyspark.__file__).resolve().parent),
        version("pyspark"),
        version("delta-spark"),
        *map(str, cached_spark_jars(cache) or []),
        *([str(local_fs)] if local_fs is not None else []),
    ]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]
    return _FOLDER / f"spark-driver-{version('pyspark')}-{digest}.jsa"


def driver_options(cache: Path, *, write_to: Path | None = None) -> str:
    """The driver's JVM options: map the archive if built, or write one to ``write_to``."""
    if write_to is not None:
        return f"-XX:ArchiveClassesAtExit={write_to} {_QUIET}"
    archive = archive_path(cache)
    return f"-XX:SharedArchiveFile={archive} {_QUIET}" if archive.is_file() else ""


def build_archive(cache: Path) -> Path:
    """Write the archive unless it exists: one representative run in a child process.

    The JVM writes the archive when it exits, so the child waits for its JVM; the file is
    renamed into place only then, and a failed run leaves nothing behind. Archives of an
    earlier Java or Spark in this environment (~200 MB each) are deleted.
    """
    target = archive_path(cache)
    if target.is_file():
        return target
    _FOLDER.mkdir(parents=True, exist_ok=True)
    for stale in _FOLDER.glob("spark-driver-*.jsa"):
        stale.unlink()
    fd, name = tempfile.mkstemp(dir=_FOLDER, prefix=".spark-driver-", suffix=".jsa")
    os.close(fd)
    partial = Path(name)
    partial.unlink()  # the JVM creates it
    try:
        result = subprocess.run(
            [sys.executable, "-m", "scm.class_archive", str(partial)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0 or not partial.is_file():
            output = (result.stdout + result.stderr).strip().splitlines() or ["no output"]
            raise ScmError(f"could not build the Spark class archive: {output[-1][:300]}")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _exercise(write_to: Path) -> None:
    """What the commands do, on a throw-away lake, in a session writing the archive."""
    from pyspark import SparkContext

    from scm.settings import load_settings
    from scm.spark import spark_session

    with tempfile.TemporaryDirectory() as lake:
        settings = load_settings({"SCM_LAKE": lake, "SCM_STATE": lake})
        spark = spark_session(settings, app_name="scm-class-archive", archive_classes_to=write_to)
        table = f"{lake}/table"
        spark.range(100).selectExpr("id", "id % 7 AS k", "CAST(id AS STRING) AS v").write.format(
            "delta"
        ).partitionBy("k").save(table)
        spark.sql(
            f"MERGE INTO delta.`{table}` t USING (SELECT 5 AS id, 5 AS k, 'x' AS v) s "
            "ON t.id = s.id WHEN NOT MATCHED THEN INSERT *"
        )
        spark.sql(
            f"SELECT k, count(*), max(a.v) FROM delta.`{table}` a JOIN delta.`{table}` b "
            "USING (id, k) GROUP BY k ORDER BY k"
        ).collect()
        spark.read.format("delta").load(table).toArrow()
        stream = (
            spark.readStream.format("delta")
            .load(table)
            .writeStream.option("checkpointLocation", f"{lake}/checkpoint")
            .foreachBatch(
                lambda batch, _id: batch.write.format("delta").mode("append").save(f"{lake}/copy")
            )
            .trigger(availableNow=True)
            .start()
        )
        stream.awaitTermination()
        # The Kafka source's classes, without a broker: planned, never started.
        kafka = spark.readStream.format("kafka").option("subscribe", "scm.orders")
        kafka.option("kafka.bootstrap.servers", "127.0.0.1:9").load().selectExpr(
            "CAST(value AS STRING)"
        ).explain()
        spark.stop()
        gateway = SparkContext._gateway
        assert gateway is not None
        gateway.shutdown()
        gateway.proc.stdin.close()  # the JVM exits on end of input, writing the archive
        gateway.proc.wait()


if __name__ == "__main__":
    _exercise(Path(sys.argv[1]))
