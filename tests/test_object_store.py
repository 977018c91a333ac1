"""The object store of ``scm cluster up``: a real S3Proxy on loopback that delta-rs writes a
Delta table to, whose buckets are folders under SCM_STATE, that refuses a wrong secret, and
that leaves neither a process nor a taken port behind when stopped; and the platform's own
readers on an ``s3://`` lake there: ``scm sql`` (DuckDB), the master-data loader, and
``scm maintain``'s refusal to write beside an ingest (one writer per table on S3)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from pyarrow.fs import FileSelector

from ingest.lock import IngestAlreadyRunning, IngestLock
from ingest.maintenance import run_maintenance
from scm.errors import ScmError
from scm.lake import Lake
from scm.object_store import ObjectStoreServer, object_store_pid
from scm.processes import free_port, port_free
from scm.settings import Settings, load_settings
from simulator.world import build_world, write_master_data
from transforms.master_data import load_master_data

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStoreServer]:
    state = tmp_path_factory.mktemp("object-store")
    settings = load_settings(
        {
            "SCM_STATE": str(state),
            "SCM_LAKE": "s3://scm-test/lake",
            "SCM_S3_ENDPOINT": f"http://127.0.0.1:{free_port('127.0.0.1')}",
        }
    )
    with ObjectStoreServer(settings) as running:
        yield running


def _storage_options(store: ObjectStoreServer, secret: str | None = None) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": store.endpoint,
        "AWS_ACCESS_KEY_ID": store.access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret or store.secret_access_key,
        "AWS_REGION": store.region,
        "AWS_ALLOW_HTTP": "true",
    }


def test_delta_rs_writes_and_reads_a_table_kept_as_files_under_scm_state(
    store: ObjectStoreServer,
) -> None:
    assert store.bucket == "scm-test"
    uri = f"s3://{store.bucket}/lake/orders"
    options = _storage_options(store)
    write_deltalake(uri, pa.table({"id": [1, 2], "sku": ["a", "b"]}), storage_options=options)
    # The second commit (version 1) goes through the store's conditional PUT, as every
    # later delta-rs commit does.
    write_deltalake(uri, pa.table({"id": [3], "sku": ["c"]}), mode="append",
                    storage_options=options)  # fmt: skip

    table = DeltaTable(uri, storage_options=options)
    assert table.version() == 1
    assert sorted(table.to_pyarrow_table().to_pylist(), key=lambda row: row["id"]) == [
        {"id": 1, "sku": "a"},
        {"id": 2, "sku": "b"},
        {"id": 3, "sku": "c"},
    ]
    folder = store.settings.state.absolute() / "object-store" / "data" / store.bucket
    assert store.data / store.bucket == folder
    log = folder / "lake" / "orders" / "_delta_log"
    assert sorted(path.name for path in log.glob("*.json")) == [
        "00000000000000000000.json",
        "00000000000000000001.json",
    ]
    assert len(list((folder / "lake" / "orders").glob("*.parquet"))) == 2


def test_two_writers_of_the_same_version_both_land(store: ObjectStoreServer) -> None:
    """A writer whose snapshot is stale commits the version another has just written: the
    store refuses that PUT (If-None-Match), so delta-rs commits as the next version instead
    of overwriting the other's commit and losing its rows."""
    uri = f"s3://{store.bucket}/lake/race"
    options = _storage_options(store)
    write_deltalake(uri, pa.table({"id": [1]}), storage_options=options)
    stale = DeltaTable(uri, storage_options=options)  # at version 0
    write_deltalake(uri, pa.table({"id": [2]}), mode="append", storage_options=options)
    write_deltalake(stale, pa.table({"id": [3]}), mode="append")  # tries version 1 first

    table = DeltaTable(uri, storage_options=options)
    assert table.version() == 2
    assert sorted(table.to_pyarrow_table().column("id").to_pylist()) == [1, 2, 3]


def test_a_wrong_secret_is_refused(store: ObjectStoreServer) -> None:
    wrong = store.filesystem(secret_access_key="not-the-secret")
    with pytest.raises(OSError, match="SIGNATURE_DOES_NOT_MATCH"):
        wrong.get_file_info(FileSelector(store.bucket))
    with pytest.raises(OSError, match="ACCESS_DENIED"):
        wrong.get_file_info(store.bucket)  # a HEAD: no body to say why
    with pytest.raises(OSError, match="403"):
        DeltaTable(
            f"s3://{store.bucket}/lake/orders",
            storage_options=_storage_options(store, secret="not-the-secret"),
        )


def test_a_taken_port_is_refused_in_one_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(
            {"SCM_STATE": str(tmp_path), "SCM_S3_ENDPOINT": f"http://localhost:{port}"}
        )
        with pytest.raises(ScmError, match=rf"^port {port} for the object store is in use: "):
            ObjectStoreServer(settings).start()
    assert not (tmp_path / "object-store").exists()


