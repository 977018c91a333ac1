"""Settings: defaults, validation with one-line messages, librdkafka and Spark pass-through."""

from __future__ import annotations

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
