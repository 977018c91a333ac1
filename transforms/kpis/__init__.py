"""The SCOR KPIs of kpis.md and the detail tables behind them, each defined once.

Each module's ``TABLE`` (:class:`transforms.model.GoldTable`) holds the grain, columns,
partitioning, inputs, invariants and the SQL that builds it; :mod:`transforms.gold`
collects them in the registry every caller reads.
"""

from __future__ import annotations

from transforms.kpis import (
    details,
    fill_rate,
    inventory_turns,
    order_cycle_time,
    perfect_order,
    returns_cost,
    supplier_otif,
)

KPI_TABLES = (
    tuple(
        module.TABLE
        for module in (
            fill_rate,
            perfect_order,
            order_cycle_time,
            inventory_turns,
            returns_cost,
            supplier_otif,
        )
    )
    + details.DETAIL_TABLES
)
