"""Resources: the platform settings, and one Spark session per run.

Settings come from :func:`scm.settings.load_settings`, the one place the environment is
read; the resource only layers explicit ``SCM_*`` overrides on top (tests, a deployment's
lake). The one secret reaches Dagster only as ``dg.EnvVar``, so the UI shows the variable's
name and never its value.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

from scm.lake import Lake
from scm.settings import Settings, export_object_store, load_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from transforms.engine import Engine

SASL_PASSWORD_VARIABLE = "SCM_KAFKA_SASL_PASSWORD"


class ScmSettings(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The platform settings: the ``SCM_*`` environment plus optional overrides."""

    overrides: dict[str, str] = Field(
        default_factory=dict, description="SCM_* variables that win over the environment"
    )
    kafka_sasl_password: str | None = Field(
        default=None, description=f"bound to dg.EnvVar({SASL_PASSWORD_VARIABLE!r}) when set"
    )

    def load(self) -> Settings:
        environment = {**os.environ, **self.overrides}
        if self.kafka_sasl_password:
            environment[SASL_PASSWORD_VARIABLE] = self.kafka_sasl_password
        settings = load_settings(environment)
        export_object_store(settings)  # the run's delta-rs and Arrow reach an s3:// lake too
        return settings

    def lake(self) -> Lake:
        return Lake.at(self.load().lake)


class SparkResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """One Spark session per run, shared by every asset and check of that run.

    The session starts on first use, so a run that needs no Spark starts no JVM, and stops
    when the run ends unless it existed before the run (a test's or a notebook's session,
    which :func:`scm.spark.spark_session` hands back). Sharing needs every step of a run in
    one process: ``definitions.py`` sets the in-process executor.
    """

    settings: ScmSettings
    app_name: str = "scm-dagster"

    _session: SparkSession | None = PrivateAttr(default=None)
    _owns_session: bool = PrivateAttr(default=False)
    _engine: Engine | None = PrivateAttr(default=None)

    def engine(self) -> Engine:
        """The batch engine ``SCM_ENGINE`` names; DuckDB needs no Spark session at all."""
        if self._engine is None:
            from transforms.open_engine import open_engine

            settings = self.settings.load()
            spark = self.session if settings.engine == "spark" else None
            self._engine = open_engine(settings, spark=spark)
        return self._engine

    @property
    def session(self) -> SparkSession:
        if self._session is None:
            from scm.spark import spark_session

            self._owns_session = not _spark_is_running()
            self._session = spark_session(self.settings.load(), app_name=self.app_name)
        return self._session

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._session is not None and self._owns_session:
            self._session.stop()
        self._session = None


def _spark_is_running() -> bool:
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    try:
        SparkSession.active()
    except PySparkRuntimeError:
        return False
    return True


def build_resources(overrides: dict[str, str] | None = None) -> dict[str, object]:
    """The resources every definition uses, keyed as the assets and sensors ask for them."""
    # An EnvVar whose variable is unset fails the whole code location, so bind it only if set.
    password = dg.EnvVar(SASL_PASSWORD_VARIABLE) if os.environ.get(SASL_PASSWORD_VARIABLE) else None
    settings = ScmSettings(overrides=overrides or {}, kafka_sasl_password=password)  # type: ignore[arg-type]
    return {"scm": settings, "spark": SparkResource(settings=settings)}
