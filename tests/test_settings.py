"""Settings: defaults, validation with one-line messages, librdkafka and Spark pass-through."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scm.errors import ScmError
from scm.settings import load_settings


def test_defaults_match_interfaces() -> None:
    settings = load_settings({})
    assert settings.lake == "./lake"
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.state == Path("./.scm")
    assert settings.spark_master == "local[*]"
    assert settings.ingest.starting_offsets == "earliest"
    assert settings.ingest.fail_on_data_loss is True


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SCM_KAFKA_BOOTSTRAP", "localhost", "SCM_KAFKA_BOOTSTRAP='localhost' is invalid"),
        ("SCM_KAFKA_BOOTSTRAP", "h:99999", "ports are 1-65535"),
        ("SCM_SPARK_MASTER", "local[two]", "SCM_SPARK_MASTER='local[two]' is invalid"),
        ("SCM_INGEST_STARTING_OFFSETS", "oldest", "use earliest or latest"),
        ("SCM_INGEST_MAX_OFFSETS_PER_TRIGGER", "-5", "use a positive whole number"),
        ("SCM_INGEST_FAIL_ON_DATA_LOSS", "maybe", "use true or false"),
        ("SCM_INGEST_TRIGGER_SECONDS", "0", "positive number of seconds"),
        ("SCM_DAGSTER_PORT", "web", "SCM_DAGSTER_PORT='web' is invalid: use a port number"),
        ("SCM_STREAMLIT_PORT", "70000", "SCM_STREAMLIT_PORT='70000' is invalid"),
        ("SCM_SPARK_DRIVER_MEMORY", "2 GB", "SCM_SPARK_DRIVER_MEMORY='2 GB' is invalid"),
        ("SCM_SPARK_EXECUTOR_MEMORY", "lots", "SCM_SPARK_EXECUTOR_MEMORY='lots' is invalid"),
        ("SCM_SQL_MEMORY_LIMIT", "lots", "SCM_SQL_MEMORY_LIMIT='lots' is invalid"),
        ("SCM_SQL_SPILL_LIMIT", "-1GB", "SCM_SQL_SPILL_LIMIT='-1GB' is invalid"),
        ("SCM_LAKE", "gs://bucket/lake", "use a folder or s3://bucket/path"),
        ("SCM_LAKE", "s3://Bad_Bucket/lake", "SCM_LAKE='s3://Bad_Bucket/lake' is invalid"),
        ("SCM_S3_ENDPOINT", "127.0.0.1:9000", "use http(s)://host[:port]"),
        ("SCM_S3_ACCESS_KEY_ID", "scm", "SCM_S3_SECRET_ACCESS_KEY is not set"),
        ("SCM_S3_SECRET_ACCESS_KEY", "secret", "SCM_S3_ACCESS_KEY_ID is not set"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_variable(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ScmError) as raised:
        load_settings({name: value})
    text = str(raised.value)
    assert message in text
    assert name in text
    assert "\n" not in text


def test_kafka_pass_through_to_librdkafka_and_spark() -> None:
    settings = load_settings(
        {
            "SCM_KAFKA_BOOTSTRAP": "b1:9093,b2:9093",
            "SCM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "SCM_KAFKA_SASL_MECHANISM": "PLAIN",
        }
    )
    assert settings.librdkafka_config() == {
        "bootstrap.servers": "b1:9093,b2:9093",
        "sasl.mechanism": "PLAIN",
        "security.protocol": "SASL_SSL",
    }
    assert settings.spark_kafka_options() == {
        "kafka.bootstrap.servers": "b1:9093,b2:9093",
        "kafka.sasl.mechanism": "PLAIN",
        "kafka.security.protocol": "SASL_SSL",
    }


def test_settings_file_adds_to_environment(tmp_path: Path) -> None:
    settings_file = tmp_path / "scm.env"
    settings_file.write_text("# lake on disk\nSCM_LAKE=/data/lake\nSCM_SPARK_MASTER=local[2]\n")
    settings = load_settings(
        {"SCM_SETTINGS_FILE": str(settings_file), "SCM_SPARK_MASTER": "local[4]"}
    )
    assert settings.lake == "/data/lake"
    assert settings.spark_master == "local[4]"  # the environment wins over the file


def test_missing_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScmError, match="does not exist"):
        load_settings({"SCM_SETTINGS_FILE": str(tmp_path / "nope.env")})


def test_process_settings_are_read_and_typed_in_one_place(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "SCM_SPARK_DRIVER_MEMORY": "1536m",
            "SCM_SPARK_EXECUTOR_MEMORY": "3g",
            "SCM_JARS_CACHE": str(tmp_path / "jars"),
            "SCM_DAGSTER_PORT": "3100",
            "SCM_STREAMLIT_PORT": "8600",
            "SCM_SQL_MEMORY_LIMIT": "1GB",
            "SCM_SQL_SPILL_LIMIT": "512MB",
            "SCM_STATE": str(tmp_path / "state"),
        }
    )
    assert settings.spark_driver_memory == "1536m"
    assert settings.spark_executor_memory == "3g"
    assert settings.jars_cache == tmp_path / "jars"
    assert (settings.dagster_port, settings.streamlit_port) == (3100, 8600)
    assert (settings.query_limits.memory, settings.query_limits.spill) == ("1GB", "512MB")
    assert settings.spill_directory == tmp_path / "state" / "tmp"


def test_a_bad_port_is_one_line_from_the_command_not_an_import_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "scm.cli", "demo"],
        env={"PATH": "/usr/bin:/bin", "SCM_STREAMLIT_PORT": "web", "SCM_STATE": str(tmp_path)},
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "scm: error: SCM_STREAMLIT_PORT='web' is invalid: use a port number 1-65535"
    )


def test_object_store_settings_reach_delta_rs_arrow_and_spark() -> None:
    settings = load_settings(
        {
            "SCM_LAKE": "s3://scm-data/lake/",
            "SCM_S3_ENDPOINT": "http://127.0.0.1:9000",
            "SCM_S3_ACCESS_KEY_ID": "key",
            "SCM_S3_SECRET_ACCESS_KEY": "secret",
        }
    )
    assert settings.lake == "s3://scm-data/lake"
    assert settings.object_store.environment() == {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    spark = settings.object_store.hadoop_options()
    assert spark["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert spark["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert spark["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert spark["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert spark["spark.hadoop.fs.s3a.access.key"] == "key"
    assert spark["spark.hadoop.fs.s3a.secret.key"] == "secret"


def test_amazon_s3_needs_no_endpoint_or_keys() -> None:
    """Unset, the AWS SDK's own chain (variables, profiles, instance roles) applies."""
    store = load_settings({"SCM_LAKE": "s3://scm-data/lake", "SCM_S3_REGION": "eu-west-1"})
    assert store.object_store.environment() == {
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    options = store.object_store.hadoop_options()
    assert "spark.hadoop.fs.s3a.endpoint" not in options
    assert "spark.hadoop.fs.s3a.access.key" not in options


def test_a_dagster_run_exports_the_store_of_an_s3_lake(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dagster layers its overrides on the environment; its delta-rs must still find the
    store (the AWS SDK's variables), as a command's does."""
    from orchestration.resources import ScmSettings

    exported = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
                "AWS_DEFAULT_REGION", "AWS_ALLOW_HTTP")  # fmt: skip
    for name in exported:  # each restored as it was when the test ends
        monkeypatch.delenv(name, raising=False)
    overrides = {
        "SCM_LAKE": "s3://scm-data/lake",
        "SCM_S3_ENDPOINT": "http://127.0.0.1:9000",
        "SCM_S3_ACCESS_KEY_ID": "dagster-key",
        "SCM_S3_SECRET_ACCESS_KEY": "dagster-secret",
    }
    assert ScmSettings(overrides=overrides).load().lake == "s3://scm-data/lake"
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "dagster-key"
