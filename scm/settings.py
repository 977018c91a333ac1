"""Settings from the environment (interfaces.md), read and validated in one place.

Environment variables win over an optional settings file (``SCM_SETTINGS_FILE``, default
``./scm.env``) of ``NAME=value`` lines. Every bad value fails with one line naming the
variable and what is allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from scm.errors import ScmError

StartingOffsets = Literal["earliest", "latest"]
Engine = Literal["duckdb", "spark"]
# Engines of the batch layer: DuckDB on one machine, Spark on a cluster (interfaces.md).
ENGINES: tuple[str, ...] = ("duckdb", "spark")

_KAFKA_PREFIX = "SCM_KAFKA_"
# SCM_KAFKA_* names that are the platform's own, not librdkafka pass-through.
_OWN_KAFKA_NAMES = frozenset({"SCM_KAFKA_BOOTSTRAP"})
_HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$")
_SPARK_MASTER = re.compile(
    r"^(local(\[(\*|\d+)(,\s*\d+)?\])?|(spark|yarn|k8s|mesos)(://.+)?|yarn)$"
)


@dataclass(frozen=True)
class IngestOptions:
    """Spark Kafka-source options users tune (see docs/ingest.md)."""

    starting_offsets: StartingOffsets = "earliest"
    max_offsets_per_trigger: int | None = None
    min_partitions: int | None = None
    fail_on_data_loss: bool = True
    trigger_seconds: float = 1.0


@dataclass(frozen=True)
class QueryLimits:
    """Bounds of one DuckDB session (``scm sql``, the dashboards): memory and spill to disk."""

    memory: str = "4GB"
    spill: str = "8GB"


@dataclass(frozen=True)
class ObjectStore:
    """How to reach an ``s3://`` lake (``SCM_S3_*``): an S3-compatible endpoint and keys.

    Unset values fall back to the AWS SDK's own chain (``AWS_*`` variables, profiles,
    instance roles), so a lake on Amazon S3 needs none of them.
    """

    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str = "us-east-1"

    def environment(self) -> dict[str, str]:
        """The AWS SDK variables that delta-rs and Arrow read in this process."""
        variables = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        if self.endpoint:
            variables["AWS_ENDPOINT_URL"] = self.endpoint
            variables["AWS_ALLOW_HTTP"] = str(self.endpoint.startswith("http://")).lower()
        if self.access_key_id and self.secret_access_key:
            variables["AWS_ACCESS_KEY_ID"] = self.access_key_id
            variables["AWS_SECRET_ACCESS_KEY"] = self.secret_access_key
        return variables

    def hadoop_options(self) -> dict[str, str]:
        """The same store for Spark's ``s3a`` connector (``spark.hadoop.*`` options); ``s3://``
        paths use it too, so every engine names a table by the same URI."""
        options = {
            "fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            # Streaming checkpoints are written through Hadoop's FileContext API.
            "fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
            "fs.s3a.endpoint.region": self.region,
        }
        if self.endpoint:
            options["fs.s3a.endpoint"] = self.endpoint
            options["fs.s3a.path.style.access"] = "true"  # S3-compatible stores name no buckets
            secure = self.endpoint.startswith("https://")
            options["fs.s3a.connection.ssl.enabled"] = str(secure).lower()
        if self.access_key_id and self.secret_access_key:
            options["fs.s3a.aws.credentials.provider"] = (
                "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
            )
            options["fs.s3a.access.key"] = self.access_key_id
            options["fs.s3a.secret.key"] = self.secret_access_key
        return {f"spark.hadoop.{name}": value for name, value in options.items()}


@dataclass(frozen=True)
class Settings:
    """Validated platform settings; build with :func:`load_settings`."""

    lake: str = "./lake"
    kafka_bootstrap: str = "127.0.0.1:9092"
    state: Path = Path("./.scm")
    spark_master: str = "local[*]"
    engine: Engine = "duckdb"
    kafka_options: Mapping[str, str] = field(default_factory=dict)
    ingest: IngestOptions = field(default_factory=IngestOptions)
    query_limits: QueryLimits = field(default_factory=QueryLimits)
    spark_driver_memory: str | None = None
    spark_executor_memory: str | None = None
    jars_cache: Path = field(default_factory=lambda: Path.home() / ".cache" / "scm")
    object_store: ObjectStore = field(default_factory=ObjectStore)
    dagster_port: int = 3000
    streamlit_port: int = 8501

    @property
    def spill_directory(self) -> Path:
        """Where DuckDB sessions spill (one sub-folder per process, removed on close)."""
        return Path(self.state).absolute() / "tmp"

    @property
    def kafka_host(self) -> str:
        return self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[0].strip("[]")

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])

    def librdkafka_config(self) -> dict[str, str]:
        """Client configuration for confluent-kafka (librdkafka)."""
        return {"bootstrap.servers": self.kafka_bootstrap, **self.kafka_options}

    def spark_kafka_options(self) -> dict[str, str]:
        """The same client settings as Spark Kafka-source options (``kafka.*``)."""
        options = {"kafka.bootstrap.servers": self.kafka_bootstrap}
        options.update({f"kafka.{name}": value for name, value in self.kafka_options.items()})
        return options


def _read_settings_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ScmError(f"{path}:{number}: expected NAME=value, got {line!r}")
        name, value = line.split("=", 1)
        values[name.strip()] = value.strip().strip('"').strip("'")
    return values


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) <= 0:
        raise ScmError(f"{name}={raw!r} is invalid: use a positive whole number")
    return int(raw)


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise ScmError(f"{name}={raw!r} is invalid: use true or false")


_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
_JVM_MEMORY = re.compile(r"^\d+[kKmMgG]$")


def _size(env: Mapping[str, str], name: str, default: str) -> str:
    raw = (env.get(name) or default).strip()
    if not _SIZE.match(raw):
        raise ScmError(f"{name}={raw!r} is invalid: use a size such as 512MB or 4GB")
    return raw


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ScmError(f"{name}={raw!r} is invalid: use a port number 1-65535")
    return int(raw)


def _ingest_options(env: Mapping[str, str]) -> IngestOptions:
    starting = env.get("SCM_INGEST_STARTING_OFFSETS", "earliest") or "earliest"
    if starting not in ("earliest", "latest"):
        raise ScmError(
            f"SCM_INGEST_STARTING_OFFSETS={starting!r} is invalid: use earliest or latest"
        )
    trigger_raw = env.get("SCM_INGEST_TRIGGER_SECONDS", "1") or "1"
    try:
        trigger = float(trigger_raw)
    except ValueError:
        trigger = -1.0
    if trigger <= 0:
        raise ScmError(
            f"SCM_INGEST_TRIGGER_SECONDS={trigger_raw!r} is invalid:"
            " use a positive number of seconds"
        )
    return IngestOptions(
        starting_offsets=starting,  # type: ignore[arg-type]
        max_offsets_per_trigger=_positive_int(env, "SCM_INGEST_MAX_OFFSETS_PER_TRIGGER"),
        min_partitions=_positive_int(env, "SCM_INGEST_MIN_PARTITIONS"),
        fail_on_data_loss=_boolean(env, "SCM_INGEST_FAIL_ON_DATA_LOSS", True),
        trigger_seconds=trigger,
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (default: the process environment) and validate them.

    Read from the process environment, they are the process's settings: an object-store
    lake's ``SCM_S3_*`` are also exported (:func:`export_object_store`), so that every S3
    client of this process reaches the same store with the same keys.
    """
    environ = dict(os.environ if env is None else env)
    settings_file = Path(environ.get("SCM_SETTINGS_FILE", "scm.env"))
    if "SCM_SETTINGS_FILE" in environ and not settings_file.is_file():
        raise ScmError(f"SCM_SETTINGS_FILE={settings_file} does not exist: create it or unset it")
    if settings_file.is_file():
        environ = {**_read_settings_file(settings_file), **environ}

    lake = _lake(environ)
    bootstrap = environ.get("SCM_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    servers = [server.strip() for server in bootstrap.split(",")]
    if not bootstrap or not all(_HOST_PORT.match(s) for s in servers):
        raise ScmError(
            f"SCM_KAFKA_BOOTSTRAP={bootstrap!r} is invalid: use host:port[,host:port...]"
        )
    if not all(0 < int(s.rsplit(":", 1)[1]) < 65536 for s in servers):
        raise ScmError(f"SCM_KAFKA_BOOTSTRAP={bootstrap!r} is invalid: ports are 1-65535")
    master = environ.get("SCM_SPARK_MASTER", "local[*]") or "local[*]"
    if not _SPARK_MASTER.match(master):
        raise ScmError(
            f"SCM_SPARK_MASTER={master!r} is invalid: use local[*], local[N], spark://host:port,"
            " yarn or k8s://..."
        )
    engine = (environ.get("SCM_ENGINE") or "duckdb").strip().lower()
    if engine not in ENGINES:
        raise ScmError(
            f"SCM_ENGINE={environ.get('SCM_ENGINE')!r} is invalid: use duckdb (one machine)"
            " or spark (a cluster)"
        )
    kafka_options = {
        name[len(_KAFKA_PREFIX) :].lower().replace("_", "."): value
        for name, value in sorted(environ.items())
        if name.startswith(_KAFKA_PREFIX) and name not in _OWN_KAFKA_NAMES
    }
    settings = Settings(
        lake=lake,
        kafka_bootstrap=",".join(servers),
        state=Path(environ.get("SCM_STATE", "./.scm") or "./.scm"),
        spark_master=master,
        engine=engine,  # type: ignore[arg-type]
        kafka_options=kafka_options,
        ingest=_ingest_options(environ),
        query_limits=QueryLimits(
            memory=_size(environ, "SCM_SQL_MEMORY_LIMIT", QueryLimits.memory),
            spill=_size(environ, "SCM_SQL_SPILL_LIMIT", QueryLimits.spill),
        ),
        spark_driver_memory=_jvm_memory(environ, "SCM_SPARK_DRIVER_MEMORY"),
        spark_executor_memory=_jvm_memory(environ, "SCM_SPARK_EXECUTOR_MEMORY"),
        jars_cache=Path(environ.get("SCM_JARS_CACHE") or Path.home() / ".cache" / "scm"),
        dagster_port=_port(environ, "SCM_DAGSTER_PORT", 3000),
        streamlit_port=_port(environ, "SCM_STREAMLIT_PORT", 8501),
        object_store=_object_store(environ),
    )
    if env is None:
        export_object_store(settings)
    return settings


def export_object_store(settings: Settings) -> None:
    """Give this process's S3 clients (delta-rs, Arrow) the store of an ``s3://`` lake, as the
    AWS SDK's variables; Spark gets it in its session's options instead."""
    if settings.lake.startswith("s3://"):
        os.environ.update(settings.object_store.environment())


_OBJECT_STORE_LAKE = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^/].*)?$")
_ENDPOINT = re.compile(r"^https?://[A-Za-z0-9_.\-]+(:\d{1,5})?/?$")


