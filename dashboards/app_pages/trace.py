"""Track & trace: every event of one order or purchase order in time order, where each sits
in Kafka, and the rejected messages that mention it.

Other pages link here with ``trace?order_id=O-1`` (or ``shipment_id``, ``return_id``,
``po_id``, ``customer_id``, ``sku``); the address always names what is shown, so a history
can be bookmarked or sent.
"""

from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd
import streamlit as st

from dashboards import connection, trace
from scm.errors import ScmError

MODES = ("Id", "Customer or sku")
# Each step's colour on the timeline: an order's steps, then a PO's.
STEP_COLOURS = {
    "placed": "#4c78a8",
    "dispatched": "#f58518",
    "delivered": "#54a24b",
    "returned": "#e45756",
    "created": "#4c78a8",
    "received": "#54a24b",
}
SEARCH_PARAMETERS = ("customer_id", "sku")
APPLIED_LINK = "trace.link"  # the address parameters already copied into the inputs


def apply_link() -> None:
    """Copy the address parameters into the inputs once, so typing another id then wins."""
    names = (*trace.QUERY_PARAMETERS.values(), *SEARCH_PARAMETERS)
    given = {name: str(st.query_params[name]) for name in names if st.query_params.get(name)}
    link = tuple(sorted(given.items()))
    if not link or st.session_state.get(APPLIED_LINK) == link:
        return
    st.session_state[APPLIED_LINK] = link
    for kind, name in trace.QUERY_PARAMETERS.items():
        if name in given:
            st.session_state.update({"trace.mode": MODES[0], "trace.kind": kind})
            st.session_state["trace.id"] = given[name]
            return
    st.session_state["trace.mode"] = MODES[1]
    st.session_state["trace.customer"] = given.get("customer_id", "")
    st.session_state["trace.sku"] = given.get("sku", "")


def share(params: dict[str, str]) -> None:
    """Name what is shown in the address (and remember it, so it is not re-applied)."""
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    st.session_state[APPLIED_LINK] = tuple(sorted(params.items()))


@st.cache_data(ttl=connection.RESULT_TTL_SECONDS, show_spinner=False)
def find(root: str, kind: trace.Kind, id: str) -> trace.Trace | None:
    return trace.find(connection.lake(), kind, id)


@st.cache_data(ttl=connection.RESULT_TTL_SECONDS, show_spinner=False)
def search(root: str, start: dt.date, end: dt.date, customer: str, sku: str) -> pd.DataFrame:
    orders = trace.OrderSearch(start, end, customer_id=customer or None, sku=sku or None)
    return trace.search_orders(connection.lake(), orders).to_pandas()


def timeline_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """One lane per order, shipment, return or PO; a point per event, coloured by step."""
    lanes = list(dict.fromkeys(frame["reference"]))
    base = alt.Chart(frame).encode(
        x=alt.X("event_time:T", title=None, scale=alt.Scale(type="utc")),
        y=alt.Y("reference:N", title=None, sort=lanes),
    )
    path = base.mark_line(color="#bbbbbb").encode(detail="reference:N")
    steps = [step for step in STEP_COLOURS if step in set(frame["step"])]
    has_duplicates = bool(frame["is_duplicate"].any())
    events = base.mark_point(filled=True, size=160).encode(
        color=alt.Color(
            "step:N",
            scale=alt.Scale(domain=steps, range=[STEP_COLOURS[step] for step in steps]),
            legend=alt.Legend(orient="bottom", title=None),
        ),
        shape=alt.Shape(
            "is_duplicate:N",
            scale=alt.Scale(domain=[False, True], range=["circle", "diamond"]),
            legend=alt.Legend(orient="bottom", title="duplicate copy") if has_duplicates else None,
        ),
        tooltip=[
            alt.Tooltip("utcyearmonthdatehoursminutes(event_time):T", title="event time (UTC)"),
            "step:N",
            "reference:N",
            "details:N",
            "topic:N",
            "partition:Q",
            "offset:Q",
            "is_duplicate:N",
        ],
    )
    return (path + events).properties(height=80 + 40 * len(lanes))


def by_id() -> tuple[trace.Kind, str] | None:
    kind_column, id_column = st.columns([1, 3])
    kind = kind_column.selectbox(
        "Kind", trace.KINDS, format_func=trace.KIND_LABELS.__getitem__, key="trace.kind"
    )
    typed = id_column.text_input("Id", key="trace.id", placeholder="e.g. ORD-000123").strip()
    if not typed:
        st.caption("Type an order, shipment, return or PO id, or search by customer or sku.")
        return None
    share({trace.QUERY_PARAMETERS[kind]: typed})
    return kind, typed


