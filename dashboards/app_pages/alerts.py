"""Alerts: every stockout and reorder alert in one inbox, with a jump to the pair's plan."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from dashboards import alert_queries, connection, filters
from dashboards.alert_queries import ALERT_SOURCES, SOURCE_COLUMNS, STATUSES
from dashboards.freshness import age_text

PAGE = "alerts"
PLANNING_PAGE = "app_pages/planning.py"
OUTBOXES = ("silver.inventory_position", "gold.reorder_alerts")

st.title("Alerts")
if not any(connection.has_tables(name) for name in OUTBOXES):
    connection.require_tables(*OUTBOXES, what="alert tables")
    st.stop()
sources = [source for source in ALERT_SOURCES if connection.has_columns(SOURCE_COLUMNS[source])]
if not sources:
    st.info("No alert tables with alert columns in the lake yet.")
    st.stop()

totals = connection.run(alert_queries.counts(sources)).iloc[0]
stockouts, reorders, unpublished = st.columns(3)
stockouts.metric("Open stockouts", f"{int(totals['open_stockouts']):,}")
reorders.metric("Open reorder alerts", f"{int(totals['open_reorder_alerts']):,}")
unpublished.metric(
    "Unpublished",
    f"{int(totals['unpublished']):,}",
    help="Alerts not yet acknowledged by Kafka (scm.alerts): they are sent with the next "
    "ingest batch (stockouts) or the next refresh (reorder alerts).",
)

kind, state, where = st.columns([1, 1, 2])
with kind:
    alert_types = filters.choose(PAGE, "types", "Type", list(ALERT_SOURCES))
with state:
    statuses = filters.choose(PAGE, "statuses", "Status", list(STATUSES))
with where:
    location_ids = filters.choose(
        PAGE,
        "locations",
        "Location",
        connection.run(alert_queries.locations(sources))["value"].tolist(),
    )
alerts = connection.run(
    alert_queries.inbox(sources),
    {"alert_types": alert_types, "statuses": statuses, "locations": location_ids},
)
now = pd.Timestamp(dt.datetime.now(dt.UTC))
alerts.insert(
    3,
    "age",
    [
        age_text((now - opened).to_pytimedelta())
        if status == "open" and not pd.isna(opened)
        else None
        for status, opened in zip(alerts["status"], alerts["opened_at"], strict=True)
    ],
)

picked = st.dataframe(
    alerts,
    hide_index=True,
    width="stretch",
    key=f"{PAGE}.inbox",
    on_select="rerun",
    selection_mode="single-row",
    column_config={
        "alert_type": "type",
        "location_id": "location",
        "opened_at": st.column_config.DatetimeColumn("opened at (UTC)", format="YYYY-MM-DD HH:mm"),
        "age": st.column_config.TextColumn("age", help="Time since an open alert opened."),
        "resolved_as_of": st.column_config.DateColumn(
            "resolved", help="The plan's as-of date when the pair no longer needed a reorder."
        ),
        "is_published": st.column_config.CheckboxColumn(
            "sent", help="Kafka acknowledged the alert on scm.alerts."
        ),
        "on_hand": st.column_config.NumberColumn("on hand", format="%d"),
        "suggested_order_units": st.column_config.NumberColumn("suggested units", format="%d"),
        "alert_id": st.column_config.TextColumn("alert id", width="small"),
    },
)
rows = picked.selection.rows if picked is not None else []
if rows:
    row = alerts.iloc[rows[0]]
    st.page_link(
        PLANNING_PAGE,
        label=f"Open {row['location_id']} / {row['sku']} in Planning",
        icon=":material/event_upcoming:",
        query_params={"location": str(row["location_id"]), "sku": str(row["sku"])},
    )
else:
    st.caption("Select a row to open its location and sku in Planning.")
if "stockout" in sources:
    st.caption(
        "Stockouts are listed while they last: silver.inventory_position keeps a pair's "
        "stockout until it is restocked, then clears it (the alert stays on scm.alerts)."
    )
