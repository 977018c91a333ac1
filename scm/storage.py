"""The lake's plain files through one Arrow filesystem: a local folder or an S3 bucket.

Delta tables are read and written by delta-rs and Spark, which reach the store on their own.
This module serves the few needs around them that are about files: listing the tables of a
layer, a table's newest commit, the landing CSV files, and DuckDB's reads of the Parquet
files of an object-store snapshot. The S3 client is configured by the AWS SDK's variables,
which :func:`scm.settings.load_settings` exports from ``SCM_S3_*``, so Arrow, delta-rs and
DuckDB reach the same store with the same keys.
"""

from __future__ import annotations

import atexit
import functools
import gc
import os
from urllib.parse import urlparse

import pyarrow.fs as pafs
from fsspec.implementations.arrow import ArrowFSWrapper


def is_object_store(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    """A local path as the operating system names it (``file://`` dropped)."""
    return path.removeprefix("file://")


_CLIENT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def _s3() -> pafs.S3FileSystem:
    """The S3 client of the AWS SDK's variables now (keys unset: the SDK's own chain)."""
    return _s3_client(*(os.environ.get(name) for name in _CLIENT_VARIABLES))


@functools.cache
def _s3_client(
    endpoint: str | None, region: str | None, key: str | None, secret: str | None
) -> pafs.S3FileSystem:
    """One client per store and key pair (made once: each is a connection pool)."""
    options: dict[str, str] = {}
    if endpoint:
        parsed = urlparse(endpoint)
        options = {"endpoint_override": parsed.netloc, "scheme": parsed.scheme or "https"}
    if key and secret:
        options.update(access_key=key, secret_key=secret)
    return pafs.S3FileSystem(region=region or "us-east-1", **options)  # type: ignore[arg-type]


@atexit.register
def _release_s3_clients() -> None:
    """Drop the cached S3 clients before Arrow finalizes its S3 support at exit.

    pyarrow's own exit handler (registered when ``pyarrow.fs`` was imported, so it runs
    after this one) shuts the AWS SDK down; a client still referenced then is destroyed
    later, during interpreter teardown, which can abort the process ("terminate called
    without an active exception", exit code 134; apache/arrow#41087). Arrow's advice: delete
    the filesystems first.
    """
    if _s3_client.cache_info().currsize:
        _s3_client.cache_clear()
        gc.collect()


def filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding ``path`` and the path inside it (``bucket/key`` on S3)."""
    if not is_object_store(path):
        return pafs.LocalFileSystem(), _local(path)
    parsed = urlparse(path)
    if parsed.scheme not in ("s3", "s3a"):
        raise ValueError(f"{path}: only s3:// object stores are supported")
    return _s3(), f"{parsed.netloc}{parsed.path}".rstrip("/")


def _info(path: str) -> pafs.FileInfo:
    store, inner = filesystem(path)
    return store.get_file_info(inner)


# Local paths take the plain system calls: these run before every dashboard query.


def exists(path: str) -> bool:
    if not is_object_store(path):
        return os.path.exists(_local(path))
    return _info(path).type != pafs.FileType.NotFound


def is_dir(path: str) -> bool:
    if not is_object_store(path):
        return os.path.isdir(_local(path))
    return _info(path).type == pafs.FileType.Directory


def modified_at(path: str) -> float | None:
    """Seconds since the epoch of the file's last write, None when it does not exist."""
    if not is_object_store(path):
        local = _local(path)
        return os.stat(local).st_mtime if os.path.exists(local) else None
    found = _info(path)
    if found.type == pafs.FileType.NotFound or found.mtime is None:
        return None
    return found.mtime.timestamp()


def mtime_ns_and_size(path: str) -> tuple[int, int] | None:
    """A file's identity for a cheap has-it-changed check; None when it is not a file."""
    if not is_object_store(path):
        local = _local(path)
        if not os.path.isfile(local):
            return None
        stat = os.stat(local)
        return stat.st_mtime_ns, stat.st_size
    found = _info(path)
    if found.type != pafs.FileType.File:
        return None
    return int(found.mtime_ns or 0), int(found.size or 0)


def children(path: str) -> list[str]:
    """Base names of what is directly under ``path`` (none when it does not exist)."""
    if not is_object_store(path):
        local = _local(path)
        return os.listdir(local) if os.path.isdir(local) else []
    store, inner = filesystem(path)
    selector = pafs.FileSelector(inner, allow_not_found=True, recursive=False)
    return [entry.base_name for entry in store.get_file_info(selector)]


def read_bytes(path: str) -> bytes:
    store, inner = filesystem(path)
    with store.open_input_stream(inner) as stream:
        return bytes(stream.read())


class DuckDBObjectStore(ArrowFSWrapper):
    """The lake's S3 store as a filesystem DuckDB reads ``s3://`` paths through.

    DuckDB's own S3 support is an extension that is downloaded at run time; this serves the
    same paths through Arrow's S3 client, in the process, and DuckDB's access rules
    (``allowed_directories``) still apply to them.
    """

    protocol = "s3"

    def __init__(self) -> None:
        super().__init__(_s3())
