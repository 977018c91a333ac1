"""A Spark start as a user sees it: from the jars and class archive made once at setup, quiet."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from scm.class_archive import archive_path
from scm.jars import cached_spark_jars
from scm.local_fs import local_fs_jar
from scm.settings import load_settings
from scm.spark import engine_pid

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[1]
_JVM_NOTICE = "WARNING: Using incubator modules: jdk.incubator.vector"  # printed by java itself


def test_sessions_use_the_jars_resolved_at_setup_without_ivy(spark: Any) -> None:
    jars = cached_spark_jars(load_settings({}).jars_cache)
    assert jars, "setup (python -m scm.jars) records the resolved class path"
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.jars.packages", None) is None
    listed = sorted(urlparse(jar).path for jar in conf.get("spark.jars").split(","))
    assert listed == sorted(str(jar) for jar in jars)
    assert any("delta-spark" in jar.name for jar in jars)
    assert any("spark-sql-kafka" in jar.name for jar in jars)


def test_the_driver_maps_the_class_archive_built_at_setup(spark: Any) -> None:
    """Setup writes the driver's class-data archive; a session's JVM maps it at start (the
    mapped CDS region then exceeds the archive's size: the JDK's base archive alone is far
    smaller), so Spark's classes are not parsed and verified again."""
    archive = archive_path(load_settings({}).jars_cache)
    assert archive.is_file(), "setup (python -m scm.jars) builds the class archive"
    info = subprocess.run(
        ["jcmd", str(engine_pid(spark)), "VM.info"], capture_output=True, text=True, check=True
    ).stdout
    mapped = re.search(r"CDS archive\(s\) mapped at: .*, size (\d+),", info)
    assert mapped is not None, info[:2000]
    assert int(mapped.group(1)) > archive.stat().st_size


def test_a_spark_command_prints_no_start_up_noise(tmp_path: Path) -> None:
    """Ivy's report, log4j's banner and Spark's start-up warnings stay off the terminal, and
    so do the heartbeat race Spark logs as an error (SPARK-59451) and the warning about a
    cached block two concurrent jobs computed at once; other errors and warnings do not."""
    code = (
        "from scm.settings import load_settings; from scm.spark import spark_session; "
        "s = spark_session(load_settings({'SCM_SPARK_MASTER': 'local[1]'})); "
        f"s.range(3).write.format('delta').save({str(tmp_path / 't')!r}); "
        f"print(s.read.format('delta').load({str(tmp_path / 't')!r}).count()); "
        "log = s._jvm.org.apache.logging.log4j.LogManager.getLogger("
        "'org.apache.spark.util.Utils'); "
        "log.error('Uncaught exception in thread executor-heartbeater'); "
        "log.error('Uncaught exception in thread task-result-getter'); "
        "blocks = s._jvm.org.apache.logging.log4j.LogManager.getLogger("
        "'org.apache.spark.storage.BlockManager'); "
        "blocks.warn('Block rdd_12_3 already exists on this machine; not re-adding it'); "
        "blocks.warn('Block rdd_12_3 could not be removed as it was not found on disk or in "
        "memory')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"
    printed = [line[9:] for line in result.stderr.splitlines() if line != _JVM_NOTICE]
    assert printed == [
        "ERROR Utils: Uncaught exception in thread task-result-getter",
        "WARN BlockManager: Block rdd_12_3 could not be removed as it was not found on disk or "
        "in memory",
    ]


def test_delta_writes_to_a_folder_lake_start_no_process_per_file(tmp_path: Path) -> None:
    """Hadoop's local file system, without a native library, forks `chmod` for every file it
    creates and `readlink` before every rename: 24 child processes per small Delta append.
    With the file system and log store set up by ``scm.local_fs``, ten appends start no
    process per file: its reaped children's CPU time (cutime + cstime) stays within a few
    ticks (a fresh JVM now and then runs a process of its own, 1 tick), where the 240
    processes of the same appends without it take ~60. A session of its own, so no other
    test's leftover work runs in that JVM meanwhile."""
    assert local_fs_jar(load_settings({}).jars_cache), "setup (python -m scm.jars) resolves it"
    code = f"""
from pathlib import Path
from scm.settings import load_settings
from scm.spark import engine_pid, spark_session
s = spark_session(load_settings({{"SCM_SPARK_MASTER": "local[1]"}}))
stat = Path(f"/proc/{{engine_pid(s)}}/stat")
def ticks():
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return int(fields[13]) + int(fields[14])
rows = s.range(50).selectExpr("id", "CAST(id AS STRING) AS name")
rows.write.format("delta").save({str(tmp_path / "t")!r})
rows.write.format("delta").mode("append").save({str(tmp_path / "t")!r})
before = ticks()
for batch in range(10):
    rows.write.format("delta").mode("append").save({str(tmp_path / "t")!r})
forked = ticks() - before
print(s.read.format("delta").load({str(tmp_path / "t")!r}).count(), forked)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    rows, forked_ticks = map(int, result.stdout.split())
    assert rows == 12 * 50
    assert forked_ticks <= 5
