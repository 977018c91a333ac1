"""``supplier_otif_daily``: supplier on time in full (kpis.md).

Grain: (``expected_date``, ``supplier_id``). A PO line is OTIF when the quantity received for
it (``po_received`` lines of that po_id and line_no) on days ≤ its PO's expected date covers
the ordered quantity. Only PO lines due by the as-of date (``expected_date`` ≤ as-of) count;
a group with none has no row.
Invariant: po_lines_otif ≤ po_lines.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from transforms.kpis.measures import count_where, ratio

GRAIN: tuple[str, ...] = ("expected_date", "supplier_id")


def supplier_otif_daily(
    po_lines: DataFrame, po_receipt_lines: DataFrame, *, as_of: dt.date
) -> DataFrame:
    """On-time-in-full rate of the PO lines due by ``as_of``, per expected date and supplier."""
    ordered = po_lines.where(F.col("expected_date") <= F.lit(as_of)).select(
        "po_id", "line_no", "supplier_id", "expected_date", "quantity"
    )
    receipts = po_receipt_lines.select(
        "po_id", "line_no", F.col("quantity").alias("received_units"), "received_date"
    )
    lines = (
        ordered.join(receipts, ["po_id", "line_no"], "left")
        .groupBy("po_id", "line_no", "supplier_id", "expected_date", "quantity")
        .agg(
            F.coalesce(
                F.sum(
                    F.when(
                        F.col("received_date") <= F.col("expected_date"), F.col("received_units")
                    )
                ),
                F.lit(0),
            ).alias("received_on_time_units")
        )
    )
    return (
        lines.groupBy(*GRAIN)
        .agg(
            F.count(F.lit(1)).cast("long").alias("po_lines"),
            count_where(F.col("received_on_time_units") >= F.col("quantity")).alias(
                "po_lines_otif"
            ),
        )
        .withColumn("otif_rate", ratio(F.col("po_lines_otif"), F.col("po_lines")))
    )
