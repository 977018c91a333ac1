"""Asset checks: each table's grain and invariants, checked next to the asset that writes it.

Gold rules are each table's own (its definition in :mod:`transforms.kpis`), counted by the
batch engine (:func:`transforms.checks.check_table`). Bronze checks read only the Delta
log. Silver has no scan-the-table checks on purpose: it grows with every event and is
refreshed every few minutes; its grain is enforced by the write itself (an event already
in silver is never inserted again).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg

from orchestration.assets.bronze import BRONZE_EVENT_KEYS, QUARANTINE_KEY
from orchestration.assets.gold import gold_key
from orchestration.resources import ScmSettings, SparkResource
from orchestration.table_metadata import delta_row_count
from scm.lake import EVENT_ENTITIES
from transforms.checks import RuleOutcome, TableRules, check_table, outcomes_by_check
from transforms.gold import GOLD_TABLES
from transforms.lake_io import table_exists

# Above this share of rejected messages, producers are broken, not unlucky.
MAX_QUARANTINE_RATE = 0.05
# The hourly refresh plus slack: older than this, bronze has stopped receiving events.
MAX_BRONZE_AGE = dt.timedelta(hours=2)


GOLD_RULES: dict[str, TableRules] = {
    name: TableRules.of(table) for name, table in GOLD_TABLES.items()
}


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
    grouped = outcomes_by_check(outcomes)
    for check in _check_names(rules):
        parts = grouped[check]
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
    """The checks of one gold table, counted together by the batch engine."""
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
        engine = spark.engine()
        outcomes = check_table(engine, engine.gold_relation(table), rules)
        yield from _results(key, rules, outcomes)

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
