"""The bronze query's offset and commit logs, read as plain files: no Spark needed.

Spark writes ``offsets/<id>`` when it plans micro-batch ``<id>`` (a version line, the
batch's metadata, then the Kafka source's end offsets as JSON) and ``commits/<id>`` once
the batch is done. Two questions are answered from them: how many records each topic has
in a planned batch (the sink sizes its work with it), and whether Kafka holds anything
the query has not read yet (a catch-up skips starting Spark when it does not).
"""

from __future__ import annotations

import json

from scm import storage
from scm.errors import ScmError
from scm.settings import Settings

# The streaming query that writes bronze; its checkpoint is ``SCM_LAKE/_checkpoints/<name>``.
BRONZE_QUERY = "scm_ingest_bronze"


def kafka_offsets(path: str) -> dict[str, dict[str, int]]:
    """The Kafka source's end offsets in one offset-log file, per topic and partition."""
    lines = storage.read_bytes(path).decode().splitlines()
    return json.loads(lines[2])  # type: ignore[no-any-return]


def planned_topic_sizes(checkpoint: str, batch_id: int) -> dict[str, int] | None:
    """Offsets per topic that Spark planned for micro-batch ``batch_id``: its end offsets in
    the checkpoint's offset log minus those of the batch before (where it started).

    At most the topic's record count (transaction markers and compacted records take offsets
    too) and 0 exactly when the topic has no record in the batch, which is what skipping a
    topic and sizing its tasks need, read from two small files instead of counted by a Spark
    job. None when the batch before is not in the log (the first batch of a query, which
    starts where only Kafka knows) or a partition has no start offset in it.
    """
    if batch_id < 1:
        return None
    offsets = f"{checkpoint.rstrip('/')}/offsets"
    try:
        end, start = (kafka_offsets(f"{offsets}/{n}") for n in (batch_id, batch_id - 1))
    except (FileNotFoundError, IndexError, ValueError):
        return None
    sizes: dict[str, int] = {}
    for topic, partitions in end.items():
        for partition, offset in partitions.items():
            begin = start.get(topic, {}).get(partition)
            if begin is None:
                return None
            sizes[topic] = sizes.get(topic, 0) + max(0, offset - begin)
    return sizes


def committed_offsets(checkpoint: str) -> dict[str, dict[str, int]] | None:
    """Where the query's newest batch ended in Kafka, once that batch is committed.

    None when the query never planned a batch, or when its newest batch is planned but not
    committed (the next start replays it, so there is work even if Kafka has nothing new).
    """
    root = checkpoint.rstrip("/")
    batches = [int(name) for name in storage.children(f"{root}/offsets") if name.isdigit()]
    if not batches:
        return None
    newest = max(batches)
    if not storage.exists(f"{root}/commits/{newest}"):
        return None
    try:
        return kafka_offsets(f"{root}/offsets/{newest}")
    except (FileNotFoundError, IndexError, ValueError):
        return None


def nothing_new(settings: Settings, checkpoint: str, topics: tuple[str, ...]) -> bool:
    """Whether the query, started now, would read nothing: its newest batch is committed and
    every partition of ``topics`` ends in Kafka exactly where that batch ended.

    The end is the high watermark, the furthest a reader can see, so a difference of any
    kind (new records, a new partition, a topic recreated) answers False, as does any doubt
    (no committed batch, Kafka not answering for every partition).
    """
    from scm.kafka import end_offsets

    committed = committed_offsets(checkpoint)
    if committed is None:
        return False
    try:
        ends = end_offsets(settings, topics)
    except ScmError:
        return False  # e.g. a partition without a leader for a moment: the query decides
    return all(
        ends.get(topic)
        and {str(partition): end for partition, end in ends[topic].items()} == committed.get(topic)
        for topic in topics
    )
