"""Pipeline health: is the data fresh, is ingest keeping up, what was rejected, what failed."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from dashboards import charts, connection, freshness, queries
from dashboards.pipeline_state import read_ingest_progress, read_run_failures

st.title("Pipeline health")
state = connection.settings().state
now = dt.datetime.now(dt.UTC)

st.subheader("Freshness")
commits = freshness.current_table_commits(connection.settings().lake)
if commits:
    table_freshness = pd.DataFrame(
        [
            {
                "table": commit.name,
                "delta_version": commit.version,
                "committed_at": commit.committed_at,
            }
            for commit in commits
        ]
    )
    latest_ingested = {
        name: connection.run(queries.latest_ingested_at(name))["latest_ingested_at"].iloc[0]
        for name in table_freshness["table"]
        if name.startswith("bronze.") and "_ingested_at" in connection.columns(name)
    }
    table_freshness["latest_ingested_at"] = table_freshness["table"].map(latest_ingested)
    table_freshness["minutes_since_commit"] = (
        (now - table_freshness["committed_at"]).dt.total_seconds() / 60
    ).round(1)
    st.dataframe(table_freshness, hide_index=True, width="stretch")
else:
    connection.require_tables("gold.fill_rate_daily", what="tables")

st.subheader("Ingest throughput and lag")
progress = read_ingest_progress(state / "ingest-progress.jsonl")
if progress.empty:
    st.info(
        f"No ingest progress yet (`{state / 'ingest-progress.jsonl'}`): it is written while "
        "`scm ingest` runs."
    )
else:
    latest = progress.iloc[-1]
    throughput, lag, duration, last_batch = st.columns(4)
    throughput.metric("Processed rows/s", f"{latest['processed_rows_per_second'] or 0:,.0f}")
    behind = latest["offsets_behind_latest"]
    lag.metric("Offsets behind latest", "—" if pd.isna(behind) else f"{behind:,.0f}")
    batch_ms = latest["batch_duration_ms"]
    duration.metric("Last batch", "—" if pd.isna(batch_ms) else f"{batch_ms / 1000:,.1f} s")
    last_batch.metric("Last batch at", f"{latest['timestamp']:%H:%M:%S} UTC")
    rates, behind_chart = st.columns(2)
    with rates:
        st.altair_chart(
            charts.trend(
                progress.fillna({"input_rows_per_second": 0, "processed_rows_per_second": 0}),
                x="timestamp",
                y=["input_rows_per_second", "processed_rows_per_second"],
                title="Rows per second",
                y_title="rows/s",
            ),
            width="stretch",
        )
    with behind_chart:
        lagging = progress.dropna(subset=["offsets_behind_latest"])
        if lagging.empty:
            st.caption("The progress records carry no offsets-behind-latest metric.")
        else:
            st.altair_chart(
                charts.trend(
                    lagging,
                    x="timestamp",
                    y="offsets_behind_latest",
                    title="Offsets behind latest",
                    y_title="offsets",
                ),
                width="stretch",
            )

st.subheader("Quarantine")
if connection.has_tables("bronze.quarantine"):
    quarantine = connection.run(queries.QUARANTINE_BY_ERROR)
    st.metric("Quarantined events", f"{int(quarantine['events'].sum()):,}")
    if not quarantine.empty:
        st.altair_chart(
            charts.bars(
                quarantine, category="error", value="events", title="Rejected events by reason"
            ),
            width="stretch",
        )
        st.dataframe(quarantine, hide_index=True, width="stretch")
else:
    st.info("No quarantine table yet: rejected events land in bronze.quarantine.")

st.subheader("Failed runs")
failures = read_run_failures(state / "run-failures.jsonl")
if failures.empty:
    st.success("No failed orchestration runs recorded.")
else:
    st.metric("Failed runs", f"{len(failures):,}")
    st.dataframe(failures, hide_index=True, width="stretch")
