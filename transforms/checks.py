"""What must hold for every row of a gold table, counted by the engine in SQL.

The rules come from the table's definition (:class:`transforms.model.GoldTable`): a unique,
non-null grain, rates within [0, 1] and its invariants (a null counts as satisfied, so an
undefined ratio is not a violation). They read the whole table, not only the partitions just
written: a gold table is small, and a rule broken by an older partition is still broken.
The Dagster asset checks and the tests call :func:`check_table`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from transforms.model import GoldTable

if TYPE_CHECKING:
    from transforms.engine import Engine

INVARIANT = "invariant: "


@dataclass(frozen=True)
class TableRules:
    """The rules of one table (see the module doc)."""

    grain: tuple[str, ...]
    rates: tuple[str, ...] = ()
    invariants: tuple[str, ...] = ()

    @classmethod
    def of(cls, table: GoldTable) -> TableRules:
        return cls(table.grain, table.rates, table.invariants)

    def conditions(self) -> dict[str, str]:
        """Each rule but uniqueness as a SQL condition that a *violating* row satisfies."""
        rates = " OR ".join(f"({c} < 0 OR {c} > 1)" for c in self.rates) or "FALSE"
        return {
            "grain_has_no_nulls": " OR ".join(f"{c} IS NULL" for c in self.grain),
            "rates_within_0_1": rates,
            **{f"{INVARIANT}{rule}": f"NOT coalesce({rule}, TRUE)" for rule in self.invariants},
        }


@dataclass(frozen=True)
class RuleOutcome:
    """Violations of one rule and an example of a violating row (for the check's page)."""

    violations: int
    example: str | None = None

    @property
    def passed(self) -> bool:
        return self.violations == 0


@dataclass(frozen=True)
class _Query:
    engine: Engine
    relation: str

    def rows(self, text: str) -> list[tuple[object, ...]]:
        return self.engine.rows(self.engine.render(text, extra={"checked": self.relation}))


def check_table(engine: Engine, relation: str, rules: TableRules) -> dict[str, RuleOutcome]:
    """Count the violations of every rule over ``relation`` (a gold table or a test's
    relation), keyed ``grain_is_unique``, ``grain_has_no_nulls``, ``rates_within_0_1`` and
    ``invariant: <rule>``; failing rules carry one violating row as an example."""
    query = _Query(engine, relation)
    conditions = rules.conditions()
    counts = ", ".join(f"count(CASE WHEN {sql} THEN 1 END)" for sql in conditions.values())
    row = query.rows(f"SELECT {counts} FROM checked")[0]
    outcomes: dict[str, RuleOutcome] = {}
    grain = ", ".join(rules.grain)
    repeated = query.rows(
        f"SELECT {grain}, count(*) AS copies FROM checked GROUP BY {grain} HAVING count(*) > 1"
    )
    duplicates = sum(int(r[-1]) - 1 for r in repeated)  # type: ignore[call-overload]
    example = dict(zip((*rules.grain, "copies"), repeated[0], strict=True)) if repeated else None
    outcomes["grain_is_unique"] = RuleOutcome(duplicates, str(example) if example else None)
    for (name, sql), count in zip(conditions.items(), row, strict=True):
        violations = int(count or 0)  # type: ignore[call-overload]
        found = None
        if violations:
            first = query.rows(f"SELECT * FROM checked WHERE {sql} LIMIT 1")
            found = str(first[0]) if first else None
        outcomes[name] = RuleOutcome(violations, found)
    return outcomes


def outcomes_by_check(outcomes: Mapping[str, RuleOutcome]) -> dict[str, dict[str, RuleOutcome]]:
    """Outcomes grouped as the asset checks show them (every invariant under one check)."""
    grouped: dict[str, dict[str, RuleOutcome]] = {}
    for name, outcome in outcomes.items():
        check = "invariants_hold" if name.startswith(INVARIANT) else name
        grouped.setdefault(check, {})[name.removeprefix(INVARIANT)] = outcome
    return grouped
