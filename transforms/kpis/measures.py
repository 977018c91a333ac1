"""Column expressions every KPI shares: how a rate and a money total are formed."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator as a double; null when the divisor is 0 or unknown."""
    return F.when(denominator != 0, numerator.cast("double") / denominator.cast("double"))


def money_total(amount: Column) -> Column:
    """Σ amount, kept decimal while summing and a double once aggregated (kpis.md)."""
    return F.coalesce(F.sum(amount), F.lit(0)).cast("double")


def count_where(condition: Column) -> Column:
    """How many rows of the group satisfy ``condition`` (null counts as false)."""
    return F.count(F.when(condition, True)).cast("long")
