"""Asset checks: each table's grain and invariants, checked next to the asset that writes it.

Gold rules are evaluated in one Spark aggregation per table (:func:`evaluate`, a pure
function of a DataFrame, so a hand-made bad table can be fed to it). They read the whole
table, not only the partitions just written: a gold table is small, and a rule broken by an
older partition is still broken. Bronze checks read only the Delta log (no Spark). Silver
has no scan-the-table checks on purpose: it grows with every event and is refreshed every
few minutes; its grain is the MERGE key, so uniqueness is enforced by the write itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg

from orchestration.assets.bronze import BRONZE_EVENT_KEYS, QUARANTINE_KEY
from orchestration.assets.gold import gold_key
from orchestration.resources import ScmSettings, SparkResource
from orchestration.table_metadata import delta_row_count
from scm.lake import EVENT_ENTITIES
from transforms.gold import GOLD_TABLES
from transforms.lake_io import table_exists

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# Above this share of rejected messages, producers are broken, not unlucky.
MAX_QUARANTINE_RATE = 0.05
# The hourly refresh plus slack: older than this, bronze has stopped receiving events.
MAX_BRONZE_AGE = dt.timedelta(hours=2)


INVARIANT = "invariant: "


@dataclass(frozen=True)
class TableRules:
    """What must hold for every row of a table: a unique, non-null grain and invariants.

    ``invariants`` maps a name to a SQL condition each row must satisfy (null counts as
    satisfied, so an undefined ratio is not a violation); ``rates`` are columns in [0, 1].
    """

    grain: tuple[str, ...]
    rates: tuple[str, ...] = ()
    invariants: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleOutcome:
    """Violations of one rule and an example of a violating row (for the check's page)."""

    violations: int
    example: str | None = None

    @property
    def passed(self) -> bool:
        return self.violations == 0


GOLD_INVARIANTS: dict[str, dict[str, str]] = {
    "fill_rate_daily": {
        "orders_filled <= orders": "orders_filled <= orders",
        "lines_filled <= lines": "lines_filled <= lines",
        "units_filled <= units_ordered": "units_filled <= units_ordered",
    },
    "perfect_order_daily": {"perfect_orders <= orders": "perfect_orders <= orders"},
    "order_cycle_time_daily": {
        "orders_delivered >= 1": "orders_delivered >= 1",
        "avg_cycle_time_days >= 0": "avg_cycle_time_days >= 0",
    },
    # Not avg_inventory_value >= 0: on-hand may go below zero (movements before a count).
    "inventory_turns_monthly": {
        "period_days in 1..31": "period_days between 1 and 31",
        "cogs >= 0": "cogs >= 0",
    },
    "returns_cost_daily": {
        "units_returned >= returns >= 1": "units_returned >= returns and returns >= 1",
        "refund_amount >= 0": "refund_amount >= 0",
        "processing_cost >= 0": "processing_cost >= 0",
    },
    "supplier_otif_daily": {"po_lines_otif <= po_lines": "po_lines_otif <= po_lines"},
}

GOLD_RULES: dict[str, TableRules] = {
    name: TableRules(
        grain=table.grain,
        rates=tuple(column for column in table.columns if column.endswith("_rate")),
        invariants=GOLD_INVARIANTS.get(name, {}),
    )
    for name, table in GOLD_TABLES.items()
}


def evaluate(frame: DataFrame, rules: TableRules) -> dict[str, RuleOutcome]:
    """Count the violations of every rule in one pass over ``frame``.

    Outcomes are keyed ``grain_is_unique``, ``grain_has_no_nulls``, ``rates_within_0_1``
    and ``invariant: <name>`` per invariant.
    """
    from pyspark.sql import functions as F

    def violating(condition: str) -> F.Column:
        return F.expr(f"not coalesce({condition}, true)")

    grain = [F.col(column) for column in rules.grain]
    null_key = " or ".join(f"{column} is null" for column in rules.grain)
    rates = " or ".join(f"({c} < 0 or {c} > 1)" for c in rules.rates) or "false"
    conditions = {
        "grain_has_no_nulls": F.expr(null_key),
        "rates_within_0_1": F.expr(rates),
        **{f"{INVARIANT}{name}": violating(sql) for name, sql in rules.invariants.items()},
    }
    row = frame.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct(F.struct(*grain)).alias("distinct_grain"),
        *[F.count_if(condition).alias(name) for name, condition in conditions.items()],
    ).first()
    assert row is not None
    outcomes = {"grain_is_unique": RuleOutcome(int(row["rows"]) - int(row["distinct_grain"]))}
    for name, condition in conditions.items():
        count = int(row[name] or 0)
        example = None
        if count:
            first = frame.where(condition).limit(1).collect()
            example = str(first[0].asDict()) if first else None
        outcomes[name] = RuleOutcome(count, example)
    duplicates = outcomes["grain_is_unique"].violations
    if duplicates:
        repeated = frame.groupBy(*grain).count().where("count > 1").limit(1).collect()
        outcomes["grain_is_unique"] = RuleOutcome(duplicates, str(repeated[0].asDict()))
    return outcomes


def _check_names(rules: TableRules) -> list[str]:
    names = ["grain_is_unique", "grain_has_no_nulls"]
    if rules.rates:
        names.append("rates_within_0_1")
    if rules.invariants:
        names.append("invariants_hold")
    return names


