"""One SQL text per table, run by DuckDB or Spark: parameters, scope and dialect.

Every silver and gold transformation is written once, in DuckDB's SQL dialect, over
*logical* table names (``order_lines``, ``products``, ``bronze_events``). :func:`render`
turns such a text into what one engine runs:

- ``:as_of`` becomes the as-of date literal;
- ``:scope_start`` becomes the first partition value in scope (the earliest date, 0001-01-01,
  when every partition is built): what a model reads from to build its scope;
- ``IN_SCOPE(expr)`` becomes ``expr IN (<partition values>)``, or ``TRUE`` when every
  partition is built (a full rebuild);
- the text is transpiled to Spark SQL with sqlglot when the engine is Spark;
- each logical table name is replaced by the engine's physical relation (a DuckDB view over
  the Delta snapshot, a Spark ``delta.`path``` or temporary view).

Only constructs both engines share are used; ``tests/test_sql_models.py`` transpiles every
model so a construct Spark lacks is found before a cluster run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Literal

import sqlglot
from sqlglot import expressions as exp

Dialect = Literal["duckdb", "spark"]

_SCOPE = "IN_SCOPE("
_EVERY_DAY = dt.date(1, 1, 1)  # :scope_start of a full rebuild


def date_literal(day: dt.date) -> str:
    return f"DATE '{day.isoformat()}'"


def scope_predicate(expression: str, partitions: Iterable[dt.date] | None) -> str:
    """``expression IN (...)`` for these partition values; TRUE for all of them."""
    if partitions is None:
        return "TRUE"
    values = sorted(set(partitions))
    if not values:
        return "FALSE"
    return f"({expression}) IN ({', '.join(date_literal(day) for day in values)})"


def _expand_scope(text: str, partitions: list[dt.date] | None) -> str:
    """Replace every ``IN_SCOPE(expr)`` (expr may hold parentheses) by its predicate."""
    while (start := text.find(_SCOPE)) >= 0:
        depth, position = 1, start + len(_SCOPE)
        while depth:
            depth += {"(": 1, ")": -1}.get(text[position], 0)
            position += 1
        inner = text[start + len(_SCOPE) : position - 1]
        text = text[:start] + scope_predicate(inner, partitions) + text[position:]
    return text


def render(
    text: str,
    dialect: Dialect,
    tables: Mapping[str, str],
    *,
    as_of: dt.date | None = None,
    partitions: Iterable[dt.date] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> str:
    """The SQL one engine runs for a model text (see the module doc)."""
    values = list(partitions) if partitions is not None else None
    text = _expand_scope(text, values)
    substitutions = dict(parameters or {})
    if as_of is not None:
        substitutions["as_of"] = date_literal(as_of)
    substitutions["scope_start"] = date_literal(min(values) if values else _EVERY_DAY)
    for name in sorted(substitutions, key=len, reverse=True):
        text = text.replace(f":{name}", substitutions[name])
    if dialect == "duckdb" and all(name == target for name, target in tables.items()):
        return text  # written in DuckDB's dialect, inputs under their own names
    tree = sqlglot.parse_one(text, read="duckdb")
    # CTE names shadow logical tables: only real inputs are re-pointed.
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}

    def repoint(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Table) or node.args.get("db") or node.name in ctes:
            return node
        if node.name not in tables:
            return node
        physical = sqlglot.parse_one(f"SELECT * FROM {tables[node.name]}", read=dialect)
        target = physical.find(exp.Table)
        assert target is not None
        replacement = target.copy()
        alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
        replacement.set("alias", alias)
        return replacement

    tree = tree.transform(repoint)
    return tree.sql(dialect=dialect)
