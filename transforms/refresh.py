"""``scm refresh``: one catch-up of everything, rebuilding only what new data touches.

Steps: load changed landing files into bronze and the silver dimensions; ``ingest --once``;
stream new bronze rows into silver (deduplicated, stamped with this
refresh's id); work out which gold partitions the new silver rows (and a moved as-of date or
changed product costs) touch; replace exactly those partitions; record the refresh.

The record (``_checkpoints/refresh_state``, one row per refresh that changed something; the
latest commit's metadata is read back without Spark) holds the last finished refresh id, its
as-of date and the products snapshot it used. Silver rows stamped with a higher id
are "new" for gold, so a refresh that dies between silver and gold is completed by the next
one, and a refresh with no new data writes nothing at all (no new Delta versions).

One refresh at a time per lake: :class:`RefreshLock` (``_checkpoints/refresh.lock``) is held
for the whole refresh, and the Dagster silver and gold steps take it too, so a CLI refresh and
a Dagster run never interleave their silver and gold commits. The CLI refuses at once with
the holder's pid; a Dagster step waits for the holder to finish.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from scm.errors import ScmError
from scm.lake import Lake
from scm.lake_lock import RefreshLock
from scm.settings import Settings
from transforms.engine import Engine
from transforms.gold import GOLD_TABLES, NO_EVENTS_YET, Changes, as_of_date
from transforms.lake_io import delta_version, last_commit_metadata
from transforms.master_data import MasterLoad, load_master_data
from transforms.model import GoldTable, Partitions
from transforms.open_engine import open_engine
from transforms.planning import reorder_alerts
from transforms.planning.reorder_alerts import Settlement
from transforms.silver import SILVER_TABLES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

STATE_TABLE = "refresh_state"
_STATE_KEY = "scm.refresh"


@dataclass(frozen=True)
class RefreshState:
    """The last finished refresh, as recorded."""

    refresh_id: int
    as_of: dt.date | None
    products_version: int | None
    silver_versions: dict[str, int | None]
    bronze_versions: dict[str, int | None]


@dataclass(frozen=True)
class GoldRefresh:
    """What a refresh did to one gold table."""

    table: str
    rows: int
    partitions: int | None  # None: the whole table was rebuilt
    seconds: float

    def line(self) -> str:
        scope = (
            "all partitions"
            if self.partitions is None
            else f"{self.partitions} partition{'s' if self.partitions != 1 else ''}"
        )
        rows = f"{self.rows} row{'s' if self.rows != 1 else ''}"
        return f"gold.{self.table}: {rows} in {scope} ({self.seconds:.1f} s)"


@dataclass
class RefreshSummary:
    """The outcome of one refresh, for the CLI, Dagster metadata and tests."""

    refresh_id: int
    full: bool
    first: bool = False  # no refresh recorded before: every gold table is built
    as_of: dt.date | None = None
    master_data: list[MasterLoad] = field(default_factory=list)
    ingest: str = "not run"
    silver_rows: dict[str, int] = field(default_factory=dict)
    gold: list[GoldRefresh] = field(default_factory=list)
    alerts: Settlement = field(default_factory=Settlement)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.gold)

    def landing_line(self) -> str:
        loaded = [f"{m.entity} {m.rows} rows" for m in self.master_data if m.outcome == "loaded"]
        return f"landing: {', '.join(loaded) if loaded else 'no changed files'}"

    def ingest_line(self) -> str:
        return f"ingest: {self.ingest}"

    def silver_line(self) -> str:
        new_rows = [f"{name} +{rows}" for name, rows in self.silver_rows.items() if rows]
        return f"silver: {', '.join(new_rows) if new_rows else 'no new rows'}"

    def headline(self) -> str:
        mode = "full rebuild" if self.full else "first build" if self.first else "incremental"
        as_of = self.as_of.isoformat() if self.as_of else "no events yet"
        return f"refresh {self.refresh_id} ({mode}) in {self.seconds:.1f} s, as-of {as_of}"


def read_state(lake: Lake) -> RefreshState | None:
    """The last finished refresh, or None before the first one (read from the Delta log)."""
    raw = last_commit_metadata(lake.checkpoint(STATE_TABLE)).get(_STATE_KEY)
    if not raw:
        return None
    data = json.loads(raw)
    as_of = dt.date.fromisoformat(data["as_of_date"]) if data["as_of_date"] else None
    return RefreshState(
        int(data["refresh_id"]),
        as_of,
        data["products_version"],
        data.get("silver_versions", {}),
        data.get("bronze_versions", {}),
    )


def next_refresh_id(lake: Lake, *baselines: Baseline | None) -> int:
    """The id to stamp new silver rows with: above the last recorded refresh and every
    other baseline (a Dagster silver update), so an old stamp never looks new and ids keep
    rising across full rebuilds. ``scm refresh`` and the Dagster silver step both ask here.
    """
    ids = [state.refresh_id for state in (read_state(lake), *baselines) if state is not None]
    return max(ids, default=0) + 1


def silver_versions(lake: Lake) -> dict[str, int | None]:
    return {name: delta_version(lake.silver(name)) for name in SILVER_TABLES}


def _record_state(
    lake: Lake,
    summary: RefreshSummary,
    products_version: int | None,
    bronze_versions: dict[str, int | None],
) -> None:
    """Append the refresh to its log; the commit's metadata is what the next refresh reads."""
    import pyarrow as pa
    from deltalake import CommitProperties, write_deltalake

    state = {
        "refresh_id": summary.refresh_id,
        "as_of_date": summary.as_of.isoformat() if summary.as_of else None,
        "products_version": products_version,
        "silver_versions": silver_versions(lake),
        "bronze_versions": bronze_versions,
    }
    row = pa.table(
        {
            "refresh_id": pa.array([summary.refresh_id], pa.int64()),
            "finished_at": pa.array([dt.datetime.now(dt.UTC)], pa.timestamp("us", tz="UTC")),
            "is_full": pa.array([summary.full]),
            "as_of_date": pa.array([summary.as_of], pa.date32()),
            "products_version": pa.array([products_version], pa.int64()),
            "seconds": pa.array([summary.seconds], pa.float64()),
        }
    )
    write_deltalake(
        lake.checkpoint(STATE_TABLE),
        row,
        mode="append",
        commit_properties=CommitProperties(custom_metadata={_STATE_KEY: json.dumps(state)}),
    )


