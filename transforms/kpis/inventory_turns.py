"""``inventory_turns_monthly``: inventory turns and days of supply (kpis.md).

Grain: (``month``, ``location_id``), for every month up to the as-of date in which the
location had known inventory or dispatched goods. The period of a month is its days up to
min(month end, as-of date). End-of-day on-hand of (location, sku) on day D = the latest
``inventory_snapshot`` at or before the end of D plus the ``inventory_movement`` deltas
strictly after it up to the end of D (0 before anything is known); it carries forward over
days without events, which is why a late inventory event changes every later month.

Rather than materialising one row per (location, sku, day), each end-of-day level is kept
with the days it stays valid for, and Σ_days on-hand × unit cost is the overlap of those
intervals with each period, weighted by level and cost.

Events are replayed in time order; at one instant movements come before a snapshot, so a
snapshot taken at the same time as a movement already includes it ("after the snapshot"
means strictly later).
"""

from __future__ import annotations

from transforms.model import ChangeSet, Column, GoldTable, Partitions, months_between, ratio

_STOCK = "location_id, sku"
_IS_SNAPSHOT = "CASE WHEN event_type = 'inventory_snapshot' THEN 1 ELSE 0 END"
_TIME_ORDER = f"event_time, {_IS_SNAPSHOT}, event_id"
_SINCE_SNAPSHOT = (
    f"PARTITION BY {_STOCK}, snapshot_number ORDER BY {_TIME_ORDER}"
    " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
)
_PERIOD_END = "least(last_day(month), :as_of)"


def end_of_day_on_hand(replay_from: str) -> str:
    """CTEs ending in ``end_of_day_on_hand``, grain (location_id, sku, day with events): the
    on-hand level at the end of that day, up to the as-of date.

    Each (location, sku) is replayed from its last count dated before ``replay_from`` (an
    SQL date expression): a count resets the level, so the days from that count's day on
    come out exact and the history before it is not read (earlier days are left out). A
    pair never counted before ``replay_from`` is replayed whole. This is what keeps an
    incremental refresh from replaying all of ``inventory_events``.
    """
    return f"""
replay_start AS (
    SELECT location_id, sku, max(event_time) AS start_time
    FROM inventory_events
    WHERE event_type = 'inventory_snapshot' AND event_date < {replay_from}
    GROUP BY location_id, sku
),
numbered AS (
    SELECT e.*, sum({_IS_SNAPSHOT}) OVER (
        PARTITION BY e.location_id, e.sku ORDER BY {_TIME_ORDER}
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS snapshot_number
    FROM inventory_events AS e
    LEFT JOIN replay_start AS s ON s.location_id = e.location_id AND s.sku = e.sku
    -- From the count on (a movement at its instant sorts before it and ends no day).
    WHERE e.event_date <= :as_of AND (s.start_time IS NULL OR e.event_time >= s.start_time)
),
replayed AS (
    SELECT location_id, sku, event_date,
        coalesce(first_value(on_hand) OVER ({_SINCE_SNAPSHOT}), 0)
            + sum(coalesce(quantity_delta, 0)) OVER ({_SINCE_SNAPSHOT}) AS on_hand_level,
        row_number() OVER (
            PARTITION BY {_STOCK}, event_date
            ORDER BY event_time DESC, {_IS_SNAPSHOT} DESC, event_id DESC
        ) AS last_of_day
    FROM numbered
),
end_of_day_on_hand AS (
    SELECT location_id, sku, event_date AS day, CAST(on_hand_level AS BIGINT) AS on_hand_level
    FROM replayed
    WHERE last_of_day = 1
)
"""


# The levels the table's months need: from the first month in scope (every day on a rebuild).
END_OF_DAY_ON_HAND = end_of_day_on_hand(":scope_start")

