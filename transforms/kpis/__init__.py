"""The SCOR KPIs of kpis.md as pure functions over silver DataFrames (no I/O).

Each module states its table's grain and invariants; :mod:`transforms.gold` reads silver,
calls these and writes the gold partitions.
"""

from __future__ import annotations

from transforms.kpis.fill_rate import fill_rate_daily
from transforms.kpis.inventory_turns import end_of_day_on_hand, inventory_turns_monthly
from transforms.kpis.order_cycle_time import order_cycle_time_daily
from transforms.kpis.order_fulfilment import order_fulfilment, order_line_fulfilment
from transforms.kpis.perfect_order import perfect_order_daily
from transforms.kpis.returns_cost import returns_cost_daily
from transforms.kpis.supplier_otif import supplier_otif_daily

__all__ = [
    "end_of_day_on_hand",
    "fill_rate_daily",
    "inventory_turns_monthly",
    "order_cycle_time_daily",
    "order_fulfilment",
    "order_line_fulfilment",
    "perfect_order_daily",
    "returns_cost_daily",
    "supplier_otif_daily",
]
