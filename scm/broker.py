"""Embedded Apache Kafka (KRaft) on this machine: the single-node broker behind
``scm broker`` and the three-node cluster behind ``scm cluster up``, one implementation.

Jars are resolved once from Maven Central with Maven into ``~/.cache/scm`` (override with
``SCM_JARS_CACHE``); storage is formatted on first start (``SCM_STATE/kafka`` for the
broker, ``SCM_STATE/kafka-cluster/node-<id>`` for the cluster) and kept across restarts.
Each node is a child JVM that dies with us (``PR_SET_PDEATHSIG``), so even a kill -9 of
the Python process leaves no orphaned broker.
"""

from __future__ import annotations

import base64
import dataclasses
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self

from scm.errors import ScmError
from scm.maven import maven_copy
from scm.processes import die_with_parent, find_java, free_port, port_free
from scm.settings import Settings

KAFKA_VERSION = "4.1.1"
_READY_TIMEOUT_SECONDS = 90.0
_STOP_TIMEOUT_SECONDS = 30.0
# The quick compiler only, as for the Spark driver: on two cores C2's compile threads cost
# more CPU than its code saves. Measured: a start 6.4 -> 3.7 CPU-s (3.4 -> 2.6 s to ready),
# 300k produced + consumed events three times 15.1 -> 11.4 CPU-s at the same rates
# (docs/performance.md).
_JIT = ("-XX:TieredStopAtLevel=1",)


def resolve_broker_jars(cache: Path) -> Path:
    """Download the broker's jars from Maven Central once into ``cache``; return their folder."""
    lib = cache / f"kafka-{KAFKA_VERSION}" / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    maven_copy(
        "broker_pom.xml", {"kafka.version": KAFKA_VERSION}, lib, f"Kafka {KAFKA_VERSION} jars"
    )
    marker.touch()
    return lib


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


def accepts_topics(
    bootstrap: str,
    timeout: float = 2.0,
    *,
    replication_factor: int = 1,
    node_ids: Collection[int] = (),
) -> bool:
    """True when the cluster could create a topic of ``replication_factor`` now.

    A KRaft broker answers metadata while it is still fenced, and a topic created then fails
    with INVALID_REPLICATION_FACTOR ("All brokers are currently fenced"). Metadata lists only
    unfenced brokers, so every one of ``node_ids`` must be among them; a validate-only
    creation then runs the controller's replica placement, which only unfenced brokers pass,
    without creating anything.
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        brokers = admin.list_topics(timeout=timeout).brokers
        if len(brokers) < replication_factor or not set(node_ids) <= set(brokers):
            return False
        probe = NewTopic(_PROBE_TOPIC, num_partitions=1, replication_factor=replication_factor)
        future = admin.create_topics([probe], validate_only=True, request_timeout=timeout)
        future[_PROBE_TOPIC].result(timeout=timeout)
    except Exception:
        return False
    return True


def _new_cluster_id() -> str:
    cluster_id = "-"
    while cluster_id.startswith("-"):  # a leading "-" would read as an option to the tool
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return cluster_id


class KafkaNode:
    """One KRaft node, broker and controller in one JVM: its config, storage, log and process."""

    def __init__(
        self, node_id: int, host: str, port: int, *, home: Path, log_file: Path, label: str
    ) -> None:
        self.node_id = node_id
        self.host = host
        self.port = port
        self.home = home
        self.data = home / "data"
        self.log_file = log_file
        self.label = label
        self.controller_port = 0  # chosen afresh at every start of the cluster
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def voter(self) -> str:
        """This node's entry in ``controller.quorum.voters``."""
        return f"{self.node_id}@{self.host}:{self.controller_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def checkport_free(self) -> None:
        if port_free(self.host, self.port):
            return
        if answers_metadata(self.address, timeout=2.0):
            raise ScmError(
                f"a Kafka broker already answers on {self.address}: use it, or stop it first"
            )
        raise ScmError(
            f"port {self.port} on {self.host} is in use: stop that process or set "
            f"SCM_KAFKA_BOOTSTRAP={self.host}:<free port>"
        )

    def formatted_cluster_id(self) -> str | None:
        """The cluster id this node's storage was formatted with, if it was."""
        meta = self.data / "meta.properties"
        if not meta.exists():
            return None
        for line in meta.read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
        return None

    def write_config(self, voters: str, replication_factor: int) -> Path:
        """Write ``server.properties`` and the log4j config; the voters are the static quorum."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        # A write is acknowledged (acks=all) once min.insync.replicas copies have it: with
        # three replicas and two in sync, any one node can die without losing it.
        min_insync = max(1, replication_factor - 1)
        config = self.home / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={voters}",
                    f"listeners=PLAINTEXT://{self.address},"
                    f"CONTROLLER://{self.host}:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://{self.address}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.data}",
                    "num.partitions=4",
                    "auto.create.topics.enable=false",
                    f"default.replication.factor={replication_factor}",
                    f"min.insync.replicas={min_insync}",
                    "unclean.leader.election.enable=false",
                    f"offsets.topic.replication.factor={replication_factor}",
                    "offsets.topic.num.partitions=4",
                    f"transaction.state.log.replication.factor={replication_factor}",
                    f"transaction.state.log.min.isr={min_insync}",
                    f"share.coordinator.state.topic.replication.factor={replication_factor}",
                    f"share.coordinator.state.topic.min.isr={min_insync}",
                    "group.initial.rebalance.delay.ms=0",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        (self.home / "log4j2.properties").write_text(
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

    def format_storage(self, java: str, classpath: str, cluster_id: str) -> None:
        """Format the log dir once (kept across restarts); a static quorum needs no flags."""
        if (self.data / "meta.properties").exists():
            return
        result = subprocess.run(
            [java, *_JIT, "-cp", classpath, "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(self.home / "server.properties"), "--ignore-formatted"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip().splitlines() or ["no output"]
            raise ScmError(f"could not format Kafka storage in {self.data}: {output[-1][:300]}")

    def launch(self, java: str, classpath: str, heap: str) -> None:
        command = [
            java, f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", *_JIT, "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp", classpath, "kafka.Kafka", str(self.home / "server.properties"),
        ]  # fmt: skip
        stdout = open(self.log_file.with_suffix(".out"), "ab")  # noqa: SIM115 - child owns it
        self.process = subprocess.Popen(
            command, stdout=stdout, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
        stdout.close()

    def terminate(self) -> None:
        """Ask the JVM to shut down cleanly; :meth:`wait_stopped` waits for it."""
        if self.running:
            assert self.process is not None
            self.process.terminate()

    def wait_stopped(self, timeout: float = _STOP_TIMEOUT_SECONDS) -> None:
        """Wait for the JVM to exit; SIGKILL it after ``timeout``."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL the JVM, as a crash or a power loss would end it."""
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait()