class Baseline(Protocol):
    """What a change set is measured against: the last finished refresh or silver update."""

    @property
    def refresh_id(self) -> int: ...
    @property
    def as_of(self) -> dt.date | None: ...
    @property
    def products_version(self) -> int | None: ...
    @property
    def silver_versions(self) -> Mapping[str, int | None]: ...


@dataclass(frozen=True)
class GoldChanges:
    """Which gold partitions new silver rows touch, per table.

    ``partitions[name]`` is None to rebuild the whole table (first run, full rebuild, a
    missing table) and empty when the table is untouched. ``nothing_new``: no silver row
    and no product cost changed since the baseline, so there is nothing to write or record.
    """

    as_of: dt.date | None
    products_version: int | None
    partitions: dict[str, Partitions]
    nothing_new: bool = False


def gold_changes(engine: Engine, since: Baseline | None) -> GoldChanges:
    """The gold partitions that silver rows stamped after ``since`` touch (all when None).

    Nothing is touched when silver did not move (read from the Delta logs, no Spark job)
    and product costs did not change; otherwise each table's own ``touched`` rule
    decides (a shipment reaches its order's day, a moved as-of date the orders now due).
    ``scm refresh`` and the Dagster silver asset both decide with this function.
    """
    lake = engine.lake
    products_version = delta_version(lake.bronze("products"))
    if since is None:
        every: dict[str, Partitions] = dict.fromkeys(GOLD_TABLES)
        return GoldChanges(as_of_date(engine), products_version, every)
    products_changed = products_version != since.products_version
    # Unchanged silver versions (read from the logs, no Spark job) mean no new rows.
    moved = silver_versions(lake) != dict(since.silver_versions)
    newest = as_of_date(engine, only_refresh_after=since.refresh_id) if moved else None
    as_of = max((d for d in (since.as_of, newest) if d is not None), default=None)
    partitions: dict[str, Partitions] = {name: [] for name in GOLD_TABLES}
    if newest is None and not products_changed:
        return GoldChanges(since.as_of, products_version, partitions, nothing_new=True)
    changes = Changes(
        engine,
        since_refresh_id=since.refresh_id,
        as_of_before=since.as_of,
        as_of=as_of or NO_EVENTS_YET,
        products_changed=products_changed,
    )

    def touched(table: GoldTable) -> Partitions:
        # A missing table, or one written before its definition gained or lost a column,
        # is built whole; the others get the partitions their rules say.
        current = engine.gold_columns(table.name) == list(table.column_names)
        return changes.touched(table) if current else None

    # Each rule is a query or two: asked side by side where the engine overlaps its jobs.
    with ThreadPoolExecutor(engine.concurrent_writes, thread_name_prefix="changes") as pool:
        partitions.update(zip(GOLD_TABLES, pool.map(touched, GOLD_TABLES.values()), strict=True))
    return GoldChanges(as_of, products_version, partitions)


