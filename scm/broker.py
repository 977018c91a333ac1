"""The embedded single-node Apache Kafka broker (KRaft) behind ``scm broker``.

Jars are resolved once from Maven Central with Maven into ``~/.cache/scm`` (override with
``SCM_JARS_CACHE``); storage is formatted on first start under ``SCM_STATE/kafka`` and kept
across restarts. The JVM is a child that dies with us (``PR_SET_PDEATHSIG``), so even a
kill -9 of the Python process leaves no orphaned broker.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import FrameType, TracebackType

from scm.errors import ScmError
from scm.settings import Settings

KAFKA_VERSION = "4.1.1"
_READY_TIMEOUT_SECONDS = 90.0
_STOP_TIMEOUT_SECONDS = 30.0


def resolve_broker_jars(cache: Path) -> Path:
    """Download the broker's jars from Maven Central once into ``cache``; return their folder."""
    lib = cache / f"kafka-{KAFKA_VERSION}" / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ScmError("Maven (mvn) was not found: install it (apt-get install maven)")
    pom = Path(__file__).with_name("broker_pom.xml")
    lib.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        shutil.copy(pom, Path(work) / "pom.xml")
        result = subprocess.run(
            [
                mvn, "-q", "-B", "dependency:copy-dependencies",
                f"-Dkafka.version={KAFKA_VERSION}", f"-DoutputDirectory={lib}",
                "-DincludeScope=runtime",
            ],
            cwd=work, capture_output=True, text=True, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        errors = [line for line in result.stdout.splitlines() if "ERROR" in line]
        reason = errors[0] if errors else result.stderr.strip()[-300:]
        raise ScmError(f"could not resolve Kafka {KAFKA_VERSION} jars from Maven Central: {reason}")
    marker.touch()
    return lib


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    if candidate is not None and candidate.exists():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise ScmError("Java was not found: install JDK 17 (apt-get install openjdk-17-jdk)")
    return found


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGTERM it when we die."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def answers_metadata(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when a broker at ``bootstrap`` answers a metadata request."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return True


_PROBE_TOPIC = "scm.readiness-probe"


def accepts_topics(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when the broker could create a topic now: registered and unfenced.

    A KRaft broker answers metadata while it is still fenced, and a topic created then fails
    with INVALID_REPLICATION_FACTOR ("All brokers are currently fenced"). A validate-only
    creation runs the controller's replica placement, which only unfenced brokers pass,
    without creating anything.
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        if not admin.list_topics(timeout=timeout).brokers:
            return False
        probe = NewTopic(_PROBE_TOPIC, num_partitions=1, replication_factor=1)
        future = admin.create_topics([probe], validate_only=True, request_timeout=timeout)
        future[_PROBE_TOPIC].result(timeout=timeout)
    except Exception:
        return False
    return True


class EmbeddedBroker:
    """A real single-node Kafka broker in KRaft mode, as a child JVM process."""

    def __init__(self, settings: Settings, *, heap: str = "512m") -> None:
        self.settings = settings
        self.host = settings.kafka_host
        self.port = settings.kafka_port
        self.heap = heap
        self.home = Path(settings.state).absolute() / "kafka"
        self.data = self.home / "data"
        self.log_file = Path(settings.state).absolute() / "logs" / "broker.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def _write_config(self, controller_port: int) -> Path:
        config = self.home / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{self.host}:{controller_port}",
                    f"listeners=PLAINTEXT://{self.host}:{self.port},"
                    f"CONTROLLER://{self.host}:{controller_port}",
                    f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.data}",
                    "num.partitions=4",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        log4j = self.home / "log4j2.properties"
        log4j.write_text(
            "\n".join(
                [
                    "appender.file.type=File",
                    "appender.file.name=file",
                    f"appender.file.fileName={self.log_file}",
                    "appender.file.layout.type=PatternLayout",
                    "appender.file.layout.pattern=[%d] %p %m (%c)%n",
                    "rootLogger.level=INFO",
                    "rootLogger.appenderRef.file.ref=file",
                    "logger.kafka.name=org.apache.kafka",
                    "logger.kafka.level=WARN",
                    "logger.state.name=state.change.logger",
                    "logger.state.level=WARN",
                    "",
                ]
            )
        )
        return config

    def _format_storage(self, java: str, classpath: str, config: Path) -> None:
        if (self.data / "meta.properties").exists():
            return
        cluster_id = "-"
        while cluster_id.startswith("-"):  # a leading "-" would read as an option to the tool
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(config), "--ignore-formatted"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().splitlines() or ["no output"]
            raise ScmError(f"could not format Kafka storage in {self.data}: {output[-1][:300]}")

    def start(self) -> EmbeddedBroker:
        """Start the broker and return once it is unfenced and accepts topics."""
        if not _port_free(self.host, self.port):
            if answers_metadata(self.bootstrap, timeout=2.0):
                raise ScmError(
                    f"a Kafka broker already answers on {self.bootstrap}: use it, or stop it first"
                )
            raise ScmError(
                f"port {self.port} on {self.host} is in use: stop that process or set "
                f"SCM_KAFKA_BOOTSTRAP={self.host}:<free port>"
            )
        java = _java()
        lib = resolve_broker_jars(self.settings.jars_cache)
        classpath = f"{lib}/*"
        self.home.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        config = self._write_config(_free_port(self.host))
        self._format_storage(java, classpath, config)
        command = [
            java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp", classpath, "kafka.Kafka", str(config),
        ]  # fmt: skip
        stdout = open(self.log_file.with_suffix(".out"), "ab")  # noqa: SIM115 - child owns it
        self.process = subprocess.Popen(
            command, stdout=stdout, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        stdout.close()
        try:
            self._wait_until_ready()
        except BaseException:  # an error or Ctrl-C after the JVM started must not orphan it
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ScmError(
                    f"the Kafka broker exited with code {self.process.returncode}: "
                    f"see {self.log_file}"
                )
            if accepts_topics(self.bootstrap, timeout=1.0):
                return
            time.sleep(0.2)
        raise ScmError(f"the Kafka broker did not become ready in time: see {self.log_file}")

    def stop(self) -> None:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after a grace period)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def run_broker(settings: Settings) -> int:
    """``scm broker``: run in the foreground until SIGINT/SIGTERM."""
    broker = EmbeddedBroker(settings)
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    from scm.kafka import ensure_topics

    broker.start()
    try:
        ensure_topics(settings)
        print(
            f"Kafka {KAFKA_VERSION} broker ready on {broker.bootstrap} "
            f"(data in {broker.data}, log in {broker.log_file}); Ctrl-C stops it",
            flush=True,
        )
        while not stopping and broker.process is not None and broker.process.poll() is None:
            time.sleep(0.2)
    finally:
        broker.stop()
    if not stopping:
        print(f"scm: error: the Kafka broker exited unexpectedly: see {broker.log_file}",
              file=sys.stderr)  # fmt: skip
        return 1
    print("Kafka broker stopped", flush=True)
    return 0
