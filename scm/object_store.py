"""An S3-compatible object store on this machine, behind ``scm cluster up``, and the jars Spark
needs to read and write an ``s3://`` lake.

The store is S3Proxy (Apache-2.0) on its filesystem backend: a bucket is a sub-folder of
``SCM_STATE/object-store/data``, so a lake written through it stays readable as files. It runs
as a child JVM that dies with us (``PR_SET_PDEATHSIG``), listens on loopback only and checks
request signatures (AWS v2 and v4) against one key pair: SCM_S3_ACCESS_KEY_ID and
SCM_S3_SECRET_ACCESS_KEY when set, else a fixed development pair. It is a development store,
not a hardened one: it must never listen beyond this machine.

Jars come from Maven Central once, through Maven, into ``SCM_JARS_CACHE`` (like the broker's).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from importlib.metadata import version
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import urlparse

from scm.errors import ScmError
from scm.maven import maven_copy, maven_jar
from scm.processes import die_with_parent, find_java, first_error_in_log, port_free
from scm.settings import Settings

if TYPE_CHECKING:
    from pyarrow.fs import S3FileSystem

S3PROXY_VERSION = "4.1.0"
# The AWS SDK v2 that hadoop-aws 3.5.0 is built and tested against (``aws-java-sdk-v2.version``
# of hadoop-project); a later pyspark with another Hadoop may want another.
AWS_SDK_VERSION = "2.35.4"
HOST = "127.0.0.1"
DEFAULT_PORT = 9000
# Loopback-only development keys, used when SCM_S3_ACCESS_KEY_ID/SECRET are unset: anyone on
# this machine can read them here, which is why the store never listens beyond it.
DEFAULT_ACCESS_KEY_ID = "scm"
DEFAULT_SECRET_ACCESS_KEY = "scm-local-secret"
DEFAULT_BUCKET = "scm"
_LOCAL_ENDPOINT = re.compile(r"^http://(127\.0\.0\.1|localhost):(\d{1,5})/?$")
_JAR_VERSION = re.compile(r"^(?P<artifact>.+?)-(?P<version>\d[^-]*)(-.+)?\.jar$")
# Jars Maven brings whose classes pyspark has under another artifact name.
_PROVIDED_AS = {"commons-logging": "jcl-over-slf4j"}
_READY_TIMEOUT_SECONDS = 60.0
_STOP_TIMEOUT_SECONDS = 10.0


def resolve_s3proxy_jar(cache: Path) -> Path:
    """Download S3Proxy's self-contained jar from Maven Central once into ``cache``."""
    jar = (
        cache
        / f"s3proxy-{S3PROXY_VERSION}"
        / f"s3proxy-{S3PROXY_VERSION}-jar-with-dependencies.jar"
    )
    return maven_jar(
        "object_store_pom.xml",
        {"s3proxy.version": S3PROXY_VERSION},
        jar,
        f"S3Proxy {S3PROXY_VERSION}",
    )


def _artifact(jar: str) -> str:
    """``netty-buffer-4.1.126.Final.jar`` -> ``netty-buffer``: a jar's artifact id."""
    found = _JAR_VERSION.match(jar)
    return found.group("artifact") if found else jar.removesuffix(".jar")


def _pyspark_jars() -> Path:
    from scm.spark_cluster import spark_home

    return spark_home() / "jars"


def pyspark_hadoop_version() -> str:
    """The Hadoop pyspark ships (``hadoop-client-api-<version>.jar``): hadoop-aws must match it,
    or s3a fails on missing or changed Hadoop classes."""
    for jar in sorted(_pyspark_jars().glob("hadoop-client-api-*.jar")):
        found = _JAR_VERSION.match(jar.name)
        if found:
            return found.group("version")
    raise ScmError(f"pyspark has no hadoop-client-api jar in {_pyspark_jars()}: reinstall it")


def resolve_s3a_jars(cache: Path) -> list[Path]:
    """The jars Spark adds for ``s3a`` (``spark.jars``): hadoop-aws and the AWS SDK modules it
    uses, downloaded once into ``cache``, minus every artifact pyspark already has (two
    versions of netty or httpclient on one class path fail at run time, not at start)."""
    hadoop = pyspark_hadoop_version()
    lib = cache / f"s3a-hadoop-{hadoop}-sdk-{AWS_SDK_VERSION}-pyspark-{version('pyspark')}"
    marker = lib / ".complete"
    if not marker.exists():
        maven_copy(
            "s3a_pom.xml", {"hadoop.version": hadoop, "aws.sdk.version": AWS_SDK_VERSION}, lib,
            f"hadoop-aws {hadoop} and the AWS SDK {AWS_SDK_VERSION}",
        )  # fmt: skip
        present = {_artifact(jar.name) for jar in _pyspark_jars().glob("*.jar")}
        for jar in lib.glob("*.jar"):
            artifact = _artifact(jar.name)
            if artifact in present or _PROVIDED_AS.get(artifact) in present:
                jar.unlink()
        marker.touch()
    jars = sorted(lib.glob("*.jar"))
    if not any(jar.name.startswith("hadoop-aws-") for jar in jars):
        marker.unlink(missing_ok=True)  # resolve again next time
        raise ScmError(f"the s3a jars in {lib} are incomplete: run `python -m scm.jars` again")
    return jars


def object_store_folder(settings: Settings) -> Path:
    """The store's configuration, pid file and log; its buckets are under ``data``."""
    return Path(settings.state).absolute() / "object-store"


def object_store_port(settings: Settings) -> int:
    """SCM_S3_ENDPOINT's port when it names this machine over http, else 9000."""
    found = _LOCAL_ENDPOINT.match(settings.object_store.endpoint or "")
    return int(found.group(2)) if found else DEFAULT_PORT


