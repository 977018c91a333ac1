"""The bronze sink: one micro-batch of all ``scm.*`` topics → bronze tables + quarantine,
and, at the same time, the inventory position of the keys it touched
(:mod:`ingest.inventory_position`).

Exactly-once: Spark replays a micro-batch whose offsets were planned but whose commit was
not recorded in the checkpoint, and only such a batch: a batch id no newer than the newest
planned one when the run started (read from the checkpoint), or than one the same run
attempted already. Every append is marked with ``userMetadata`` =
``<app id>:<batch id>`` (the app id is stable per query: the query id, which lives in the
checkpoint), atomically with its data. A batch that may be a replay first reads the
latest marker of each table and skips the tables that already have it; it also writes with
Delta's ``txnAppId``/``txnVersion``, which covers tables written before the markers. The
check costs a few log reads, and only on those batches: Delta's own check, on every
append, costed three state-reconstruction jobs per table per batch.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pyspark import StorageLevel
from pyspark.sql import functions as F
from pyspark.util import inheritable_thread_target

from ingest.inventory_position import INVENTORY_TOPIC, InventoryPosition
from ingest.offset_log import BRONZE_QUERY, planned_topic_sizes
from ingest.validation import (
    INGESTED_AT_COLUMN,
    NO_SUSPECTS,
    Screening,
    Tally,
    Verdict,
    quarantine_rows,
)
from scm.contracts import TOPICS
from scm.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from ingest.progress import ProgressLog

# The writer of the rows the reference validator accepted (the screen's rows are written
# first, under the query's own app id): its own app id keeps both appends exactly-once.
REFERENCE_WRITER = "reference"
# Rows one validation task handles before a topic gets another task (up to the cores).
ROWS_PER_TASK = 50_000
# Commits read back for a replay check before falling back to the whole history.
_RECENT_COMMITS = 20

T = TypeVar("T")


def append_once(
    frame: DataFrame, path: str, app_id: str, batch_id: int, *, may_be_replay: bool
) -> bool:
    """Append ``frame`` unless this (app id, batch id) was already committed to ``path``;
    whether it ran."""
    writer = (
        frame.write.format("delta").mode("append").option("userMetadata", f"{app_id}:{batch_id}")
    )
    if may_be_replay:
        if last_batch_written(frame.sparkSession, path, app_id) >= batch_id:
            return False
        writer = writer.option("txnAppId", app_id).option("txnVersion", batch_id)
    writer.save(path)
    return True


def run_together(spark: SparkSession, tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Run a batch's independent writes at once and return their results in order.

    Each is a small Spark job plus a commit whose time is mostly the driver's (planning,
    log reads and writes), so they overlap even on two cores. Every task finishes before
    this returns; the first failure is then raised, and Spark replays the batch, whose
    writes are each idempotent. The threads carry the micro-batch's Spark properties.
    """
    if len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(len(tasks), thread_name_prefix="bronze-write") as pool:
        futures = [pool.submit(inheritable_thread_target(spark)(task)) for task in tasks]
        wait(futures)
    return [future.result() for future in futures]


def last_batch_written(spark: SparkSession, path: str, app_id: str) -> int:
    """The highest batch id ``app_id`` appended to ``path`` (-1 for none), from the markers.

    Batches are appended in order, so the newest marker is the highest. Only the latest
    commits are read, unless none of them is a marker of this app (maintenance commits
    in between); then the whole history is.
    """
    from delta.tables import DeltaTable

    prefix = f"{app_id}:"
    table = DeltaTable.forPath(spark, path)
    for recent in (_RECENT_COMMITS, None):
        history = table.history(recent) if recent else table.history()
        commits = history.select("userMetadata").collect()
        ours = [row[0] for row in commits if row[0] and row[0].startswith(prefix)]
        if ours:
            return max(int(marker.rsplit(":", 1)[1]) for marker in ours)
        if recent is not None and len(commits) < recent:
            break  # that was the whole history
    return -1