def _lake(env: Mapping[str, str]) -> str:
    raw = env.get("SCM_LAKE", "./lake") or "./lake"
    lake = raw.rstrip("/") or "/"
    if "://" not in lake:
        return lake
    if not _OBJECT_STORE_LAKE.match(lake):
        raise ScmError(
            f"SCM_LAKE={raw!r} is invalid: use a folder or s3://bucket/path"
            " (Amazon S3 or an S3-compatible store, see docs/scale-out.md)"
        )
    return lake


def _object_store(env: Mapping[str, str]) -> ObjectStore:
    endpoint = env.get("SCM_S3_ENDPOINT") or None
    if endpoint is not None and not _ENDPOINT.match(endpoint):
        raise ScmError(
            f"SCM_S3_ENDPOINT={endpoint!r} is invalid: use http(s)://host[:port], or leave it"
            " unset for Amazon S3"
        )
    key = env.get("SCM_S3_ACCESS_KEY_ID") or None
    secret = env.get("SCM_S3_SECRET_ACCESS_KEY") or None
    if (key is None) != (secret is None):
        missing = "SCM_S3_SECRET_ACCESS_KEY" if secret is None else "SCM_S3_ACCESS_KEY_ID"
        raise ScmError(
            f"{missing} is not set: set SCM_S3_ACCESS_KEY_ID and SCM_S3_SECRET_ACCESS_KEY"
            " together, or neither to use the AWS SDK's own credentials"
        )
    return ObjectStore(
        endpoint=endpoint.rstrip("/") if endpoint else None,
        access_key_id=key,
        secret_access_key=secret,
        region=env.get("SCM_S3_REGION") or "us-east-1",
    )


def _jvm_memory(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    if not _JVM_MEMORY.match(raw):
        raise ScmError(f"{name}={raw!r} is invalid: use a JVM size such as 1g or 1536m")
    return raw