SQL = f"""
WITH {END_OF_DAY_ON_HAND},
levels AS (
    SELECT *, day AS valid_from,
        coalesce(
            CAST(lead(day) OVER (PARTITION BY {_STOCK} ORDER BY day) - INTERVAL 1 DAY AS DATE),
            :as_of
        ) AS valid_to
    FROM end_of_day_on_hand
),
level_months AS (
    SELECT *, unnest(generate_series(
        CAST(date_trunc('month', valid_from) AS DATE),
        CAST(date_trunc('month', valid_to) AS DATE),
        INTERVAL 1 MONTH
    )) AS month_start
    FROM levels
),
value_days AS (
    SELECT m.month, m.location_id,
        CAST(coalesce(sum(
            (date_diff('day', greatest(m.valid_from, m.month), least(m.valid_to, m.period_end))
                + 1) * m.on_hand_level * p.unit_cost
        ), 0) AS DOUBLE) AS inventory_value_days
    FROM (
        SELECT *, least(last_day(month), :as_of) AS period_end
        FROM (SELECT *, CAST(month_start AS DATE) AS month FROM level_months) AS typed
    ) AS m
    LEFT JOIN products AS p ON p.sku = m.sku
    WHERE IN_SCOPE(m.month)
    GROUP BY m.month, m.location_id
),
cogs AS (
    SELECT month, location_id, CAST(coalesce(sum(value), 0) AS DOUBLE) AS cogs
    FROM (
        SELECT CAST(date_trunc('month', s.dispatch_date) AS DATE) AS month,
            s.ship_from AS location_id, s.quantity * p.unit_cost AS value
        FROM shipment_lines AS s
        LEFT JOIN products AS p ON p.sku = s.sku
        WHERE s.dispatch_date <= :as_of
    ) AS dispatched
    WHERE IN_SCOPE(month)
    GROUP BY month, location_id
),
periods AS (
    SELECT coalesce(v.month, c.month) AS month,
        coalesce(v.location_id, c.location_id) AS location_id,
        coalesce(c.cogs, 0.0) AS cogs,
        coalesce(v.inventory_value_days, 0.0) AS inventory_value_days
    FROM value_days AS v
    FULL OUTER JOIN cogs AS c ON c.month = v.month AND c.location_id = v.location_id
),
averages AS (
    SELECT *, inventory_value_days / period_days AS avg_inventory_value
    FROM (
        SELECT *, date_diff('day', month, {_PERIOD_END}) + 1 AS period_days FROM periods
    ) AS sized
)
SELECT month, location_id, period_days, cogs, avg_inventory_value,
    {ratio("cogs", "avg_inventory_value")} * 365.0 / period_days AS inventory_turns,
    {ratio("avg_inventory_value", "cogs / period_days")} AS days_of_supply
FROM averages
"""


def touched(changes: ChangeSet) -> Partitions:
    if changes.products_changed:
        return None
    months: set = set()
    first_inventory_day = changes.dates("SELECT min(event_date) FROM new_inventory_events")
    if first_inventory_day:  # carries forward into every later month
        months.update(months_between(min(first_inventory_day), changes.as_of))
    months |= changes.dates(
        "SELECT DISTINCT CAST(date_trunc('month', dispatch_date) AS DATE) FROM new_shipment_lines"
    )
    if changes.as_of_before is not None and changes.as_of > changes.as_of_before:
        # The as-of month's period grows, and new months begin.
        months.update(months_between(changes.as_of_before, changes.as_of))
    return sorted(months)


TABLE = GoldTable(
    name="inventory_turns_monthly",
    description="Annualised inventory turns and days of supply per location (month to the "
    "as-of date).",
    grain=("month", "location_id"),
    columns=(
        Column("month", "DATE", "first day of the month"),
        Column("location_id", "VARCHAR", "location"),
        Column("period_days", "INTEGER", "days of the month up to the as-of date"),
        Column("cogs", "DOUBLE", "Σ dispatched quantity × unit cost in the period"),
        Column("avg_inventory_value", "DOUBLE", "Σ_days on-hand × unit cost / period_days"),
        Column("inventory_turns", "DOUBLE", "cogs / avg_inventory_value × 365 / period_days"),
        Column("days_of_supply", "DOUBLE", "avg_inventory_value / (cogs / period_days)"),
    ),
    partition_column="month",
    granularity="month",
    inputs=("inventory_events", "shipment_lines", "products"),
    sql=SQL,
    touched=touched,
    # Not avg_inventory_value >= 0: on-hand may go below zero (movements before a count).
    invariants=("period_days between 1 and 31", "cogs >= 0"),
)
