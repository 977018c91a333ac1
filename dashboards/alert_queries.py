"""The alert inbox's queries: stockout and reorder alerts as one list, as named SQL.

Two outboxes feed it. ``silver.inventory_position`` carries a stockout alert on the row of a
pair while it is stocked out (``stockout_since``, ``stockout_alert_id``,
``stockout_alert_sent``) and clears those columns when the pair is restocked, so stockouts
are only ever *open* here. ``gold.reorder_alerts`` keeps one row per pair and turn to
``needs_reorder`` (planning.md), open while ``resolved_as_of`` is null.

Either table may be missing (a lake before its first stockout or reorder), so the list is
assembled from the sources present: :func:`inbox`, :func:`counts` and :func:`locations` take
them. Values a user picks are parameters (``$alert_types``, ``$statuses``, ``$locations``);
an empty list means "all".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

AlertSource = Literal["stockout", "reorder_needed"]

ALERT_SOURCES: tuple[AlertSource, ...] = ("stockout", "reorder_needed")
STATUSES = ("open", "resolved")
# The table and columns each source needs (for ``connection.has_columns``).
SOURCE_COLUMNS: dict[AlertSource, dict[str, set[str]]] = {
    "stockout": {
        "silver.inventory_position": {
            "location_id", "sku", "on_hand", "stockout_since", "stockout_alert_id",
            "stockout_alert_sent",
        }
    },
    "reorder_needed": {
        "gold.reorder_alerts": {
            "alert_id", "location_id", "sku", "opened_at", "on_hand", "suggested_order_units",
            "resolved_as_of", "published",
        }
    },
}  # fmt: skip

# Every alert in one shape. A stockout is open by construction (see the module doc); its
# suggested units are the plan's, not the alert's, so they are left empty.
_SOURCE_SQL: dict[AlertSource, str] = {
    "stockout": """
    select
        'stockout' as alert_type,
        'open' as status,
        stockout_since as opened_at,
        cast(null as date) as resolved_as_of,
        location_id,
        sku,
        coalesce(stockout_alert_sent, false) as is_published,
        on_hand,
        cast(null as bigint) as suggested_order_units,
        stockout_alert_id as alert_id
    from silver.inventory_position
    where stockout_since is not null""",
    "reorder_needed": """
    select
        'reorder_needed' as alert_type,
        case when resolved_as_of is null then 'open' else 'resolved' end as status,
        opened_at,
        resolved_as_of,
        location_id,
        sku,
        published as is_published,
        on_hand,
        suggested_order_units,
        alert_id
    from gold.reorder_alerts""",
}


def _any(column: str, parameter: str) -> str:
    """Filter on a list parameter; written with code constants only, never user values."""
    return f"(len(${parameter}::varchar[]) = 0 or list_contains(${parameter}::varchar[], {column}))"


def _alerts(sources: Sequence[AlertSource]) -> str:
    """The ``alerts`` CTE over the given sources (at least one)."""
    unknown = sorted(set(sources) - set(ALERT_SOURCES))
    if not sources or unknown:
        raise ValueError(
            f"alert sources must be a non-empty subset of {list(ALERT_SOURCES)}, got {sources}"
        )
    union = "\n    union all".join(_SOURCE_SQL[source] for source in sources)
    return f"alerts as ({union}\n)"


def inbox(sources: Sequence[AlertSource]) -> str:
    """The alerts that pass the filters: open first, then the newest first.

    Grain: one row per alert (``alert_id``).
    """
    return f"""
with {_alerts(sources)},
filtered as (
    select * from alerts
    where {_any("alert_type", "alert_types")}
        and {_any("status", "statuses")}
        and {_any("location_id", "locations")}
)
select alert_type, status, opened_at, resolved_as_of, location_id, sku, is_published,
    on_hand, suggested_order_units, alert_id
from filtered
order by status = 'open' desc, opened_at desc nulls last, location_id, sku, alert_id
"""


def counts(sources: Sequence[AlertSource]) -> str:
    """The inbox's headline numbers over every alert (the filters narrow the list only)."""
    return f"""
with {_alerts(sources)}
select
    count(*) filter (where alert_type = 'stockout' and status = 'open') as open_stockouts,
    count(*) filter (where alert_type = 'reorder_needed' and status = 'open')
        as open_reorder_alerts,
    count(*) filter (where not is_published) as unpublished
from alerts
"""


def locations(sources: Sequence[AlertSource]) -> str:
    """The locations that have any alert, for the location filter."""
    return f"""
with {_alerts(sources)}
select distinct location_id as value from alerts order by value
"""
