"""Suppliers: on-time-in-full by supplier, its trend, and the late or short PO lines."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, connection, filters, queries

PAGE = "suppliers"

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
    st.altair_chart(
        charts.bars(
            by_supplier,
            category="supplier_id",
            value="otif_rate",
            title="OTIF by supplier",
            rate=True,
        ),
        width="stretch",
    )
with trend:
    st.altair_chart(
        charts.trend(
            connection.run(queries.SUPPLIER_OTIF_TREND, params),
            x="expected_date",
            y="otif_rate",
            title="Daily OTIF",
            rate=True,
        ),
        width="stretch",
    )

st.subheader("Late and short PO lines")
if connection.has_tables(queries.PO_LINE_DETAIL):
    st.dataframe(
        connection.run(queries.SUPPLIER_LATE_AND_SHORT_LINES, params),
        hide_index=True,
        width="stretch",
    )
else:
    st.dataframe(
        by_supplier[["supplier_id", "po_lines", "po_lines_otif", "po_lines_missed"]],
        hide_index=True,
        width="stretch",
    )
    st.caption("Per-line detail (late vs short) appears once gold.po_line_otif is in the lake.")