def test_missing_java_is_reported_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ScmError, match=r"^Java was not found: install JDK 17"):
        ObjectStoreServer(load_settings({"SCM_STATE": str(tmp_path)})).start()
    assert not (tmp_path / "object-store").exists()


def test_stop_ends_the_process_and_frees_the_port(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    settings = load_settings(
        {"SCM_STATE": str(tmp_path), "SCM_S3_ENDPOINT": f"http://127.0.0.1:{port}"}
    )
    server = ObjectStoreServer(settings).start()
    assert server.process is not None
    pid = server.process.pid
    assert object_store_pid(server.folder) == pid
    assert (server.bucket, server.access_key_id) == ("scm", "scm")  # the defaults
    assert os.stat(server.config_file).st_mode & 0o077 == 0  # it holds the secret
    server.stop()
    assert not Path(f"/proc/{pid}").exists()
    assert port_free("127.0.0.1", port)
    assert object_store_pid(server.folder) is None
    assert not server.pid_file.exists()


def _lake_settings(store: ObjectStoreServer, tmp_path: Path, prefix: str) -> dict[str, str]:
    """A user's settings for a lake under ``prefix`` of the store's bucket."""
    return {
        "SCM_LAKE": f"s3://{store.bucket}/{prefix}",
        "SCM_STATE": str(tmp_path / "state"),
        "SCM_S3_ENDPOINT": store.endpoint,
        "SCM_S3_ACCESS_KEY_ID": store.access_key_id,
        "SCM_S3_SECRET_ACCESS_KEY": store.secret_access_key,
    }


def _in_this_process(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a command loads them: the store's address and keys for delta-rs and Arrow
    (restored when the test ends)."""
    settings = load_settings(env)
    for name, value in settings.object_store.environment().items():
        monkeypatch.setenv(name, value)
    return settings


def test_scm_sql_reads_an_s3_lake_and_nothing_beside_it(
    store: ObjectStoreServer, tmp_path: Path
) -> None:
    env = _lake_settings(store, tmp_path, "sql-lake")
    options = _storage_options(store)
    orders = f"{env['SCM_LAKE']}/gold/fill_rate_daily"
    rows = pa.table({"day": ["2026-02-02", "2026-02-02", "2026-02-03"], "filled": [1, 2, 4]})
    write_deltalake(orders, rows, partition_by=["day"], storage_options=options)
    write_deltalake(orders, rows.slice(2), mode="append", partition_by=["day"],
                    storage_options=options)  # fmt: skip
    write_deltalake(f"s3://{store.bucket}/elsewhere/t", rows, storage_options=options)
    command = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **env}

    def scm_sql(query: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scm.cli", "sql", query, "--format", "json"],
            env=command, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    answer = scm_sql("select day, sum(filled) as filled from gold.fill_rate_daily group by day")
    assert answer.returncode == 0, answer.stderr
    assert sorted(json.loads(answer.stdout), key=lambda row: row["day"]) == [
        {"day": "2026-02-02", "filled": 3},
        {"day": "2026-02-03", "filled": 8},
    ]
    for outside in (
        "select * from read_csv('/etc/passwd')",
        f"select * from read_parquet('s3://{store.bucket}/elsewhere/t/*.parquet')",
    ):
        refused = scm_sql(outside)
        assert refused.returncode == 2
        assert refused.stderr.startswith("scm: error: not allowed: only the lake's tables")
        assert len(refused.stderr.strip().splitlines()) == 1


def test_master_data_lands_and_loads_in_the_store(
    store: ObjectStoreServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _in_this_process(_lake_settings(store, tmp_path, "master-lake"), monkeypatch)
    lake = Lake.at(settings.lake)
    write_master_data(build_world(3), lake.landing)
    first = {load.entity: load.outcome for load in load_master_data(lake)}
    assert first == dict.fromkeys(("products", "locations", "suppliers", "customers"), "loaded")
    again = {load.entity: load.outcome for load in load_master_data(lake)}
    assert set(again.values()) == {"unchanged"}  # the objects' time and size are recorded
    assert lake.tables("bronze") == ["customers", "locations", "products", "suppliers"]
    skus = DeltaTable(lake.silver("products")).to_pyarrow_table().column("sku").to_pylist()
    assert sorted(skus) == sorted(product.sku for product in build_world(3).products)


def test_maintain_refuses_to_write_beside_an_ingest_on_s3(
    store: ObjectStoreServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spark's S3 commits keep out other writers of its own driver only, so ``scm maintain``
    (a second Spark application) must not compact a table the ingest appends to."""
    settings = _in_this_process(_lake_settings(store, tmp_path, "busy-lake"), monkeypatch)
    write_deltalake(f"{settings.lake}/bronze/orders", pa.table({"id": [1]}))
    with (
        IngestLock.for_settings(settings, holder="scm ingest"),
        pytest.raises(IngestAlreadyRunning) as refused,
    ):
        run_maintenance(settings)
    assert "scm ingest" in str(refused.value)
    assert "\n" not in str(refused.value)
