"""Suppliers: on-time-in-full by supplier, its trend, and the PO lines behind them (a click on
a supplier or a day narrows them)."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, connection, drilldown, filters, queries
from dashboards.scorecard import KPIS

PAGE = "suppliers"
SUPPLIER_OTIF = next(kpi for kpi in KPIS if kpi.title == "Supplier OTIF")

st.title("Suppliers")
if not connection.require_tables("gold.supplier_otif_daily"):
    st.stop()

bounds = connection.date_bounds(queries.EXPECTED_DATE_BOUNDS, what="KPI rows yet")
if bounds is None:
    st.stop()
first_date, last_date = bounds
dates, who = st.columns(2)
with dates:
    start, end = filters.date_range(PAGE, first=first_date, last=last_date, label="Expected dates")
with who:
    suppliers = filters.choose(
        PAGE, "suppliers", "Supplier", connection.run(queries.SUPPLIERS)["value"].tolist()
    )
params = filters.Filters(start, end, suppliers=suppliers).params()

by_supplier = connection.run(queries.SUPPLIER_OTIF_BY_SUPPLIER, params)
otif, lines, missed = st.columns(3)
po_lines = by_supplier["po_lines"].sum()
otif.metric(
    "Supplier OTIF",
    "—" if po_lines == 0 else f"{by_supplier['po_lines_otif'].sum() / po_lines:.1%}",
)
lines.metric("PO lines due", f"{int(po_lines):,}")
missed.metric("Lines not on time in full", f"{int(by_supplier['po_lines_missed'].sum()):,}")

ranking, trend = st.columns(2)
with ranking:
    supplier_click = drilldown.clickable_chart(
        charts.bars(
            by_supplier,
            category="supplier_id",
            value="otif_rate",
            title="OTIF by supplier",
            rate=True,
        ),
        "supplier_id",
        key=f"{PAGE}.by_supplier",
    )
with trend:
    trend_click = drilldown.clickable_chart(
        charts.trend(
            connection.run(queries.SUPPLIER_OTIF_TREND, params),
            x="expected_date",
            y="otif_rate",
            title="Daily OTIF",
            rate=True,
        ),
        "expected_date",
        key=f"{PAGE}.trend",
    )

st.subheader("PO lines behind the numbers")
if connection.has_tables(queries.PO_LINE_DETAIL):
    drilldown.section(
        SUPPLIER_OTIF,
        start,
        end,
        params,
        key=f"{PAGE}.records",
        day=charts.picked_day(trend_click, "expected_date"),
        picks={"suppliers": charts.picked(supplier_click, "supplier_id")},
    )
else:
    st.dataframe(
        by_supplier[["supplier_id", "po_lines", "po_lines_otif", "po_lines_missed"]],
        hide_index=True,
        width="stretch",
    )
    st.caption("Per-line detail (late vs short) appears once gold.po_line_otif is in the lake.")