def last_planned_batch(spark: SparkSession, checkpoint: str) -> int:
    """The newest batch id in a streaming checkpoint's offset log (-1 when there is none).

    Spark plans a batch (writes ``offsets/<id>``) before running it and records
    ``commits/<id>`` after; a restarted query replays a planned batch without a commit.
    Read through Hadoop's file system API, so any lake URI works.
    """
    jvm: Any = spark._jvm
    offsets = jvm.org.apache.hadoop.fs.Path(f"{checkpoint.rstrip('/')}/offsets")
    fs = offsets.getFileSystem(spark._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    if not fs.exists(offsets):
        return -1
    names = [str(status.getPath().getName()) for status in fs.listStatus(offsets)]
    return max((int(name) for name in names if name.isdigit()), default=-1)


def _tasks_for(size: int, parallelism: int) -> int:
    """Tasks for a topic of ``size`` records."""
    return max(1, min(parallelism, math.ceil(size / ROWS_PER_TASK)))


class BronzeSink:
    """``foreachBatch`` target of the bronze query: splits by topic, validates, appends,
    then updates the inventory position (``position``) in the same micro-batch."""

    def __init__(
        self,
        lake: Lake,
        topics: Iterable[str],
        progress: ProgressLog | None = None,
        *,
        position: InventoryPosition | None = None,
        last_planned_batch: int | None = None,
        checkpoint: str | None = None,
    ) -> None:
        """``last_planned_batch``: the newest batch id in the checkpoint's offset log before
        the query started (-1: none); None when unknown, which makes the first batch a
        possible replay. ``checkpoint``: the query's checkpoint, whose offset log tells
        which topics a batch holds (None: every topic is checked)."""
        self.lake = lake
        self.checkpoint = checkpoint
        self.topics = tuple(topics)
        self.progress = progress
        self.position = position
        self._app_id: str | None = None
        self._app_id_ready = threading.Event()
        self._last_attempted = last_planned_batch  # a batch id up to this may be a replay

    def bind(self, query_id: str) -> None:
        """Set the writer app id once the query (and so its checkpointed id) is known."""
        self._app_id = f"{BRONZE_QUERY}-{query_id}"
        self._app_id_ready.set()

    @property
    def app_id(self) -> str:
        # The first batch can run before start() has returned the query to us.
        if not self._app_id_ready.wait(timeout=120):
            raise RuntimeError("the bronze sink was never bound to its streaming query")
        assert self._app_id is not None
        return self._app_id

    def commit_microbatch(self, batch: DataFrame, batch_id: int) -> None:
        """Write one micro-batch: valid rows per topic to bronze, rejects to quarantine.

        The raw batch is cached once so Kafka is read once. Each topic present is then
        screened and appended on its own thread: a topic's steps are mostly driver time
        (planning, commits), so topics overlap even on two cores, and each screen runs as
        its own job, on its own core when the batch is large.
        """
        spark = batch.sparkSession
        last = self._last_attempted
        may_be_replay = last is None or batch_id <= last
        self._last_attempted = batch_id if last is None else max(batch_id, last)
        stamped = batch.withColumn(INGESTED_AT_COLUMN, F.current_timestamp())
        raw = stamped.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            sizes = self._planned_sizes(batch_id) or _counted_sizes(raw)
            topics = [topic for topic in self.topics if sizes.get(topic, 0) > 0]
            append = functools.partial(append_once, batch_id=batch_id, may_be_replay=may_be_replay)
            steps: list[Callable[[], Any]] = [
                functools.partial(self._write_topic, raw, topic, sizes[topic], append)
                for topic in topics
            ]
            if self.position is not None and INVENTORY_TOPIC not in topics:
                steps.append(functools.partial(self.position.update, spark, None))
            results = run_together(spark, steps)
        finally:
            raw.unpersist()
        written = [result for result in results if isinstance(result, _Written)]
        position = next((r for r in results if not isinstance(r, _Written)), None)
        for topic in written:
            position = topic.position if topic.position is not None else position
        rejected = [row for topic in written for row in topic.verdict.rejected]
        if rejected:
            append(quarantine_rows(spark, rejected), self.lake.quarantine, self.app_id)
        if self.progress is not None:
            self.progress.add_counts(
                BRONZE_QUERY,
                batch_id,
                {
                    **(position or {}),
                    "valid_rows": sum(topic.valid for topic in written),
                    "quarantined_rows": len(rejected),
                    "rows_by_topic": {
                        topic.topic: {"valid": topic.valid, "quarantined": topic.quarantined}
                        for topic in written
                    },
                },
            )

    def _write_topic(
        self, raw: DataFrame, topic: str, size: int, append: Callable[..., bool]
    ) -> _Written:
        """Screen one topic and append the rows the screen proved valid (folding inventory
        into the position at the same time); then, only when the screen left rows, judge
        them and append the valid ones under the reference writer's app id."""
        path = self.lake.bronze(TOPICS[topic].entity)
        parallelism = raw.sparkSession.sparkContext.defaultParallelism
        # Give a topic only as many tasks as its rows need: a task costs more to ship than
        # a small topic to check.
        rows = raw.where(F.col("topic") == topic).coalesce(_tasks_for(size, parallelism))
        folds = topic == INVENTORY_TOPIC and self.position is not None
        with Screening.of(rows, topic) as screening:
            # The fold reads the same rows without the observation (it would count them twice).
            ran, position = self._append_and_fold(
                screening.bronze(), screening.bronze(observed=False) if folds else None, path,
                functools.partial(append, app_id=self.app_id),
            )  # fmt: skip
            tally = screening.tally(ran=ran)
            verdict = screening.judge() if tally.suspects else NO_SUSPECTS
            if verdict.accepted is not None:
                _, later = self._append_and_fold(
                    verdict.accepted, verdict.accepted if folds else None, path,
                    functools.partial(append, app_id=f"{self.app_id}-{REFERENCE_WRITER}"),
                )  # fmt: skip
                position = _added(position, later)
        return _Written(topic, tally, verdict, position)

    def _append_and_fold(
        self,
        bronze: DataFrame,
        fold: DataFrame | None,
        path: str,
        append: Callable[[DataFrame, str], bool],
    ) -> tuple[bool, dict[str, int] | None]:
        """Append ``bronze`` and fold ``fold`` (inventory rows; None: nothing to fold) into
        the position at the same time. Even when a replay skips the append the fold runs:
        it may not have happened before the crash, and folding the same events again
        changes nothing."""
        spark = bronze.sparkSession
        tasks: list[Callable[[], Any]] = [functools.partial(append, bronze, path)]
        if fold is not None and self.position is not None:
            tasks.append(functools.partial(self.position.update, spark, fold))
        done = run_together(spark, tasks)
        return bool(done[0]), done[1] if len(done) > 1 else None

    def _planned_sizes(self, batch_id: int) -> dict[str, int] | None:
        """Records per topic Spark planned for this batch, when its checkpoint says."""
        if self.checkpoint is None:
            return None
        return planned_topic_sizes(self.checkpoint, batch_id)


@dataclass(frozen=True)
class _Written:
    """What a batch did with one topic."""

    topic: str
    tally: Tally
    verdict: Verdict
    position: dict[str, int] | None  # the position's counts, for inventory

    @property
    def valid(self) -> int:
        return self.tally.rows - self.tally.suspects + self.verdict.accepted_rows

    @property
    def quarantined(self) -> int:
        return len(self.verdict.rejected)


def _counted_sizes(raw: DataFrame) -> dict[str, int]:
    """Rows per topic of a cached batch, by one job (when the offset log cannot say)."""
    return {row["topic"]: row["count"] for row in raw.groupBy("topic").count().collect()}


def _added(first: dict[str, int] | None, second: dict[str, int] | None) -> dict[str, int] | None:
    """Two folds' progress counts as one."""
    if first is None or second is None:
        return first or second
    return {key: first.get(key, 0) + second.get(key, 0) for key in {*first, *second}}
