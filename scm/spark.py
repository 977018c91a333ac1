"""One way to build the Spark session: Delta, the Kafka source, sane local defaults.

Jars come from Maven Central through Spark's Ivy resolver (cached in ``~/.ivy2``) on first
use; nothing is committed. The session is shared by ingest and transforms.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from scm.errors import ScmError
from scm.processes import find_java
from scm.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


# Warnings and errors only, without Spark's start-up and per-batch notices.
_LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
# The driver compiles with the JVM's quick compiler (C1) only. Its work is planning and
# committing many short jobs over a code base as large as Spark's and Delta's: the optimizing
# compiler (C2) kept one of two cores busy for minutes after start, compiling that code, and
# the micro-batches waited for the core. C1-only code runs a large batch's rows ~5 % slower
# (in local mode the tasks run in the driver), which is far less than the core it gives
# back (docs/performance.md). Its code is never replaced by C2's, so it gets a code cache
# larger than the 48 MiB the JVM gives C1-only code by default (the JVM stops compiling
# when it is full). Executors on a cluster run the rows and keep both compilers.
_DRIVER_JIT = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"


def kafka_source_package() -> str:
    """Spark's own Kafka source for the installed Spark version."""
    import pyspark

    return f"org.apache.spark:spark-sql-kafka-0-10_2.13:{pyspark.__version__}"


def spark_session(
    settings: Settings,
    *,
    app_name: str = "scm",
    shuffle_partitions: int | None = None,
    driver_memory: str = "2g",
    archive_classes_to: Path | None = None,
) -> SparkSession:
    """The process's Spark session, created on first call with Delta and Kafka support.

    ``driver_memory`` is the heap this command needs; ``SCM_SPARK_DRIVER_MEMORY`` overrides it.
    On a cluster (``spark://…``) each executor gets ``SCM_SPARK_EXECUTOR_MEMORY`` (1g), the
    jars are shipped from this driver, and executors run this interpreter (the venv's, where
    the platform and pyspark are installed) unless ``PYSPARK_PYTHON`` names another.
    The driver maps the class-data archive of ``scm.class_archive`` when setup built it;
    ``archive_classes_to`` is for building it.
    """
    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    from scm.class_archive import driver_options
    from scm.jars import cached_spark_jars
    from scm.local_fs import local_fs_options

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    find_java()  # one line when Java is missing, before PySpark's launcher fails in its own way
    # local[*], or a standalone cluster on loopback (`scm cluster up`): this machine's cores.
    one_machine = settings.spark_master.startswith(
        ("local", "spark://127.0.0.1:", "spark://localhost:")
    )
    # Read by the SparkContext when it is created; executors start Python workers with it.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    partitions = shuffle_partitions or (4 if one_machine else 200)
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.sql.session.timeZone", "UTC")
        # A stream stopped mid-batch tells an interruption from a failure by matching the
        # batch's error text with a recursive regex (StreamExecution.PROXY_ERROR); on the
        # default 1 MiB thread stack a long Python traceback overflows it and the JVM prints
        # a StackOverflowError. Thread stacks are reserved, not committed, memory.
        .config(
            "spark.driver.extraJavaOptions",
            f"-Duser.timezone=UTC -Xss32m -Dlog4j2.configurationFile={_LOG_CONFIG} {_DRIVER_JIT} "
            + driver_options(settings.jars_cache, write_to=archive_classes_to),
        )
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.streaming.forceDeleteTempCheckpointLocation", "true")
        .config("spark.databricks.delta.schema.autoMerge.enabled", "false")
        # Compaction runs in `scm maintain`, not synchronously after a streaming write (this
        # session setting wins over a table's delta.autoOptimize.autoCompact property).
        .config("spark.databricks.delta.autoCompact.enabled", "false")
        .config("spark.sql.adaptive.enabled", "true")
        # Delta rebuilds table state (e.g. to check an idempotent txnAppId/txnVersion write)
        # with this many tasks; the default 50 costs seconds per commit on a small machine.
        .config("spark.databricks.delta.snapshotPartitions", "2" if one_machine else "50")
        .config("spark.driver.memory", settings.spark_driver_memory or driver_memory)
        # Unused by local[*] (the driver runs the tasks); a standalone worker starts one
        # executor of this size per application.
        .config("spark.executor.memory", settings.spark_executor_memory or "1g")
    )
    folder_lake = one_machine and not settings.lake.startswith("s3://")
    for name, value in local_fs_options(settings.jars_cache, folder_lake=folder_lake).items():
        builder = builder.config(name, value)
    jars = cached_spark_jars(settings.jars_cache)
    if jars is None:
        builder = configure_spark_with_delta_pip(builder, extra_packages=[kafka_source_package()])
    if settings.lake.startswith("s3://"):  # hadoop-aws (s3a) and the store's address and keys
        from scm.object_store import resolve_s3a_jars

        jars = [*(jars or []), *resolve_s3a_jars(settings.jars_cache)]
        for name, value in settings.object_store.hadoop_options().items():
            builder = builder.config(name, value)
    # Either way the driver serves the jars to executors, which fetch them at start.
    if jars:  # resolved once by `python -m scm.jars`: no Ivy resolution (and report) per start
        builder = builder.config("spark.jars", ",".join(str(jar) for jar in jars))
    try:
        _launch_engine(builder._options)  # type: ignore[attr-defined]
        session = builder.getOrCreate()
    except Exception as error:  # py4j / JVM start-up failures carry multi-line noise
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ScmError(f"Spark could not start: {first_line}") from error
    return session


def _launch_engine(options: dict[str, object]) -> None:
    """Start the driver JVM in a session of its own, unless one runs already.

    A service manager stopping a command (``systemctl stop``, ``docker stop``, ``kill`` of
    the process group) signals every process of the group; a JVM in that group would die
    at once, mid-batch, under the Python side that is still stopping its streams gracefully
    (py4j "Connection refused" tracebacks). In its own session it hears no group signal and
    still exits with its parent: it watches the stdin pipe PySpark gives it. PySpark offers
    no public way to pass Popen options, so this seeds the gateway ``getOrCreate`` would
    launch with the same ``--conf`` arguments.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:
        return
    conf = SparkConf(loadDefaults=False)
    conf.setAll([(key, str(value)) for key, value in options.items()])
    gateway = launch_gateway(conf, popen_kwargs={"start_new_session": True})
    SparkContext._ensure_initialized(gateway=gateway)


def engine_pid(spark: SparkSession) -> int:
    """The pid of this process's Spark driver JVM (recorded in locks, see ``scm.lake_lock``)."""
    return int(spark._jvm.java.lang.ProcessHandle.current().pid())  # type: ignore[union-attr]