def by_customer_or_sku(lake_root: str) -> tuple[trace.Kind, str] | None:
    bounds = trace.order_dates(connection.lake())
    if bounds is None:
        st.info("No order has landed yet: search by id for shipments, returns or POs.")
        return None
    first, last = bounds
    customer_column, sku_column, dates_column = st.columns(3)
    customer = customer_column.text_input("Customer id", key="trace.customer").strip()
    sku = sku_column.text_input("Sku", key="trace.sku").strip()
    picked = dates_column.date_input(
        "Placed between", value=(first, last), min_value=first, max_value=last, key="trace.dates"
    )
    days = picked if isinstance(picked, tuple) and picked else (first, last)
    start, end = days[0], days[-1]
    if not (customer or sku):
        st.caption("Type a customer id or a sku to list their orders.")
        return None
    share({name: value for name, value in (("customer_id", customer), ("sku", sku)) if value})
    orders = search(lake_root, start, end, customer, sku)
    if orders.empty:
        st.info(f"No order matches between {start:%d %b %Y} and {end:%d %b %Y}.")
        return None
    limit = f" (the first {trace.SEARCH_LIMIT})" if len(orders) == trace.SEARCH_LIMIT else ""
    st.caption(f"{len(orders)} orders{limit}, oldest first: pick one to see its history.")
    st.dataframe(
        orders,
        hide_index=True,
        width="stretch",
        column_config={
            "placed_at": st.column_config.DatetimeColumn("placed at", format="D MMM YYYY, HH:mm")
        },
    )
    order = st.selectbox("Order", orders["order_id"].tolist(), key="trace.pick")
    return ("order", str(order)) if order else None


def show_history(found: trace.Trace) -> None:
    root_label = trace.KIND_LABELS[found.root]
    if found.root_id is None:
        st.warning(
            f"No accepted event mentions {trace.KIND_LABELS[found.kind].lower()} "
            f"`{found.looked_up}`: only the rejected messages below do."
        )
    else:
        st.subheader(f"{root_label} {found.root_id}")
        if found.kind != found.root:
            st.caption(
                f"{trace.KIND_LABELS[found.kind]} {found.looked_up} belongs to "
                f"{root_label.lower()} {found.root_id}: its whole history."
            )
        frame = found.timeline.to_pandas()
        duplicates = int(frame["is_duplicate"].sum())
        st.caption(
            f"{len(frame)} events in time order (UTC)"
            + (
                f", {duplicates} of them a duplicate copy of an earlier event_id"
                if duplicates
                else ""
            )
            + ". Topic, partition and offset say where each sits in Kafka."
        )
        st.altair_chart(timeline_chart(frame), width="stretch")
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            column_config={
                "event_time": st.column_config.DatetimeColumn(
                    "event time", format="D MMM YYYY, HH:mm"
                ),
                "details": st.column_config.TextColumn("details", width="large"),
                "is_duplicate": st.column_config.CheckboxColumn("duplicate copy"),
                "ingested_at": st.column_config.DatetimeColumn(
                    "landed", format="D MMM YYYY, HH:mm:ss"
                ),
            },
        )
    st.subheader("Quarantined messages that mention it")
    if found.quarantined.num_rows:
        st.dataframe(found.quarantined.to_pandas(), hide_index=True, width="stretch")
    else:
        mentioned = ", ".join(dict.fromkeys(found.timeline.column("reference").to_pylist()))
        st.caption(f"No quarantined event mentions {mentioned or found.looked_up}.")


st.title("Track & trace")
st.caption(
    "Every event of an order or a purchase order as it landed, duplicates included, with "
    "where it sits in Kafka and the rejected messages that mention it."
)
try:
    has_events = bool(trace.event_tables(connection.lake()))
except ScmError as error:
    st.error(str(error))
    st.stop()
if not has_events:
    st.info(
        connection.EMPTY_LAKE_HELP.format(
            root=connection.lake_root(), what="order, shipment, return or PO events"
        ),
        icon=":material/info:",
    )
    st.stop()

apply_link()
mode = st.radio("Find", MODES, horizontal=True, key="trace.mode")
lake_root = connection.settings().lake
try:
    wanted = by_id() if mode == MODES[0] else by_customer_or_sku(lake_root)
    if wanted is None:
        st.stop()
    kind, looked_up = wanted
    history = find(lake_root, kind, looked_up)
except ScmError as error:
    st.error(str(error))
    st.stop()
if history is None:
    st.info(
        f"Nothing found for {trace.KIND_LABELS[kind].lower()} `{looked_up}`: no accepted or "
        "quarantined event mentions it. Check the id, or look it up as another kind."
    )
    st.stop()
show_history(history)
