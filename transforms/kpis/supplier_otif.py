"""``supplier_otif_daily``: supplier on time in full (kpis.md).

Grain: (``expected_date``, ``supplier_id``). A PO line is OTIF when the quantity received for
it (``po_received`` lines of that po_id and line_no) on days ≤ its PO's expected date covers
the ordered quantity. Only PO lines due by the as-of date (``expected_date`` ≤ as-of) count;
a group with none has no row.
"""

from __future__ import annotations

from transforms.model import ChangeSet, Column, GoldTable, Partitions, newly_due, ratio

# Every PO line expected on a day in scope, with what was received for it (due or not).
PO_LINE_FACTS = """
lines_in_scope AS (
    SELECT po_id, line_no, supplier_id, sku, expected_date, quantity
    FROM po_lines
    WHERE IN_SCOPE(expected_date)
),
received AS (
    SELECT l.po_id, l.line_no, l.supplier_id, l.sku, l.expected_date, l.quantity,
        coalesce(sum(CASE WHEN r.received_date <= l.expected_date THEN r.quantity END), 0)
            AS received_on_time_units,
        coalesce(sum(r.quantity), 0) AS received_units
    FROM lines_in_scope AS l
    LEFT JOIN po_receipt_lines AS r ON r.po_id = l.po_id AND r.line_no = l.line_no
    GROUP BY l.po_id, l.line_no, l.supplier_id, l.sku, l.expected_date, l.quantity
)
"""

SQL = f"""
WITH {PO_LINE_FACTS},
groups AS (
    SELECT expected_date, supplier_id,
        count(*) AS po_lines,
        count(CASE WHEN received_on_time_units >= quantity THEN 1 END) AS po_lines_otif
    FROM received
    WHERE expected_date <= :as_of
    GROUP BY expected_date, supplier_id
)
SELECT *, {ratio("po_lines_otif", "po_lines")} AS otif_rate FROM groups
"""


def touched(changes: ChangeSet) -> Partitions:
    days = changes.dates(
        "SELECT DISTINCT expected_date FROM new_po_lines UNION SELECT DISTINCT expected_date"
        " FROM po_lines WHERE po_id IN (SELECT po_id FROM new_po_receipt_lines)"
    )
    return sorted(days | newly_due(changes, "po_lines", "expected_date", "expected_date"))


TABLE = GoldTable(
    name="supplier_otif_daily",
    description="Supplier on-time-in-full: PO lines received in full by their expected date.",
    grain=("expected_date", "supplier_id"),
    columns=(
        Column("expected_date", "DATE", "the PO's expected delivery date"),
        Column("supplier_id", "VARCHAR", "supplier"),
        Column("po_lines", "BIGINT", "PO lines due by the as-of date"),
        Column("po_lines_otif", "BIGINT", "received in full on days ≤ the expected date"),
        Column("otif_rate", "DOUBLE", "po_lines_otif / po_lines"),
    ),
    partition_column="expected_date",
    granularity="day",
    inputs=("po_lines", "po_receipt_lines"),
    sql=SQL,
    touched=touched,
    invariants=("po_lines_otif <= po_lines",),
)