def cluster_addresses(settings: Settings, nodes: int) -> list[tuple[str, int]]:
    """The nodes' client addresses: SCM_KAFKA_BOOTSTRAP's when it lists one per node, else
    consecutive ports from its first (127.0.0.1:9092 gives 9092, 9093, 9094)."""
    servers = [server.rsplit(":", 1) for server in settings.kafka_bootstrap.split(",")]
    addresses = [(host.strip("[]"), int(port)) for host, port in servers]
    if len(addresses) == nodes:
        return addresses
    host, port = addresses[0]
    if len(addresses) == 1 and port + nodes - 1 <= 65535:
        return [(host, port + offset) for offset in range(nodes)]
    raise ScmError(
        f"SCM_KAFKA_BOOTSTRAP={settings.kafka_bootstrap} does not fit a cluster of {nodes} nodes:"
        f" list {nodes} host:port, or one host:port to use it and the next {nodes - 1} ports"
    )


class EmbeddedCluster:
    """Real Apache Kafka KRaft nodes on this machine, each a child JVM that dies with us.

    Every node is broker and controller; the static quorum (``controller.quorum.voters``)
    lists them all. With three nodes, topics get three replicas and min.insync.replicas=2,
    so with acks=all producers any one node can be lost without losing an acknowledged
    message, and the other two keep both the quorum and every partition writable.
    """

    def __init__(self, settings: Settings, *, nodes: int = 3, heap: str = "512m") -> None:
        if nodes < 1:
            raise ValueError(f"nodes={nodes}: a cluster needs at least one node")
        self.settings = settings
        self.heap = heap
        self.replication_factor = min(nodes, 3)
        self.nodes = self._layout(settings, nodes)
        self._java = ""
        self._classpath = ""
        self._down: set[int] = set()  # nodes stopped or killed on purpose

    def _layout(self, settings: Settings, nodes: int) -> list[KafkaNode]:
        home = Path(settings.state).absolute() / "kafka-cluster"
        return [
            KafkaNode(
                node_id,
                host,
                port,
                home=home / f"node-{node_id}",
                log_file=home / f"node-{node_id}" / "broker.log",
                label=f"Kafka node {node_id}",
            )
            for node_id, (host, port) in enumerate(cluster_addresses(settings, nodes), start=1)
        ]

    @property
    def bootstrap(self) -> str:
        """Every node's address, for SCM_KAFKA_BOOTSTRAP: clients find the others from any."""
        return ",".join(node.address for node in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        valid = ", ".join(str(node.node_id) for node in self.nodes)
        raise ValueError(f"no Kafka node {node_id}: the nodes are {valid}")

    def start(self) -> Self:
        """Start every node and return once all are unfenced and accept replicated topics."""
        for node in self.nodes:
            node.checkport_free()
        self._java = find_java()
        self._classpath = f"{resolve_broker_jars(self.settings.jars_cache)}/*"
        taken = {node.port for node in self.nodes}
        for node in self.nodes:
            node.controller_port = free_port(node.host)
            while node.controller_port in taken:
                node.controller_port = free_port(node.host)
            taken.add(node.controller_port)
        voters = ",".join(node.voter for node in self.nodes)
        formatted = [node.formatted_cluster_id() for node in self.nodes]
        cluster_id = next((found for found in formatted if found), None) or _new_cluster_id()
        for node in self.nodes:
            node.write_config(voters, self.replication_factor)
        with ThreadPoolExecutor() as pool:  # a JVM per node: format them side by side
            formats = [
                pool.submit(node.format_storage, self._java, self._classpath, cluster_id)
                for node in self.nodes
            ]
            for done in formats:
                done.result()  # raises the first failure
        self._down.clear()
        try:
            for node in self.nodes:
                node.launch(self._java, self._classpath, self.heap)
            self._wait_until_ready()
        except BaseException:  # an error or Ctrl-C after a JVM started must not orphan it
            self.stop()
            raise
        return self

    def start_node(self, node_id: int) -> None:
        """Start a stopped or killed node again, with its data; return once it is unfenced."""
        node = self.node(node_id)
        if not self._java:
            raise ScmError("the cluster was never started: start it first")
        if node.running:
            raise ScmError(f"{node.label} is already running")
        node.launch(self._java, self._classpath, self.heap)
        self._down.discard(node_id)
        self._wait_until_ready()

    def stop_node(self, node_id: int) -> None:
        """Stop one node cleanly (it hands its partition leadership over first)."""
        node = self.node(node_id)
        self._down.add(node_id)
        node.terminate()
        node.wait_stopped()

    def kill_node(self, node_id: int) -> None:
        """Kill one node with SIGKILL: no clean shutdown, as in a crash."""
        node = self.node(node_id)
        self._down.add(node_id)
        node.kill()

    def _wait_until_ready(self) -> None:
        running = [node for node in self.nodes if node.node_id not in self._down]
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            for node in running:
                assert node.process is not None
                if node.process.poll() is not None:
                    raise ScmError(
                        f"{node.label} exited with code {node.process.returncode}: "
                        f"see {node.log_file}"
                    )
            ready = accepts_topics(
                self.bootstrap,
                timeout=1.0,
                replication_factor=min(self.replication_factor, len(running)),
                node_ids=[node.node_id for node in running],
            )
            if ready:
                return
            time.sleep(0.2)
        logs = ", ".join(str(node.log_file) for node in running)
        raise ScmError(f"Kafka did not become ready in time: see {logs}")

    def stop(self) -> None:
        """Stop every node cleanly, all at once (SIGTERM, then SIGKILL after a grace period)."""
        for node in self.nodes:
            node.terminate()
        for node in self.nodes:
            node.wait_stopped()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedBroker(EmbeddedCluster):
    """A real single-node Kafka broker in KRaft mode, as a child JVM process.

    Its storage lives in ``SCM_STATE/kafka`` and its log in ``SCM_STATE/logs/broker.log``;
    it listens on the first address of SCM_KAFKA_BOOTSTRAP.
    """

    def __init__(self, settings: Settings, *, heap: str = "512m") -> None:
        super().__init__(settings, nodes=1, heap=heap)

    def _layout(self, settings: Settings, nodes: int) -> list[KafkaNode]:
        state = Path(settings.state).absolute()
        return [
            KafkaNode(
                1,
                settings.kafka_host,
                settings.kafka_port,
                home=state / "kafka",
                log_file=state / "logs" / "broker.log",
                label="the Kafka broker",
            )
        ]

    @property
    def host(self) -> str:
        return self.nodes[0].host

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def data(self) -> Path:
        return self.nodes[0].data

    @property
    def log_file(self) -> Path:
        return self.nodes[0].log_file

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.nodes[0].process


def run_in_foreground(
    cluster: EmbeddedCluster, settings: Settings, *, ready: str, stopped: str, failed: str
) -> int:
    """Start ``cluster``, create the platform's topics, print ``ready``, and run until
    SIGINT/SIGTERM or until every node has exited; stop all nodes on the way out."""
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    from scm.kafka import ensure_topics

    cluster.start()
    try:
        ensure_topics(dataclasses.replace(settings, kafka_bootstrap=cluster.bootstrap))
        print(ready, flush=True)
        lost: set[int] = set()
        while not stopping and any(node.running for node in cluster.nodes):
            for node in cluster.nodes:
                if not node.running and node.node_id not in lost and len(cluster.nodes) > 1:
                    lost.add(node.node_id)
                    print(f"scm: warning: {node.label} exited: see {node.log_file}",
                          file=sys.stderr, flush=True)  # fmt: skip
            time.sleep(0.2)
    finally:
        cluster.stop()
    if not stopping:
        print(f"scm: error: {failed}", file=sys.stderr)
        return 1
    print(stopped, flush=True)
    return 0


def run_broker(settings: Settings) -> int:
    """``scm broker``: run the single-node broker in the foreground until SIGINT/SIGTERM."""
    broker = EmbeddedBroker(settings)
    return run_in_foreground(
        broker,
        settings,
        ready=f"Kafka {KAFKA_VERSION} broker ready on {broker.bootstrap} "
        f"(data in {broker.data}, log in {broker.log_file}); Ctrl-C stops it",
        stopped="Kafka broker stopped",
        failed=f"the Kafka broker exited unexpectedly: see {broker.log_file}",
    )
