"""The CLI's promise: bad input or a bad setting gives one line saying what to do."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCM = [sys.executable, "-m", "scm.cli"]


def _scm(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SCM, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_command_without_loading_any_engine() -> None:
    result = _scm("--help")
    assert result.returncode == 0
    commands = ("broker", "cluster", "simulate", "ingest", "refresh", "sql", "demo", "maintain")
    for command in commands:
        assert command in result.stdout
    # Instant help: no engine, client or UI library is imported for it (each costs seconds).
    probe = (
        "import sys\nfrom scm.cli import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})), file=sys.stderr)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    ).stderr.split()
    heavy = {"pyspark", "dagster", "streamlit", "duckdb", "deltalake", "pyarrow", "pandas",
             "numpy", "confluent_kafka", "fsspec"}  # fmt: skip
    assert "scm" in loaded
    assert heavy & set(loaded) == set()


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("simulate", "--days", "0"), {}, "--days 0 makes no history"),
        (("simulate", "--days", "-1"), {}, "argument --days: '-1' is not a whole number >= 0"),
        (("simulate", "--malformed-fraction", "2"), {}, "is not a fraction between 0 and 1"),
        (("simulate", "--start", "yesterday"), {}, "'yesterday' is not a date: use YYYY-MM-DD"),
        (("frobnicate",), {}, "invalid choice: 'frobnicate'"),
        (("sql",), {}, "the following arguments are required: query"),
        (("broker",), {"SCM_KAFKA_BOOTSTRAP": "nohost"}, "SCM_KAFKA_BOOTSTRAP='nohost' is invalid"),
        (("ingest", "--once"), {"SCM_SPARK_MASTER": "mars"}, "SCM_SPARK_MASTER='mars' is invalid"),
        (("cluster",), {}, "the following arguments are required: ACTION"),
        (
            ("cluster", "up"),
            {"SCM_KAFKA_BOOTSTRAP": "127.0.0.1:19092,127.0.0.1:19093"},
            "does not fit a cluster of 3 nodes: list 3 host:port, or one host:port",
        ),
    ],
)
def test_bad_input_is_one_line(args: tuple[str, ...], env: dict[str, str], expected: str) -> None:
    result = _scm(*args, **env)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("scm: error: ")
    assert expected in lines[0]
