"""Planning signals of planning.md: what customers asked for and what to order now.

Each module's ``TABLE`` is a :class:`transforms.model.GoldTable`, defined once and run by
either engine like the KPI tables; :mod:`transforms.gold` registers them beside the KPIs.
"""

from __future__ import annotations

from transforms.planning import demand, forecast, replenishment

PLANNING_TABLES = (
    demand.TABLE,
    replenishment.TABLE,
    forecast.DEMAND_FORECAST,
    forecast.FORECAST_ACCURACY,
)
