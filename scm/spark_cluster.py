"""A Spark standalone cluster on this machine: one master and one worker, behind
``scm cluster up``.

Both daemons come from the installed pyspark (``bin/spark-class`` of the package folder, the
same Spark version as every driver), run as child JVMs that die with us
(``PR_SET_PDEATHSIG``), and keep pid files and logs in ``SCM_STATE/spark-cluster``. The
master listens on SCM_SPARK_MASTER's port when that names this machine
(``spark://127.0.0.1:P``), else on 7077; the web UIs and the worker's port are chosen free.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from scm.errors import ScmError
from scm.processes import die_with_parent, find_java, first_error_in_log, free_port, port_free
from scm.settings import Settings

HOST = "127.0.0.1"
DEFAULT_MASTER_PORT = 7077
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
_LOCAL_MASTER = re.compile(r"^spark://(127\.0\.0\.1|localhost):(\d{1,5})$")
_READY_TIMEOUT_SECONDS = 60.0
_STOP_TIMEOUT_SECONDS = 10.0


def spark_home() -> Path:
    """The pyspark package folder: a complete Spark distribution (``bin/``, ``jars/``)."""
    import pyspark

    return Path(pyspark.__file__).parent


def cluster_folder(settings: Settings) -> Path:
    """Pid files, logs and the worker's application folders."""
    return Path(settings.state).absolute() / "spark-cluster"


def master_port(settings: Settings) -> int:
    """SCM_SPARK_MASTER's port when it is a master on this machine, else Spark's 7077."""
    found = _LOCAL_MASTER.match(settings.spark_master)
    return int(found.group(2)) if found else DEFAULT_MASTER_PORT


