"""Small reads of Delta metadata (versions, commit metadata) that need no Spark job.

delta-rs answers them from the log in milliseconds (a version from one listing of it);
asking Spark would plan a job each time. Only the log is read here (no ``to_pyarrow_*``,
see platform.md fact 4).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from scm import storage

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def table_exists(path: str) -> bool:
    """Whether a Delta table exists at ``path``."""
    from deltalake import DeltaTable

    return bool(DeltaTable.is_deltatable(path))


_COMMIT_FILE = re.compile(r"^([0-9]{20})\.json$")


def delta_version(path: str) -> int | None:
    """The current version of the Delta table at ``path``, or None when there is none.

    The highest-numbered commit file in its log: a commit is published by creating that
    file atomically, and the newest one is never cleaned up, so one listing answers it
    (opening the table to ask costs ~3 ms of log reading; a refresh asks ~20 times).
    """
    names = storage.children(f"{path.rstrip('/')}/_delta_log")
    versions = [int(found.group(1)) for name in names if (found := _COMMIT_FILE.match(name))]
    return max(versions, default=None)


def column_names(path: str) -> list[str] | None:
    """The columns of the Delta table at ``path`` (from the log), or None when there is none."""
    from deltalake import DeltaTable

    if not table_exists(path):
        return None
    return [field.name for field in DeltaTable(path, without_files=True).schema().fields]


def last_commit_metadata(path: str) -> dict[str, Any]:
    """The commit info of the table's latest commit (empty when there is no table)."""
    from deltalake import DeltaTable

    if not table_exists(path):
        return {}
    history = DeltaTable(path, without_files=True).history(1)
    return dict(history[0]) if history else {}


def rows_written(path: str) -> int:
    """Rows the table's latest commit wrote, from its operation metrics (0 when unknown)."""
    metrics = last_commit_metadata(path).get("operationMetrics") or {}
    return int(metrics.get("numOutputRows", 0))


def delete_path(spark: SparkSession, path: str) -> None:
    """Delete a folder through Hadoop's file system, so object-store lakes work too."""
    jvm = spark._jvm  # type: ignore[attr-defined]
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]
    file_system = hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    if file_system.exists(hadoop_path):
        file_system.delete(hadoop_path, True)
