"""Bronze → silver → gold: the SCOR KPI models and the refresh that keeps them current.

Each table is defined once: silver models in :mod:`transforms.silver`, gold tables in
:mod:`transforms.kpis` (collected in :data:`GOLD_TABLES`), as SQL that either engine of
:mod:`transforms.engine` runs (``SCM_ENGINE``: DuckDB on one machine, Spark on a cluster).
See docs/kpis.md and docs/engines.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transforms.engine import Engine
    from transforms.gold import GOLD_TABLES, as_of_date
    from transforms.master_data import MasterLoad, load_master_data
    from transforms.model import GoldTable
    from transforms.open_engine import open_engine
    from transforms.refresh import RefreshSummary, refresh, run_refresh
    from transforms.silver import SILVER_TABLES, SilverTable

__all__ = [
    "GOLD_TABLES",
    "SILVER_TABLES",
    "Engine",
    "GoldTable",
    "MasterLoad",
    "RefreshSummary",
    "SilverTable",
    "as_of_date",
    "load_master_data",
    "open_engine",
    "refresh",
    "run_refresh",
]

_EXPORTS = {
    "Engine": "transforms.engine",
    "open_engine": "transforms.open_engine",
    "GOLD_TABLES": "transforms.gold",
    "as_of_date": "transforms.gold",
    "GoldTable": "transforms.model",
    "MasterLoad": "transforms.master_data",
    "load_master_data": "transforms.master_data",
    "RefreshSummary": "transforms.refresh",
    "refresh": "transforms.refresh",
    "run_refresh": "transforms.refresh",
    "SILVER_TABLES": "transforms.silver",
    "SilverTable": "transforms.silver",
}


def __getattr__(name: str) -> Any:
    # Lazy, so loading master data (pyarrow only) imports no engine.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'transforms' has no attribute {name!r}")
