"""The two time partitionings of the KPI graph, defined once and imported everywhere.

Partitions are UTC calendar days and months (kpis.md: all days are UTC). The start is a
fixed date, not one derived from the data or the settings: Dagster keys materializations,
backfills and run history by partition key, so the set of keys must not move when the lake
or the simulator's ``--start`` changes. Events dated earlier still reach silver and gold
through ``scm refresh --full``; Dagster does not address those days.

Daily partitions reach :data:`DAYS_AHEAD` days past today because ``supplier_otif_daily``
is keyed by a purchase order's *expected* date, which lies in the future when the PO is
created (supplier lead times are days to weeks); its partition must exist then. Monthly
partitions end with the current month (inventory turns run to the as-of date).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

PARTITIONS_START = dt.date(2025, 1, 1)
DAYS_AHEAD = 62

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START.isoformat(), timezone="UTC", end_offset=1 + DAYS_AHEAD
)
monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=PARTITIONS_START.isoformat(), timezone="UTC", end_offset=1
)