def catch_up_ingest(spark: Callable[[], SparkSession], settings: Settings) -> str:
    """``ingest --once``, on the session ``spark`` gives (asked only when there is work).

    Skipped, without starting Spark, when a running ingest keeps bronze current or when
    Kafka holds nothing the last run did not read (its checkpoint says where it ended) and
    the position's ledger exists (a lake from before it gets it at the next start).
    """
    from ingest.inventory_position import LEDGER_TABLE, has_ledger
    from ingest.lock import IngestAlreadyRunning, IngestLock
    from ingest.offset_log import BRONZE_QUERY, nothing_new
    from scm.contracts import ALERTS_TOPIC, TOPICS
    from scm.kafka import ensure_topics

    ensure_topics(settings, (*TOPICS, ALERTS_TOPIC))  # fails in one line without Kafka
    try:
        lock = IngestLock.for_settings(settings).acquire()
    except IngestAlreadyRunning:
        return "skipped: a running ingest keeps bronze current"
    try:
        lake = Lake.at(settings.lake)
        if has_ledger(lake.checkpoint(LEDGER_TABLE)) and nothing_new(
            settings, lake.checkpoint(BRONZE_QUERY), tuple(TOPICS)
        ):
            return "skipped: nothing new in Kafka"
        from ingest import start_ingest

        with start_ingest(spark(), settings, once=True, lock=lock) as run:
            run.await_completion()
    finally:
        lock.release()
    return "caught up"


def refresh(
    spark: SparkSession | None, settings: Settings, *, full: bool = False, ingest: bool = True
) -> RefreshSummary:
    """Catch everything up and rebuild the gold partitions that new data touches.

    ``full`` rebuilds silver from all of bronze and every gold table from scratch
    (backfills, logic changes). ``ingest=False`` skips the Kafka catch-up (bronze is
    current already, e.g. a continuous ingest is running or the caller ran it). ``spark``
    serves the ingest and the Spark engine (started when needed and None). Raises
    :class:`RefreshAlreadyRunning` when another refresh holds the lake.
    """
    with RefreshLock.for_settings(settings, holder="scm refresh"):
        return _refresh(_Sessions(settings, spark), settings, full=full, ingest=ingest)


def _quiet(line: str) -> None:
    """The default progress listener: a library caller reads the summary instead."""


