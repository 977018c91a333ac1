"""Where the messages go: a JSON-lines file (``--output``) or Kafka.

File format, one message per line::

    {"topic": "scm.orders", "key": "ORD-…", "value": "{\\"event_id\\": …}"}

``value`` is the message value as text. A value that is not valid UTF-8 (a malformed
message on purpose) cannot be text: its line has ``"value": null`` and ``"value_b64"``
with the exact bytes in base64, so the file round-trips losslessly and a reader that
ignores ``value_b64`` fails loudly instead of producing a different, valid message.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import IO

from simulator.events import Record


def record_line(record: Record) -> str:
    """One JSON line (without newline) for ``record``."""
    try:
        value: str | None = record.value.decode("utf-8")
        encoded = None
    except UnicodeDecodeError:
        value, encoded = None, base64.b64encode(record.value).decode("ascii")
    line: dict[str, str | None] = {"topic": record.topic, "key": record.key, "value": value}
    if encoded is not None:
        line["value_b64"] = encoded
    return json.dumps(line, ensure_ascii=False)


def parse_line(line: str) -> Record:
    """The record a line of the file describes (inverse of :func:`record_line`)."""
    fields = json.loads(line)
    if fields.get("value_b64") is not None:
        value = base64.b64decode(fields["value_b64"])
    else:
        value = fields["value"].encode("utf-8")
    return Record(fields["topic"], fields["key"], value)


@contextlib.contextmanager
def _open_for_writing(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8", newline="\n") as handle:
        yield handle
    os.replace(partial, path)  # readers never see half a file


def write_json_lines(records: Iterable[Record], path: str) -> int:
    """Write ``records`` to ``path`` ("-" is stdout); return how many were written."""
    count = 0
    try:
        with _open_for_writing(path) as handle:
            for record in records:
                handle.write(record_line(record))
                handle.write("\n")
                count += 1
    except BrokenPipeError:
        if path != "-":
            raise
        # The reader stopped early (``| head``): like any Unix filter, stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return count


def read_json_lines(path: str) -> list[Record]:
    """Read a file written by :func:`write_json_lines` (e.g. to produce it later)."""
    with open(path, encoding="utf-8") as handle:
        return [parse_line(line) for line in handle if line.strip()]