def _results(
    key: dg.AssetKey, rules: TableRules, outcomes: Mapping[str, RuleOutcome]
) -> Iterator[dg.AssetCheckResult]:
    for check in _check_names(rules):
        if check == "invariants_hold":
            parts = {
                name.removeprefix(INVARIANT): outcome
                for name, outcome in outcomes.items()
                if name.startswith(INVARIANT)
            }
        else:
            parts = {check: outcomes[check]}
        metadata: dict[str, Any] = {
            f"violations: {name}": outcome.violations for name, outcome in parts.items()
        }
        examples = [f"{name}: {o.example}" for name, o in parts.items() if o.example]
        if examples:
            metadata["example"] = dg.MetadataValue.text("\n".join(examples))
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=check,
            passed=all(outcome.passed for outcome in parts.values()),
            metadata=metadata,
        )


def _missing(key: dg.AssetKey, rules: TableRules, path: str) -> Iterator[dg.AssetCheckResult]:
    for check in _check_names(rules):
        yield dg.AssetCheckResult(
            asset_key=key, check_name=check, passed=False, metadata={"missing_table": path}
        )


_DESCRIPTIONS = {
    "grain_is_unique": "At most one row per grain value: {grain}.",
    "grain_has_no_nulls": "No grain column is null: {grain}.",
    "rates_within_0_1": "Every rate is within [0, 1]: {rates}.",
    "invariants_hold": "Every row satisfies: {invariants}.",
}


def build_table_checks(key: dg.AssetKey, rules: TableRules) -> dg.AssetChecksDefinition:
    """The checks of one Spark table, evaluated together in one aggregation."""
    described = {
        "grain": ", ".join(rules.grain),
        "rates": ", ".join(rules.rates),
        "invariants": "; ".join(rules.invariants),
    }
    specs = [
        dg.AssetCheckSpec(check, asset=key, description=_DESCRIPTIONS[check].format(**described))
        for check in _check_names(rules)
    ]

    @dg.multi_asset_check(specs=specs, name=f"{key.path[0]}_{key.path[-1]}_rules")
    def _checks(spark: SparkResource) -> Iterator[dg.AssetCheckResult]:
        layer, table = key.path
        path = spark.settings.lake().table(layer, table)  # type: ignore[arg-type]
        if not table_exists(path):
            yield from _missing(key, rules, path)
            return
        frame = spark.session.read.format("delta").load(path)
        yield from _results(key, rules, evaluate(frame, rules))

    return _checks


gold_checks = [build_table_checks(gold_key(name), rules) for name, rules in GOLD_RULES.items()]


def quarantine_rate(quarantined: int, accepted: int) -> float:
    total = quarantined + accepted
    return quarantined / total if total else 0.0


@dg.asset_check(
    asset=QUARANTINE_KEY,
    description=f"Rejected messages are under {MAX_QUARANTINE_RATE:.0%} of all messages "
    "received (counted from the Delta log).",
)
def quarantine_rate_below_threshold(scm: ScmSettings) -> dg.AssetCheckResult:
    lake = scm.lake()
    quarantined = delta_row_count(lake.quarantine) or 0
    accepted = sum(delta_row_count(lake.bronze(entity)) or 0 for entity in EVENT_ENTITIES)
    rate = quarantine_rate(quarantined, accepted)
    return dg.AssetCheckResult(
        passed=rate < MAX_QUARANTINE_RATE,
        metadata={
            "quarantined": quarantined,
            "accepted": accepted,
            "quarantine_rate": rate,
            "threshold": MAX_QUARANTINE_RATE,
        },
    )


# Commits that bring events; OPTIMIZE and VACUUM (scm maintain) do not make bronze fresh.
_DATA_OPERATIONS = frozenset({"WRITE", "STREAMING UPDATE", "MERGE"})


def last_data_commit(path: str) -> dt.datetime | None:
    """When events were last committed to the table at ``path`` (None: never)."""
    from deltalake import DeltaTable

    if not table_exists(path):
        return None
    for commit in DeltaTable(path).history(20):
        if commit.get("operation") in _DATA_OPERATIONS:
            return dt.datetime.fromtimestamp(int(commit["timestamp"]) / 1000, dt.UTC)
    return None


def _build_freshness_check(key: dg.AssetKey) -> dg.AssetChecksDefinition:
    entity = key.path[-1]

    @dg.asset_check(
        asset=key,
        name="received_recently",
        description=f"`bronze/{entity}` committed new events within the last "
        f"{MAX_BRONZE_AGE} (a warning: a quiet source or a stopped ingest).",
    )
    def _fresh(scm: ScmSettings) -> dg.AssetCheckResult:
        committed = last_data_commit(scm.lake().bronze(entity))
        age = None if committed is None else dt.datetime.now(dt.UTC) - committed
        age_minutes = None if age is None else round(age.total_seconds() / 60, 1)
        return dg.AssetCheckResult(
            passed=age is not None and age <= MAX_BRONZE_AGE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "last_data_commit_age_minutes": age_minutes,
                "max_age_minutes": MAX_BRONZE_AGE.total_seconds() / 60,
            },
        )

    return _fresh


bronze_checks = [
    quarantine_rate_below_threshold,
    *(_build_freshness_check(key) for key in BRONZE_EVENT_KEYS),
]
