"""Inventory: turns and days of supply by location and month, and the live stock position."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import charts, connection, drilldown, filters, queries

PAGE = "inventory"
LIVE_REFRESH_SECONDS = 5

st.title("Inventory")
has_turns = connection.has_tables("gold.inventory_turns_monthly")
has_position = connection.has_tables("silver.inventory_position")
if not (has_turns or has_position):
    connection.require_tables(
        "gold.inventory_turns_monthly", "silver.inventory_position", what="inventory tables"
    )
    st.stop()

location_options = connection.run(
    queries.INVENTORY_LOCATIONS if has_turns else queries.POSITION_LOCATIONS
)["value"].tolist()
has_products = connection.has_columns({"silver.products": {"sku", "name", "category"}})
where, what = st.columns(2)
with where:
    locations = filters.choose(PAGE, "locations", "Location", location_options)
with what:
    categories = filters.choose(
        PAGE,
        "categories",
        "Category",
        connection.run(queries.CATEGORIES)["value"].tolist() if has_products else [],
    )
params = filters.Filters(locations=locations, categories=categories).params()

st.subheader("Turns and days of supply")
if has_turns:
    monthly = connection.run(queries.INVENTORY_TURNS_BY_MONTH, params)
    monthly["month"] = pd.to_datetime(monthly["month"]).dt.strftime("%Y-%m")
    turns_chart, supply_chart = st.columns(2)
    with turns_chart:
        turns_click = drilldown.clickable_chart(
            charts.heatmap(
                monthly,
                x="month",
                y="location_id",
                value="inventory_turns",
                title="Inventory turns (annualised)",
            ),
            "month",
            "location_id",
            key=f"{PAGE}.turns",
        )
    with supply_chart:
        supply_click = drilldown.clickable_chart(
            charts.heatmap(
                monthly, x="month", y="location_id", value="days_of_supply", title="Days of supply"
            ),
            "month",
            "location_id",
            key=f"{PAGE}.supply",
        )
    # A clicked cell shows its location and month only (the records behind it).
    for click in (turns_click, supply_click):
        for column in ("month", "location_id"):
            value = charts.picked(click, column)
            if value is not None:
                monthly = monthly[monthly[column] == value]
    st.dataframe(monthly, hide_index=True, width="stretch")
else:
    st.info("Turns and days of supply appear once gold.inventory_turns_monthly is in the lake.")


def _highlight(row: pd.Series) -> list[str]:
    if row["is_stockout"]:
        return ["background-color: #f8d7da"] * len(row)
    if row["is_low"]:
        return ["background-color: #fff3cd"] * len(row)
    return [""] * len(row)


@st.fragment(run_every=LIVE_REFRESH_SECONDS)
def live_position() -> None:
    """Re-reads silver.inventory_position every few seconds without re-running the page."""
    low_stock_units = st.number_input(
        "Low stock at or below (units)",
        min_value=0,
        value=10,
        step=1,
        key=f"{PAGE}.low_stock_units",
    )
    live_params = {**params, "low_stock_units": int(low_stock_units)}
    query = queries.INVENTORY_POSITION_WITH_CATEGORY if has_products else queries.INVENTORY_POSITION
    position = connection.run_live(query, live_params)
    positions, stockouts, low, updated = st.columns(4)
    positions.metric("Positions", f"{len(position):,}")
    stockouts.metric("Stockouts", f"{int(position['is_stockout'].sum()):,}")
    low.metric("Low stock", f"{int(position['is_low'].sum()):,}")
    latest = position["updated_at"].max() if not position.empty else None
    updated.metric("Last update", "—" if latest is None else f"{latest:%H:%M:%S} UTC")
    st.dataframe(
        position.style.apply(_highlight, axis=1),
        hide_index=True,
        width="stretch",
        column_config={"is_stockout": "stockout", "is_low": "low stock"},
    )
    st.caption(f"Refreshes every {LIVE_REFRESH_SECONDS} s. Red: stockout; amber: low stock.")


st.subheader("Stock position now")
if has_position:
    live_position()
else:
    st.info(
        "The live position appears once silver.inventory_position is in the lake "
        "(the streaming job keeps it current)."
    )
