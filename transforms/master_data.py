"""Master data: ``landing/*.csv`` → ``bronze|silver/products|locations|suppliers|customers``.

Each file is a full snapshot of its entity (contracts.md), validated against
:data:`scm.contracts.MASTER_FILES` before anything is written: a file with a missing column,
a value of the wrong type or a duplicate key is rejected with the file, row and column in the
message, and the entity's previous snapshot stays. A file is only reloaded when it changed:
its fingerprint (modification time, size, SHA-256) is stored in the metadata of the Delta
commit that loaded it, so the record and the data can never disagree.

The same typed snapshot is the silver dimension (``silver/<entity>``): it is written first and
bronze last, so the bronze commit (with the fingerprint) marks a completed load, and a load
interrupted in between is simply made again.

Written with pyarrow and delta-rs: a few-KB file needs no Spark, so Dagster can load master
data without starting a JVM.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from scm import storage
from scm.contracts import (
    MASTER_FILES,
    MONEY_PRECISION,
    MONEY_SCALE,
    Field,
    MasterFile,
    master_arrow_schema,
)
from scm.errors import ScmError
from scm.lake import Lake
from transforms.lake_io import delta_version, last_commit_metadata

LoadOutcome = Literal["loaded", "unchanged", "missing"]

_FINGERPRINT_KEY = "scm.landing"
_WHOLE_NUMBER = r"^[+-]?[0-9]{1,10}$"
# A non-negative number below 10^14 with at most 4 decimals (trailing zeros do not count).
_MONEY = rf"^[0-9]{{1,{MONEY_PRECISION - MONEY_SCALE}}}(\.[0-9]{{0,{MONEY_SCALE}}}0*)?$"
_INT32 = (-(2**31), 2**31 - 1)
_COMPARISONS = {
    ">=": pc.greater_equal,
    ">": pc.greater,
    "!=": pc.not_equal,
    "==": pc.equal,
}


@dataclass(frozen=True)
class MasterLoad:
    """What happened to one master file in a load."""

    entity: str
    outcome: LoadOutcome
    rows: int | None = None
    version: int | None = None  # the bronze table's Delta version after the load


@dataclass(frozen=True)
class Fingerprint:
    """A landing file's identity: mtime and size are the cheap check, the hash the real one."""

    mtime_ns: int
    size: int
    sha256: str

    def to_json(self) -> str:
        return json.dumps(
            {"mtime_ns": self.mtime_ns, "size": self.size, "sha256": self.sha256}, sort_keys=True
        )


def load_master_data(lake: Lake, *, force: bool = False) -> list[MasterLoad]:
    """Load every changed landing file into bronze; skip unchanged and absent ones.

    Every file is validated before any is written, so one bad file rejects the load and
    leaves every snapshot as it was (raises :class:`ScmError` naming file, row and column).
    """
    pending: list[tuple[MasterFile, pa.Table, Fingerprint]] = []
    loads: dict[str, MasterLoad] = {}
    for master in MASTER_FILES.values():
        path = f"{lake.landing}/{master.file_name}"
        identity = storage.mtime_ns_and_size(path)
        if identity is None:
            loads[master.entity] = MasterLoad(master.entity, "missing")
            continue
        recorded = _recorded_fingerprint(lake.bronze(master.entity))
        if not force and recorded is not None and (recorded.mtime_ns, recorded.size) == identity:
            loads[master.entity] = MasterLoad(master.entity, "unchanged")
            continue
        content = storage.read_bytes(path)
        fingerprint = Fingerprint(*identity, hashlib.sha256(content).hexdigest())
        if not force and recorded is not None and recorded.sha256 == fingerprint.sha256:
            loads[master.entity] = MasterLoad(master.entity, "unchanged")
            continue
        pending.append((master, parse_master_file(master, content), fingerprint))
    for master, table, fingerprint in pending:
        _write_snapshot(lake.silver(master.entity), table, None)
        version = _write_snapshot(lake.bronze(master.entity), table, fingerprint)
        loads[master.entity] = MasterLoad(master.entity, "loaded", table.num_rows, version)
    return [loads[entity] for entity in MASTER_FILES]


