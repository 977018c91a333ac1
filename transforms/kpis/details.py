"""Detail tables: the facts behind the KPIs, one row per order line, order, return, PO line.

The dashboards filter and sum these instead of deriving the facts again (a drill-down's
records are a KPI's own records): ``order_line_fulfilment`` (fill rate by category, the
unfilled lines), ``perfect_order_detail`` (why orders were not perfect, and each delivered
order's cycle time), ``returns_detail`` (each return and its processing cost) and
``po_line_otif`` (late and short PO lines). Each is built from the same SQL fragments as
its KPI table, so a line counted as filled here is the line the fill rate counts.
``is_due`` says whether the KPI counts the record yet (due by the as-of date).
"""

from __future__ import annotations

from transforms.kpis.fill_rate import touched as _order_line_touched
from transforms.kpis.order_cycle_time import CYCLE_TIME_DAYS
from transforms.kpis.order_fulfilment import ORDER_FULFILMENT
from transforms.kpis.perfect_order import touched as _order_touched
from transforms.kpis.returns_cost import RETURN_FACTS, UNKNOWN_CATEGORY
from transforms.kpis.returns_cost import touched as _return_touched
from transforms.kpis.supplier_otif import PO_LINE_FACTS
from transforms.kpis.supplier_otif import touched as _po_line_touched
from transforms.model import ChangeSet, Column, GoldTable, Partitions

ORDER_LINE_SQL = f"""
WITH {ORDER_FULFILMENT}
SELECT l.order_date, l.order_id, l.line_no, l.sku,
    coalesce(p.category, '{UNKNOWN_CATEGORY}') AS category,
    l.ship_from, l.channel, l.requested_delivery_date,
    l.requested_delivery_date <= :as_of AS is_due,
    l.ordered_units, l.dispatched_by_requested_units, l.delivered_units,
    least(l.dispatched_by_requested_units, l.ordered_units) AS filled_units,
    l.ordered_units - least(l.dispatched_by_requested_units, l.ordered_units) AS short_units,
    l.dispatched_by_requested_units >= l.ordered_units AS is_filled
FROM line_fulfilment AS l
LEFT JOIN products AS p ON p.sku = l.sku
"""

ORDER_SQL = f"""
WITH {ORDER_FULFILMENT}
SELECT order_date, order_id, ship_from, channel, requested_delivery_date,
    requested_delivery_date <= :as_of AS is_due,
    lines, NOT is_fully_delivered AS is_short, is_late, is_damaged, has_document_errors,
    is_fully_delivered AND has_only_on_time_clean_deliveries AS is_perfect,
    CASE WHEN is_fully_delivered THEN {CYCLE_TIME_DAYS} END AS cycle_time_days
FROM orders_fulfilled
"""

RETURN_SQL = f"""
WITH {RETURN_FACTS}
SELECT return_date, return_id, order_id, line_no, sku, category, reason, disposition,
    quantity, refund_amount, processing_cost
FROM categorised
"""

PO_LINE_SQL = f"""
WITH {PO_LINE_FACTS}
SELECT expected_date, po_id, line_no, supplier_id, sku, quantity,
    expected_date <= :as_of AS is_due,
    received_on_time_units, received_units,
    received_on_time_units >= quantity AS is_otif,
    CASE WHEN received_on_time_units >= quantity THEN NULL
        WHEN received_units < quantity THEN 'short' ELSE 'late' END AS problem
FROM received
"""


def _order_line_fulfilment_touched(changes: ChangeSet) -> Partitions:
    if changes.products_changed:
        return None  # the category column
    days = set(_order_line_touched(changes) or [])
    return sorted(days | set(_order_touched(changes) or []))


ORDER_LINE_FULFILMENT = GoldTable(
    name="order_line_fulfilment",
    description="One row per order line: ordered, dispatched by the requested date, "
    "delivered, filled and short units (the records behind fill rate).",
    grain=("order_id", "line_no"),
    columns=(
        Column("order_date", "DATE", "day the order was placed (UTC)"),
        Column("order_id", "VARCHAR", "order"),
        Column("line_no", "INTEGER", "line of the order"),
        Column("sku", "VARCHAR", "product"),
        Column("category", "VARCHAR", "product category, 'unknown' if not listed"),
        Column("ship_from", "VARCHAR", "shipping location"),
        Column("channel", "VARCHAR", "sales channel"),
        Column("requested_delivery_date", "DATE", "the order's requested delivery date"),
        Column("is_due", "BOOLEAN", "requested by the as-of date: fill rate counts it"),
        Column("ordered_units", "BIGINT", "units ordered"),
        Column("dispatched_by_requested_units", "BIGINT", "units dispatched by then"),
        Column("delivered_units", "BIGINT", "units of delivered shipments"),
        Column("filled_units", "BIGINT", "min(dispatched by the requested date, ordered)"),
        Column("short_units", "BIGINT", "ordered − filled"),
        Column("is_filled", "BOOLEAN", "dispatched in full by the requested date"),
    ),
    partition_column="order_date",
    granularity="day",
    inputs=("order_lines", "shipment_lines", "deliveries", "products"),
    sql=ORDER_LINE_SQL,
    touched=_order_line_fulfilment_touched,
    invariants=("filled_units <= ordered_units", "short_units >= 0"),
)