def lake_bucket(lake: str) -> str | None:
    """The bucket of an ``s3://bucket/path`` lake; None for a lake on a file system."""
    parsed = urlparse(lake)
    return parsed.netloc if parsed.scheme == "s3" else None


class ObjectStoreServer:
    """S3Proxy on 127.0.0.1 with a filesystem backend, a child JVM of this process.

    Data are kept across restarts. The lake's bucket (SCM_LAKE=s3://bucket/...), else
    ``scm``, exists once :meth:`start` returns.
    """

    def __init__(self, settings: Settings, *, heap: str = "256m") -> None:
        self.settings = settings
        self.folder = object_store_folder(settings)
        self.data = self.folder / "data"
        self.port = object_store_port(settings)
        store = settings.object_store
        self.access_key_id = store.access_key_id or DEFAULT_ACCESS_KEY_ID
        self.secret_access_key = store.secret_access_key or DEFAULT_SECRET_ACCESS_KEY
        self.region = store.region
        self.bucket = lake_bucket(settings.lake) or DEFAULT_BUCKET
        self.heap = heap
        self.process: subprocess.Popen[bytes] | None = None
        self._log_start = 0  # this run's part of the log, which keeps earlier runs'

    @property
    def endpoint(self) -> str:
        """What clients set as SCM_S3_ENDPOINT."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.folder / "s3proxy.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / "s3proxy.log"

    @property
    def config_file(self) -> Path:
        return self.folder / "s3proxy.conf"

    def start(self) -> Self:
        """Start S3Proxy; return once it answers a signed request and the bucket exists."""
        java = find_java()  # one line when Java is missing, before anything starts
        if not port_free(HOST, self.port) and (
            stop_leftover_object_store(self.folder) == 0 or not port_free(HOST, self.port)
        ):
            raise ScmError(
                f"port {self.port} for the object store is in use: stop what listens there, or"
                f" set SCM_S3_ENDPOINT=http://{HOST}:<free port>"
            )
        jar = resolve_s3proxy_jar(self.settings.jars_cache)
        (self.data / self.bucket).mkdir(parents=True, exist_ok=True)  # a bucket is a folder
        stop_leftover_object_store(self.folder)
        self._write_config()
        log = open(self.log_file, "ab")  # noqa: SIM115 - the child owns it
        self._log_start = log.tell()
        self.process = subprocess.Popen(
            [java, f"-Xmx{self.heap}", "-Djava.awt.headless=true",
             # No report of the logging set-up itself at every start.
             "-Dlogback.statusListenerClass=ch.qos.logback.core.status.NopStatusListener",
             "-jar", str(jar), "--properties", str(self.config_file)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        log.close()
        self.pid_file.write_text(f"{self.process.pid}\n")
        try:
            self._wait_until_ready()
        except BaseException:  # an error or Ctrl-C after the JVM started must not orphan it
            self.stop()
            raise
        return self

    def _write_config(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_file.touch(mode=0o600)  # it holds the secret key
        self.config_file.chmod(0o600)
        self.config_file.write_text(
            "\n".join(
                [
                    f"s3proxy.endpoint={self.endpoint}",
                    "s3proxy.authorization=aws-v2-or-v4",
                    f"s3proxy.identity={self.access_key_id}",
                    f"s3proxy.credential={self.secret_access_key}",
                    "jclouds.provider=filesystem-nio2",
                    f"jclouds.filesystem.basedir={self.data}",
                    "",
                ]
            )
        )

    def filesystem(self, secret_access_key: str | None = None) -> S3FileSystem:
        """A pyarrow S3 file system on this store (``secret_access_key`` overrides ours)."""
        from pyarrow import fs

        return fs.S3FileSystem(
            endpoint_override=f"{HOST}:{self.port}",
            scheme="http",
            access_key=self.access_key_id,
            secret_key=secret_access_key or self.secret_access_key,
            region=self.region,
            connect_timeout=1,
            request_timeout=2,
        )

    def answers(self) -> bool:
        """True when the store answers a signed request for the bucket with the bucket."""
        from pyarrow import fs

        try:
            info = self.filesystem().get_file_info(self.bucket)
        except OSError:
            return False
        return info.type == fs.FileType.Directory

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self.check_alive()
            if self.answers():
                return
            time.sleep(0.2)
        raise ScmError(
            f"the object store did not answer on {self.endpoint} in"
            f" {_READY_TIMEOUT_SECONDS:.0f} s: see {self.log_file}"
        )

    def check_alive(self) -> None:
        """Raise a one-line error, pointing at the log, when the JVM has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise ScmError(
                f"the object store exited with code {self.process.returncode}"
                f"{first_error_in_log(self.log_file, self._log_start)}: see {self.log_file}"
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = _STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM, SIGKILL after ``timeout``; wait until the JVM is gone."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def object_store_pid(folder: Path) -> int | None:
    """The pid of the S3Proxy whose pid file is in ``folder``, if it still runs."""
    try:
        pid = int((folder / "s3proxy.pid").read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    # Not a recycled pid: S3Proxy with this folder's configuration.
    return pid if b"s3proxy" in command and str(folder).encode() in command else None


def stop_leftover_object_store(folder: Path, timeout: float = _STOP_TIMEOUT_SECONDS) -> int:
    """Stop an S3Proxy a killed ``scm cluster up`` left behind; return how many (0 or 1).

    Normally none: it dies with its parent. This covers a parent that could not signal it.
    """
    pid = object_store_pid(folder)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while object_store_pid(folder) == pid and time.monotonic() < deadline:
            time.sleep(0.2)
        if object_store_pid(folder) == pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    (folder / "s3proxy.pid").unlink(missing_ok=True)
    return int(pid is not None)
