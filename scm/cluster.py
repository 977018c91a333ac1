"""``scm cluster up`` / ``down``: the cluster profile on this machine, a three-node Kafka
cluster (:class:`scm.broker.EmbeddedCluster`) and a Spark standalone master and worker
(:class:`scm.spark_cluster.SparkCluster`), run in the foreground and stopped through a pid
file under SCM_STATE."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from scm.broker import KAFKA_VERSION, EmbeddedCluster, run_in_foreground
from scm.errors import ScmError
from scm.settings import Settings
from scm.spark_cluster import SparkCluster, cluster_folder, stop_leftover_daemons

_STOP_TIMEOUT_SECONDS = 60.0


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


def run_cluster(settings: Settings, *, nodes: int = 3) -> int:
    """``scm cluster up``: run a Kafka cluster of ``nodes`` and a Spark standalone master and
    worker in the foreground until SIGINT/SIGTERM (``scm cluster down`` sends the latter,
    through the pid file under SCM_STATE)."""
    import pyspark

    cluster = EmbeddedCluster(settings, nodes=nodes)
    spark = SparkCluster(settings)
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
        # Spark first: its web UI port, chosen at start, is part of the one ready line.
        with spark:
            return run_in_foreground(
                cluster,
                settings,
                ready=f"Kafka {KAFKA_VERSION} cluster of {nodes} nodes ready: "
                f"SCM_KAFKA_BOOTSTRAP={cluster.bootstrap} (data and logs in "
                f"{pid_file.parent}); Spark {pyspark.__version__} standalone master and worker "
                f"ready: SCM_SPARK_MASTER={spark.master_url} (web UI {spark.web_ui}, logs in "
                f"{spark.folder}); Ctrl-C or `scm cluster down` stops it",
                stopped="Kafka and Spark cluster stopped",
                failed=f"every Kafka node exited: see {pid_file.parent}/node-*/broker.log",
            )
    finally:
        pid_file.unlink(missing_ok=True)


def stop_cluster(settings: Settings, *, timeout: float = _STOP_TIMEOUT_SECONDS) -> int:
    """``scm cluster down``: stop the ``scm cluster up`` running from SCM_STATE, and wait
    until it has stopped its Kafka nodes and Spark daemons."""
    pid_file = _cluster_pid_file(settings)
    pid = _running_cluster_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        stop_leftover_daemons(cluster_folder(settings))
        print(f"no cluster runs from {settings.state}", flush=True)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _running_cluster_pid(pid_file) == pid:
        if time.monotonic() > deadline:
            raise ScmError(f"the cluster (pid {pid}) did not stop in {timeout:.0f} s")
        time.sleep(0.2)
    stop_leftover_daemons(cluster_folder(settings))  # none: `scm cluster up` stopped them
    print("Kafka and Spark cluster stopped", flush=True)
    return 0
