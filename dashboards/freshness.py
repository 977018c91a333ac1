"""How old the data on screen is, as one line at the top of every page.

Two moments answer it: when events last landed in bronze (the newest commit that brought
rows to any bronze event table) and when the KPIs were last refreshed (the refresh record
``_checkpoints/refresh_state`` that ``scm refresh`` appends, or the newest gold commit:
Dagster's gold steps write gold without that record). Both come from the newest entries of
the Delta logs, never from table data, so every page can afford them on every rerun.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from scm.lake import EVENT_ENTITIES, Lake
from scm.lake_lock import lock_file
from scm.query import LAYERS
from scm.settings import Settings

EVENTS_STALE_AFTER = dt.timedelta(minutes=10)
"""How long a running ingest may go without landing events. It commits every micro-batch
that brings events (each ``SCM_INGEST_TRIGGER_SECONDS``, 1 s by default) and a live supply
chain sends several a second, so ten quiet minutes mean the stream or its producers
stopped, not a lull. Without a running ingest events land only with a refresh, so their
age is shown but not flagged."""

REFRESH_STALE_AFTER = dt.timedelta(hours=2)
"""How old the last refresh may be while newer events wait for it: the hourly refresh
schedule plus slack, the allowance of the bronze freshness checks in Dagster. A refresh
that found nothing new writes nothing, so an old refresh with no newer events is not
stale: the KPIs already include every event."""

RECHECK_SECONDS = 10  # the line re-measures on its own this often, without a page rerun
CACHE_SECONDS = 5  # page reruns (every widget change) within this reuse one measurement

# transforms/refresh.py STATE_TABLE: the dashboards read the lake, they import no transforms.
REFRESH_RECORD = "refresh_state"
INGEST_LOCK = "ingest"  # ingest/lock.py IngestLock.name
# Commits that bring rows; OPTIMIZE and VACUUM (nightly maintenance) do not make data fresh.
_DATA_OPERATIONS = frozenset({"WRITE", "STREAMING UPDATE", "MERGE"})
_HISTORY_DEPTH = 20  # maintenance adds a few commits a night: a data commit is among these


@dataclass(frozen=True)
class Freshness:
    """When events last landed and the KPIs were last refreshed, measured at ``now``."""

    now: dt.datetime
    events_landed_at: dt.datetime | None  # None: no bronze event table has rows yet
    refreshed_at: dt.datetime | None  # None: never refreshed
    is_ingest_running: bool

    @property
    def events_age(self) -> dt.timedelta | None:
        return None if self.events_landed_at is None else self.now - self.events_landed_at

    @property
    def refresh_age(self) -> dt.timedelta | None:
        return None if self.refreshed_at is None else self.now - self.refreshed_at

    @property
    def is_events_stale(self) -> bool:
        """An ingest runs but no events landed within :data:`EVENTS_STALE_AFTER`."""
        age = self.events_age
        return self.is_ingest_running and (age is None or age > EVENTS_STALE_AFTER)

    @property
    def is_refresh_stale(self) -> bool:
        """Events wait for a refresh that is older than :data:`REFRESH_STALE_AFTER`
        (or has never run)."""
        if self.events_landed_at is None:
            return False
        if self.refreshed_at is None:
            return True
        waiting = self.events_landed_at > self.refreshed_at
        return waiting and self.now - self.refreshed_at > REFRESH_STALE_AFTER

    @property
    def is_stale(self) -> bool:
        return self.is_events_stale or self.is_refresh_stale


def last_data_commit(path: str) -> dt.datetime | None:
    """When the Delta table at ``path`` last committed rows (None: no table, or none)."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(path):
        return None
    for commit in DeltaTable(path, without_files=True).history(_HISTORY_DEPTH):
        if commit.get("operation") in _DATA_OPERATIONS:
            return dt.datetime.fromtimestamp(int(commit["timestamp"]) / 1000, dt.UTC)
    return None


@dataclass(frozen=True)
class TableCommit:
    """A table's latest Delta version and when it was committed."""

    name: str  # qualified: ``bronze.orders``
    version: int
    committed_at: dt.datetime


def table_commits(lake: Lake) -> list[TableCommit]:
    """The latest commit of every table in the lake, from the newest log entry of each
    (no file lists, no query views: Pipeline health lists all the lake's tables cold)."""
    from deltalake import DeltaTable

    commits = []
    for layer in LAYERS:
        for name in lake.tables(layer):
            path = lake.table(layer, name)
            if not DeltaTable.is_deltatable(path):
                continue  # being created: a log folder without its first commit yet
            table = DeltaTable(path, without_files=True)
            newest = table.history(1)[0]
            moment = dt.datetime.fromtimestamp(int(newest["timestamp"]) / 1000, dt.UTC)
            commits.append(TableCommit(f"{layer}.{name}", table.version(), moment))
    return commits


