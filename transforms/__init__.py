"""Bronze → silver → gold: the SCOR KPI transforms and the refresh that keeps them current.

Pure builders live in :mod:`transforms.silver` and :mod:`transforms.kpis`; the registries
:data:`SILVER_TABLES` and :data:`GOLD_TABLES` describe every table (grain, partitioning,
inputs) for the CLI refresh and the Dagster assets alike. See docs/kpis.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transforms.gold import GOLD_TABLES, GoldTable, SilverSnapshot, as_of_date
    from transforms.master_data import MasterLoad, load_master_data
    from transforms.refresh import RefreshSummary, refresh, run_refresh
    from transforms.silver import SILVER_TABLES, SilverTable
    from transforms.silver_update import update_silver

__all__ = [
    "GOLD_TABLES",
    "SILVER_TABLES",
    "GoldTable",
    "MasterLoad",
    "RefreshSummary",
    "SilverSnapshot",
    "SilverTable",
    "as_of_date",
    "load_master_data",
    "refresh",
    "run_refresh",
    "update_silver",
]

_EXPORTS = {
    "GOLD_TABLES": "transforms.gold",
    "GoldTable": "transforms.gold",
    "SilverSnapshot": "transforms.gold",
    "as_of_date": "transforms.gold",
    "MasterLoad": "transforms.master_data",
    "load_master_data": "transforms.master_data",
    "RefreshSummary": "transforms.refresh",
    "refresh": "transforms.refresh",
    "run_refresh": "transforms.refresh",
    "SILVER_TABLES": "transforms.silver",
    "SilverTable": "transforms.silver",
    "update_silver": "transforms.silver_update",
}


def __getattr__(name: str) -> Any:
    # Lazy, so loading master data (pyarrow only) does not import pyspark.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'transforms' has no attribute {name!r}")
