"""``scm cluster up`` / ``down``: the cluster profile on this machine, a three-node Kafka
cluster (:class:`scm.broker.EmbeddedCluster`), a Spark standalone master and worker
(:class:`scm.spark_cluster.SparkCluster`) and an S3-compatible object store for an ``s3://``
lake (:class:`scm.object_store.ObjectStoreServer`), run in the foreground and stopped through
a pid file under SCM_STATE."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from scm.broker import KAFKA_VERSION, EmbeddedCluster, run_in_foreground
from scm.errors import ScmError
from scm.object_store import (
    S3PROXY_VERSION,
    ObjectStoreServer,
    lake_bucket,
    object_store_folder,
    stop_leftover_object_store,
)
from scm.settings import Settings
from scm.spark_cluster import SparkCluster, cluster_folder, stop_leftover_daemons

_STOP_TIMEOUT_SECONDS = 60.0
STOPPED = "Kafka, Spark and object store stopped"


def _cluster_pid_file(settings: Settings) -> Path:
    return Path(settings.state).absolute() / "kafka-cluster" / "cluster.pid"


def _running_cluster_pid(pid_file: Path) -> int | None:
    """The pid of the ``scm cluster up`` recorded in ``pid_file``, if it still runs."""
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"cluster" in command else None  # not a recycled pid


def _object_store_ready(store: ObjectStoreServer, settings: Settings) -> str:
    """What to export for a lake in the store: its endpoint, keys and bucket."""
    exports = (
        f"S3Proxy {S3PROXY_VERSION} object store ready: SCM_S3_ENDPOINT={store.endpoint}"
        f" SCM_S3_ACCESS_KEY_ID={store.access_key_id}"
        f" SCM_S3_SECRET_ACCESS_KEY={store.secret_access_key}"
    )
    if lake_bucket(settings.lake) == store.bucket:
        return f"{exports} SCM_LAKE={settings.lake} (data in {store.data})"
    return (
        f"{exports} (data in {store.data}; bucket {store.bucket} is there for"
        f" SCM_LAKE=s3://{store.bucket}/lake)"
    )


def run_cluster(settings: Settings, *, nodes: int = 3) -> int:
    """``scm cluster up``: run a Kafka cluster of ``nodes``, a Spark standalone master and
    worker and an object store in the foreground until SIGINT/SIGTERM (``scm cluster down``
    sends the latter, through the pid file under SCM_STATE)."""
    import pyspark

    cluster = EmbeddedCluster(settings, nodes=nodes)
    spark = SparkCluster(settings)
    store = ObjectStoreServer(settings)
    pid_file = _cluster_pid_file(settings)
    running = _running_cluster_pid(pid_file)
    if running is not None and running != os.getpid():
        raise ScmError(
            f"a cluster already runs from {settings.state} (pid {running}):"
            " stop it with `scm cluster down`"
        )
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    try:
        # The object store and Spark first: the Spark web UI's port, chosen at start, is part
        # of the one ready line, and a lake in the store must be there before any job runs.
        with store, spark:
            return run_in_foreground(
                cluster,
                settings,
                ready=f"Kafka {KAFKA_VERSION} cluster of {nodes} nodes ready: "
                f"SCM_KAFKA_BOOTSTRAP={cluster.bootstrap} (data and logs in "
                f"{pid_file.parent}); Spark {pyspark.__version__} standalone master and worker "
                f"ready: SCM_SPARK_MASTER={spark.master_url} (web UI {spark.web_ui}, logs in "
                f"{spark.folder}); {_object_store_ready(store, settings)}; Ctrl-C or"
                " `scm cluster down` stops it",
                stopped=STOPPED,
                failed=f"every Kafka node exited: see {pid_file.parent}/node-*/broker.log",
            )
    finally:
        pid_file.unlink(missing_ok=True)


def stop_cluster(settings: Settings, *, timeout: float = _STOP_TIMEOUT_SECONDS) -> int:
    """``scm cluster down``: stop the ``scm cluster up`` running from SCM_STATE, and wait
    until it has stopped its Kafka nodes, Spark daemons and object store."""
    pid_file = _cluster_pid_file(settings)
    pid = _running_cluster_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        stop_leftover_daemons(cluster_folder(settings))
        stop_leftover_object_store(object_store_folder(settings))
        print(f"no cluster runs from {settings.state}", flush=True)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _running_cluster_pid(pid_file) == pid:
        if time.monotonic() > deadline:
            raise ScmError(f"the cluster (pid {pid}) did not stop in {timeout:.0f} s")
        time.sleep(0.2)
    # None: `scm cluster up` stopped them.
    stop_leftover_daemons(cluster_folder(settings))
    stop_leftover_object_store(object_store_folder(settings))
    print(STOPPED, flush=True)
    return 0