def _newest(paths: list[str]) -> dt.datetime | None:
    moments = [moment for moment in map(last_data_commit, paths) if moment is not None]
    return max(moments, default=None)


def events_landed_at(lake: Lake) -> dt.datetime | None:
    """The newest data commit over the bronze event tables."""
    return _newest([lake.bronze(entity) for entity in EVENT_ENTITIES])


def refreshed_at(lake: Lake) -> dt.datetime | None:
    """The newest of the refresh record's commit and the gold tables' data commits."""
    gold = [lake.gold(name) for name in lake.tables("gold")]
    return _newest([lake.checkpoint(REFRESH_RECORD), *gold])


def is_ingest_running(lock: Path) -> bool:
    """Whether a live process holds the ingest lock.

    The lock file names its holder (``pid N, started ...``) and is emptied on release; a
    killed holder leaves its line behind, so the pid must also be alive. The file is only
    read: taking the lock, even for a moment, could refuse an ingest that is starting.
    """
    try:
        words = lock.read_text().replace(",", " ").split()
    except OSError:
        return False
    if len(words) < 2 or words[0] != "pid" or not words[1].isdigit():
        return False
    try:
        os.kill(int(words[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def measure(lake: Lake, *, is_ingest_running: bool, now: dt.datetime | None = None) -> Freshness:
    """The lake's freshness at ``now`` (default: the current time)."""
    return Freshness(
        now=now or dt.datetime.now(dt.UTC),
        events_landed_at=events_landed_at(lake),
        refreshed_at=refreshed_at(lake),
        is_ingest_running=is_ingest_running,
    )


def age_text(age: dt.timedelta) -> str:
    """A short, rounded-down age: ``12 s``, ``4 min``, ``3 h 5 min``, ``2 d 4 h``."""
    seconds = max(0, int(age.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 60:
        return f"{minutes} min"
    if hours < 24:
        rest = minutes % 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    rest = hours % 24
    return f"{days} d {rest} h" if rest else f"{days} d"


def summary(freshness: Freshness) -> str:
    """The line's Markdown: each age, stale parts in orange behind a warning badge."""
    events_age, refresh_age = freshness.events_age, freshness.refresh_age
    events = (
        f"Events landed {age_text(events_age)} ago"
        if events_age is not None
        else "No events landed yet"
    )
    if freshness.is_events_stale:
        events = f":orange[{events} while an ingest runs]"
    elif not freshness.is_ingest_running:
        events += " (no live ingest)"
    refresh = (
        "KPIs not refreshed yet"
        if refresh_age is None
        else f"KPIs refreshed {age_text(refresh_age)} ago"
    )
    if freshness.is_refresh_stale:
        refresh = f":orange[{refresh}, newer events wait]"
    badge = ":orange-badge[:material/warning: Stale]" if freshness.is_stale else ""
    return " ".join(part for part in (badge, f"{events} · {refresh}") if part)


_HELP = (
    f"Flagged when a running ingest landed no events for {age_text(EVENTS_STALE_AFTER)}, or "
    f"when events wait for a refresh older than {age_text(REFRESH_STALE_AFTER)}."
)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _moments(root: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    lake = Lake.at(root)
    return events_landed_at(lake), refreshed_at(lake)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def current_table_commits(root: str) -> list[TableCommit]:
    """:func:`table_commits` of the lake at ``root``, shared by reruns for a few seconds."""
    return table_commits(Lake.at(root))


def current(settings: Settings) -> Freshness:
    """The configured lake's freshness now (its log reads shared for a few seconds)."""
    landed, refreshed = _moments(settings.lake)
    return Freshness(
        now=dt.datetime.now(dt.UTC),
        events_landed_at=landed,
        refreshed_at=refreshed,
        is_ingest_running=is_ingest_running(lock_file(settings, INGEST_LOCK)),
    )


@st.fragment(run_every=RECHECK_SECONDS)
def render(settings: Settings) -> None:
    """The freshness line; it re-measures every few seconds on its own."""
    try:
        freshness = current(settings)
    except Exception as error:  # never let the line break the page under it
        st.caption(f"Freshness unknown: {str(error).splitlines()[0] if str(error) else error!r}")
        return
    st.caption(summary(freshness), help=_HELP)