class _Sessions:
    """Spark, started only when a step needs it (the ingest, the Spark engine)."""

    def __init__(
        self,
        settings: Settings,
        spark: SparkSession | None = None,
        on_start: Callable[[SparkSession], None] | None = None,
        progress: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.settings, self._spark, self._on_start, self._progress = (
            settings,
            spark,
            on_start,
            progress,
        )

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            from scm.spark import spark_session

            self._progress("starting Spark")
            self._spark = spark_session(self.settings, app_name="scm-refresh")
            if self._on_start is not None:
                self._on_start(self._spark)
        return self._spark

    def engine(self) -> Engine:
        if self.settings.engine == "spark":
            return open_engine(self.settings, spark=self.spark)
        return open_engine(self.settings)


def _refresh(
    sessions: _Sessions,
    settings: Settings,
    *,
    full: bool,
    ingest: bool,
    progress: Callable[[str], None] = _quiet,
) -> RefreshSummary:
    """The refresh itself; ``progress`` hears one line per finished step, as it finishes."""
    started = time.monotonic()
    lake = Lake.at(settings.lake)
    previous = read_state(lake)
    summary = RefreshSummary(
        refresh_id=next_refresh_id(lake, previous), full=full, first=previous is None
    )
    summary.master_data = load_master_data(lake)
    progress(summary.landing_line())
    if ingest:
        summary.ingest = catch_up_ingest(lambda: sessions.spark, settings)
        progress(summary.ingest_line())
    # A plan written by a refresh that died before its alerts: open them before it changes.
    reorder_alerts.sync(lake)
    engine = sessions.engine()
    try:
        _update(engine, summary, previous, full=full, progress=progress, started=started)
    finally:
        engine.close()
    summary.alerts = reorder_alerts.settle(settings, lake)  # also when nothing was new
    if summary.alerts != Settlement():
        progress(summary.alerts.line())
    summary.seconds = time.monotonic() - started
    return summary


def _update(
    engine: Engine,
    summary: RefreshSummary,
    previous: RefreshState | None,
    *,
    full: bool,
    progress: Callable[[str], None],
    started: float,
) -> None:
    """Silver, then the gold partitions it touches, then the record."""
    lake = engine.lake
    update = engine.update_silver(
        refresh_id=summary.refresh_id,
        full=full,
        read_versions=previous.bronze_versions if previous else None,
    )
    summary.silver_rows = update.inserted
    progress(summary.silver_line())

    changes = gold_changes(engine, None if full else previous)
    summary.as_of = changes.as_of
    if changes.nothing_new:
        progress("gold: up to date, nothing rewritten")
        return  # nothing new: write nothing, not even the record
    todo = [
        table
        for table in GOLD_TABLES.values()
        if changes.partitions[table.name] is None or changes.partitions[table.name]
    ]
    progress(f"gold: rebuilding {len(todo)} of {len(GOLD_TABLES)} tables, as-of {changes.as_of}")
    as_of = summary.as_of or NO_EVENTS_YET

    def write(table: GoldTable) -> GoldRefresh:
        table_started = time.monotonic()
        partitions = changes.partitions[table.name]
        rows = engine.write_gold(table, partitions, as_of)
        scope = None if partitions is None else len(partitions)
        return GoldRefresh(table.name, rows, scope, time.monotonic() - table_started)

    # Gold tables read only silver: independent, so an engine that overlaps jobs writes
    # several at once (each table is still one commit, printed as it finishes).
    with ThreadPoolExecutor(engine.concurrent_writes, thread_name_prefix="gold") as pool:
        written = [pool.submit(write, table) for table in todo]
        try:
            for done in as_completed(written):
                summary.gold.append(done.result())
                progress(summary.gold[-1].line())
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    summary.seconds = time.monotonic() - started
    _record_state(lake, summary, changes.products_version, update.bronze_versions)


def run_refresh(settings: Settings, *, full: bool = False) -> int:
    """``scm refresh``: print a short summary; exit code 0 on success."""
    from scm.spark import engine_pid

    # The lock first: a refused refresh says so at once, without starting Spark.
    started = time.monotonic()

    def show(line: str) -> None:  # live progress: a first refresh can take minutes
        print(f"[{time.monotonic() - started:6.1f} s] {line}", flush=True)

    with RefreshLock.for_settings(settings, holder="scm refresh") as lock:
        sessions = _Sessions(
            settings, on_start=lambda spark: lock.note_engine_pid(engine_pid(spark)), progress=show
        )
        summary = _run(sessions, settings, full=full, progress=show)
    print(summary.headline(), flush=True)
    return 0


def _run(
    sessions: _Sessions, settings: Settings, *, full: bool, progress: Callable[[str], None]
) -> RefreshSummary:
    try:
        return _refresh(sessions, settings, full=full, ingest=True, progress=progress)
    except ScmError:
        raise
    except Exception as error:  # Spark's errors are multi-line JVM traces: keep the first line
        text = str(error).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        raise ScmError(f"refresh failed: {reason[:300]}") from error