def parse_master_file(master: MasterFile, content: bytes) -> pa.Table:
    """The typed snapshot in a master CSV file, or :class:`ScmError` for the first problem."""
    name = master.file_name
    ragged: list[csv.InvalidRow] = []

    def _note_ragged(row: csv.InvalidRow) -> str:
        ragged.append(row)
        return "skip"

    try:
        raw = csv.read_csv(
            pa.BufferReader(content),
            # One thread: a few-KB file, and only a serial read knows each row's line number.
            read_options=csv.ReadOptions(use_threads=False),
            parse_options=csv.ParseOptions(invalid_row_handler=_note_ragged),
            convert_options=csv.ConvertOptions(
                column_types={field.name: pa.string() for field in master.columns},
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        raise ScmError(f"{name}: not a readable CSV file: {str(error).splitlines()[0]}") from None
    if ragged:
        row = ragged[0]
        where = f"line {row.number}" if row.number else "a row"
        raise ScmError(
            f"{name} {where}: {row.actual_columns} fields where the header has "
            f"{row.expected_columns}: {row.text[:120]!r}"
        )
    missing = [field.name for field in master.columns if field.name not in raw.column_names]
    if missing:
        raise ScmError(
            f"{name}: missing column(s) {', '.join(missing)} "
            f"(expected: {', '.join(field.name for field in master.columns)})"
        )
    columns = [_typed_column(name, field, raw.column(field.name)) for field in master.columns]
    table = pa.table(columns, schema=master_arrow_schema(master.entity))
    _check_unique_key(name, master.key, table.column(master.key))
    return table


def _row_label(index: int) -> str:
    # Row numbers count data rows from 1; line numbers count the header as line 1.
    return f"row {index + 1} (line {index + 2})"


def _first_false(mask: pa.ChunkedArray) -> int | None:
    failing = pc.indices_nonzero(pc.invert(pc.fill_null(mask, False)))
    return int(failing[0].as_py()) if len(failing) else None


def _reject(file_name: str, field: Field, values: pa.ChunkedArray, index: int) -> ScmError:
    got = values[index].as_py()
    return ScmError(
        f"{file_name} {_row_label(index)}, column {field.name}: "
        f"must be {field.expectation}, got {got!r}"
    )


def _typed_column(file_name: str, field: Field, text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Check every value of one column against its contract field and cast it."""
    values = pc.utf8_trim_whitespace(text)
    if field.kind in ("string", "enum", "currency"):
        valid = pc.not_equal(pc.utf8_length(values), 0)
        if field.kind == "enum":
            valid = pc.and_(valid, pc.is_in(values, value_set=pa.array(field.values)))
        if field.kind == "currency":
            valid = pc.and_(valid, pc.match_substring_regex(values, r"^[A-Z]{3}$"))
        _raise_on_invalid(file_name, field, text, valid)
        return values
    if field.kind == "money":
        _raise_on_invalid(file_name, field, text, pc.match_substring_regex(values, _MONEY))
        return pc.cast(values, pa.decimal128(MONEY_PRECISION, MONEY_SCALE))
    if field.kind == "int":
        _raise_on_invalid(file_name, field, text, pc.match_substring_regex(values, _WHOLE_NUMBER))
        wide = pc.cast(values, pa.int64())
        valid = pc.and_(pc.greater_equal(wide, _INT32[0]), pc.less_equal(wide, _INT32[1]))
        if field.rule is not None:
            op, bound = field.rule
            valid = pc.and_(valid, _COMPARISONS[op](wide, bound))
        _raise_on_invalid(file_name, field, text, valid)
        return pc.cast(wide, pa.int32())
    raise ValueError(f"master column {field.name!r}: kind {field.kind!r} is not supported in CSV")


def _raise_on_invalid(
    file_name: str, field: Field, text: pa.ChunkedArray, valid: pa.ChunkedArray
) -> None:
    index = _first_false(valid)
    if index is not None:
        raise _reject(file_name, field, text, index)


def _check_unique_key(file_name: str, key: str, values: pa.ChunkedArray) -> None:
    counts = pa.table({key: values}).group_by(key).aggregate([([], "count_all")])
    duplicated = counts.filter(pc.greater(counts.column("count_all"), 1)).column(key)
    if len(duplicated) == 0:
        return
    first = duplicated[0]
    rows = pc.indices_nonzero(pc.equal(values, first)).to_pylist()[:2]
    raise ScmError(
        f"{file_name} {_row_label(rows[1])}, column {key}: duplicate key {first.as_py()!r} "
        f"(first seen in {_row_label(rows[0])})"
    )


def _recorded_fingerprint(table_path: str) -> Fingerprint | None:
    """The fingerprint stored by the commit that produced the current snapshot, if any."""
    raw = last_commit_metadata(table_path).get(_FINGERPRINT_KEY)
    if not raw:
        return None
    data = json.loads(raw)
    return Fingerprint(int(data["mtime_ns"]), int(data["size"]), str(data["sha256"]))


def _write_snapshot(table_path: str, table: pa.Table, fingerprint: Fingerprint | None) -> int:
    from deltalake import CommitProperties, write_deltalake

    metadata = {} if fingerprint is None else {_FINGERPRINT_KEY: fingerprint.to_json()}
    write_deltalake(
        table_path,
        table,
        mode="overwrite",
        schema_mode="overwrite",
        commit_properties=CommitProperties(custom_metadata=metadata),
    )
    version = delta_version(table_path)
    assert version is not None  # just written
    return version
