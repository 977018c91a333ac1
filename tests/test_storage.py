"""The lake's plain files (scm/storage.py): a folder lake answers the same whether its
paths are spelled plainly or as ``file://`` URIs (Spark and Hadoop hand out the latter)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scm import storage


@pytest.mark.parametrize("spelling", ["plain", "uri"])
def test_a_folder_lake_reads_the_same_through_plain_paths_and_file_uris(
    tmp_path: Path, spelling: str
) -> None:
    table = tmp_path / "silver" / "orders"
    (table / "_delta_log").mkdir(parents=True)
    commit = table / "_delta_log" / f"{0:020d}.json"
    commit.write_bytes(b'{"commitInfo":{}}\n')

    def path(p: Path) -> str:
        return f"file://{p}" if spelling == "uri" else str(p)

    assert storage.exists(path(table)) and storage.is_dir(path(table))
    assert not storage.exists(path(tmp_path / "gold")) and not storage.is_dir(path(commit))
    assert storage.children(path(table)) == ["_delta_log"]
    assert storage.children(path(tmp_path / "gold")) == []
    assert storage.read_bytes(path(commit)) == b'{"commitInfo":{}}\n'
    assert storage.modified_at(path(commit)) == commit.stat().st_mtime
    assert storage.modified_at(path(tmp_path / "gone")) is None
    stat = commit.stat()
    assert storage.mtime_ns_and_size(path(commit)) == (stat.st_mtime_ns, stat.st_size)
    assert storage.mtime_ns_and_size(path(table)) is None