PERFECT_ORDER_DETAIL = GoldTable(
    name="perfect_order_detail",
    description="One row per order: whether it was perfect and, if not, why (short, late, "
    "damaged, document errors; the records behind perfect order).",
    grain=("order_id",),
    columns=(
        Column("order_date", "DATE", "day the order was placed (UTC)"),
        Column("order_id", "VARCHAR", "order"),
        Column("ship_from", "VARCHAR", "shipping location"),
        Column("channel", "VARCHAR", "sales channel"),
        Column("requested_delivery_date", "DATE", "the order's requested delivery date"),
        Column("is_due", "BOOLEAN", "requested by the as-of date: perfect order counts it"),
        Column("lines", "BIGINT", "order lines"),
        Column("is_short", "BOOLEAN", "some line not delivered in full"),
        Column("is_late", "BOOLEAN", "some delivery after the requested date"),
        Column("is_damaged", "BOOLEAN", "some delivery not in ok condition"),
        Column("has_document_errors", "BOOLEAN", "some delivery with document errors"),
        Column("is_perfect", "BOOLEAN", "delivered in full, on time, ok, documents ok"),
        Column(
            "cycle_time_days",
            "DOUBLE",
            "last delivery − order placed, in days; null until "
            "every line is delivered (the records behind order cycle time)",
        ),
    ),
    partition_column="order_date",
    granularity="day",
    inputs=("order_lines", "shipment_lines", "deliveries"),
    sql=ORDER_SQL,
    touched=_order_touched,
    invariants=(
        "lines >= 1",
        "NOT (is_perfect AND (is_short OR is_late OR is_damaged OR has_document_errors))",
        "cycle_time_days >= 0",
        "(cycle_time_days IS NULL) = is_short",
    ),
)

RETURNS_DETAIL = GoldTable(
    name="returns_detail",
    description="One row per return with its category, refund and processing cost "
    "(the records behind returns cost).",
    grain=("return_id",),
    columns=(
        Column("return_date", "DATE", "day the return was received (UTC)"),
        Column("return_id", "VARCHAR", "return"),
        Column("order_id", "VARCHAR", "the order returned from"),
        Column("line_no", "INTEGER", "the order line returned"),
        Column("sku", "VARCHAR", "product"),
        Column("category", "VARCHAR", "product category, 'unknown' if not listed"),
        Column("reason", "VARCHAR", "return reason"),
        Column("disposition", "VARCHAR", "what happens to the returned units"),
        Column("quantity", "BIGINT", "units returned"),
        Column("refund_amount", "DOUBLE", "money refunded (not a cost of the process)"),
        Column("processing_cost", "DOUBLE", "cost of processing the return"),
    ),
    partition_column="return_date",
    granularity="day",
    inputs=("returns", "products"),
    sql=RETURN_SQL,
    touched=_return_touched,
    invariants=("quantity >= 1", "refund_amount >= 0", "processing_cost >= 0"),
)

PO_LINE_OTIF = GoldTable(
    name="po_line_otif",
    description="One row per PO line: received on time and in full, or late or short "
    "(the records behind supplier OTIF).",
    grain=("po_id", "line_no"),
    columns=(
        Column("expected_date", "DATE", "the PO's expected date"),
        Column("po_id", "VARCHAR", "purchase order"),
        Column("line_no", "INTEGER", "line of the PO"),
        Column("supplier_id", "VARCHAR", "supplier"),
        Column("sku", "VARCHAR", "product"),
        Column("quantity", "BIGINT", "units ordered"),
        Column("is_due", "BOOLEAN", "expected by the as-of date: supplier OTIF counts it"),
        Column("received_on_time_units", "BIGINT", "units received on days ≤ expected date"),
        Column("received_units", "BIGINT", "units received so far"),
        Column("is_otif", "BOOLEAN", "received in full by the expected date"),
        Column("problem", "VARCHAR", "'short' (not received in full), 'late', or null"),
    ),
    partition_column="expected_date",
    granularity="day",
    inputs=("po_lines", "po_receipt_lines"),
    sql=PO_LINE_SQL,
    touched=_po_line_touched,
    invariants=("received_on_time_units <= received_units",),
)

DETAIL_TABLES = (ORDER_LINE_FULFILMENT, PERFECT_ORDER_DETAIL, RETURNS_DETAIL, PO_LINE_OTIF)