@dataclass
class SparkDaemon:
    """One daemon JVM (master or worker): its command, pid file and log."""

    label: str
    main_class: str
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    log_start: int = 0  # this run's part of the log, which keeps earlier runs'

    @property
    def pid_file(self) -> Path:
        return self.folder / f"{self.label}.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / f"{self.label}.log"

    def launch(self, arguments: list[str], environment: dict[str, str]) -> None:
        # spark-class execs into the JVM, so the child's pid is the daemon's.
        command = [str(spark_home() / "bin" / "spark-class"), self.main_class, *arguments]
        log = open(self.log_file, "ab")  # noqa: SIM115 - the child owns it
        self.log_start = log.tell()
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=self.folder,
            preexec_fn=die_with_parent,
        )
        log.close()
        self.pid_file.write_text(f"{self.process.pid}\n")

    def check_alive(self) -> None:
        """Raise a one-line error, pointing at the log, when the JVM has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise ScmError(
                f"the Spark {self.label} exited with code {self.process.returncode}"
                f"{first_error_in_log(self.log_file, self.log_start)}: see {self.log_file}"
            )

    def stop(self, timeout: float = _STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM (the worker's shutdown hook then ends its executors), SIGKILL after
        ``timeout``."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.pid_file.unlink(missing_ok=True)


class SparkCluster:
    """A Spark standalone master and one worker on 127.0.0.1, children of this process.

    The worker offers ``worker_cores`` task slots and ``worker_memory`` for executors; every
    application takes ``cores_per_application`` of the slots (``spark.deploy.defaultCores``),
    so a running ``scm ingest`` stream leaves room for a ``scm refresh`` beside it instead
    of holding every core until it stops.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        worker_cores: int = 4,
        worker_memory: str = "2g",
        cores_per_application: int = 2,
        daemon_memory: str = "512m",
    ) -> None:
        self.folder = cluster_folder(settings)
        self.port = master_port(settings)
        self.web_ui_port = 0
        self.worker_cores = worker_cores
        self.worker_memory = worker_memory
        self.cores_per_application = cores_per_application
        self.daemon_memory = daemon_memory
        self.master = SparkDaemon("master", MASTER_CLASS, self.folder)
        self.worker = SparkDaemon("worker", WORKER_CLASS, self.folder)

    @property
    def master_url(self) -> str:
        """What drivers set as SCM_SPARK_MASTER."""
        return f"spark://{HOST}:{self.port}"

    @property
    def web_ui(self) -> str:
        return f"http://{HOST}:{self.web_ui_port}"

    def start(self) -> Self:
        """Start the master, then the worker; return once the worker is registered."""
        find_java()  # one line when Java is missing, before anything starts
        if not port_free(HOST, self.port):
            raise ScmError(
                f"port {self.port} for the Spark master is in use: stop what listens there, or"
                f" set SCM_SPARK_MASTER=spark://{HOST}:<free port>"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        stop_leftover_daemons(self.folder)
        self.web_ui_port = free_port(HOST)
        environment = {
            **os.environ,
            "SPARK_HOME": str(spark_home()),
            "SPARK_DAEMON_MEMORY": self.daemon_memory,
            # Daemons and their web UIs listen on loopback only (the UIs would take 0.0.0.0).
            "SPARK_LOCAL_IP": HOST,
            # No REST submission server: it would take a fixed port (6066) and accept jobs
            # from anyone who can reach it.
            "SPARK_MASTER_OPTS": f"-Dspark.deploy.defaultCores={self.cores_per_application}"
            " -Dspark.master.rest.enabled=false",
            # Each application copies its jars into the worker's folder: drop them a day
            # after the application has finished.
            "SPARK_WORKER_OPTS": "-Dspark.worker.cleanup.enabled=true"
            " -Dspark.worker.cleanup.appDataTtl=86400",
        }
        try:
            self.master.launch(
                ["--host", HOST, "--port", str(self.port), "--webui-port", str(self.web_ui_port)],
                environment,
            )
            self._wait_until(lambda status: True, "the Spark master did not answer")
            work = self.folder / "work"
            work.mkdir(exist_ok=True)
            self.worker.launch(
                [
                    self.master_url, "--host", HOST, "--port", str(free_port(HOST)),
                    "--webui-port", str(free_port(HOST)), "--cores", str(self.worker_cores),
                    "--memory", self.worker_memory, "--work-dir", str(work),
                ],
                environment,
            )  # fmt: skip
            self._wait_until(
                lambda status: int(status.get("aliveworkers", 0)) >= 1,
                "the Spark worker did not register with the master",
            )
        except BaseException:  # an error or Ctrl-C after a JVM started must not orphan it
            self.stop()
            raise
        return self

    def status(self) -> dict[str, Any]:
        """The master's state as its web UI serves it at ``/json`` (workers, applications)."""
        with urllib.request.urlopen(f"{self.web_ui}/json", timeout=2) as response:
            answer: dict[str, Any] = json.load(response)
        return answer

    def _wait_until(self, ready: Callable[[dict[str, Any]], bool], failure: str) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self.master.check_alive()
            self.worker.check_alive()
            with contextlib.suppress(OSError, ValueError):
                if ready(self.status()):
                    return
            time.sleep(0.25)
        raise ScmError(f"{failure} in {_READY_TIMEOUT_SECONDS:.0f} s: see {self.folder}/*.log")

    def stop(self) -> None:
        """Stop the worker (and with it its executors), then the master."""
        self.worker.stop()
        self.master.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def daemon_pids(folder: Path) -> list[int]:
    """Pids of master and worker JVMs whose pid files are in ``folder`` and still run."""
    pids = []
    for label, main_class in (("worker", WORKER_CLASS), ("master", MASTER_CLASS)):
        try:
            pid = int((folder / f"{label}.pid").read_text().strip())
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if main_class.encode() in command:  # not a recycled pid
            pids.append(pid)
    return pids


def stop_leftover_daemons(folder: Path, timeout: float = _STOP_TIMEOUT_SECONDS) -> int:
    """Stop daemons a killed ``scm cluster up`` left behind; return how many there were.

    Normally none: they die with their parent. This covers a parent that could not signal
    them (e.g. a daemon that ignored the signal while it was still starting).
    """
    pids = daemon_pids(folder)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while daemon_pids(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in daemon_pids(folder):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for label in ("worker", "master"):
        (folder / f"{label}.pid").unlink(missing_ok=True)
    return len(pids)
