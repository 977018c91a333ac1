"""The batch engine ``SCM_ENGINE`` names, opened for a refresh or a Dagster run.

Its own module so that :mod:`transforms.engine` (the interface) imports neither engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scm.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from scm.settings import Settings
    from transforms.engine import Engine


def open_engine(settings: Settings, *, spark: SparkSession | None = None) -> Engine:
    """The engine ``SCM_ENGINE`` names; the Spark engine uses ``spark`` or starts one."""
    lake = Lake.at(settings.lake)
    if settings.engine == "spark":
        from transforms.spark_engine import SparkEngine

        if spark is None:
            from scm.spark import spark_session

            spark = spark_session(settings, app_name="scm-refresh")
        return SparkEngine(spark, lake)
    from transforms.duckdb_engine import DuckDBEngine

    return DuckDBEngine(settings, lake)
