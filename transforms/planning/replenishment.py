"""``replenishment_plan``: per location and sku, what is there, what comes, what to order.

One row per pair with known inventory or with demand in the 28-day window, all as of the
end of the as-of date (planning.md). Reorder point = average daily demand × lead time +
safety stock (z × σ_daily × √lead time, 95 % cycle service level); a pair needs a reorder
when on hand plus on order is at or below it, and the suggestion covers a 7-day review
period on top. A snapshot table: every refresh that brings anything rebuilds it whole
(the window and the lead times move with the as-of date).
"""

from __future__ import annotations

from transforms.kpis.inventory_turns import end_of_day_on_hand
from transforms.model import Column, GoldTable, rebuilt_whole
from transforms.planning.demand import DEMAND_DAILY

WINDOW_DAYS = 28
REVIEW_DAYS = 7
LOST_AFTER_DAYS = 14  # a PO line this far past its expected date is lost, not on order
SERVICE_Z = 1.6448536269514722  # 95 % cycle service level

SQL = f"""
WITH {end_of_day_on_hand(":as_of")}, {DEMAND_DAILY},
on_hand AS (
    SELECT location_id, sku, on_hand_level AS on_hand
    FROM (
        SELECT *, row_number() OVER (PARTITION BY location_id, sku ORDER BY day DESC) AS latest
        FROM end_of_day_on_hand
    ) AS levels
    WHERE latest = 1
),
window_demand AS (
    SELECT location_id, sku, units_ordered
    FROM demand_daily
    WHERE demand_date > :as_of - {WINDOW_DAYS}
),
demand_mean AS (
    SELECT location_id, sku, sum(units_ordered) AS demand_28d_units,
        CAST(sum(units_ordered) AS DOUBLE) / {WINDOW_DAYS} AS avg_daily_demand,
        count(*) AS demand_days
    FROM window_demand
    GROUP BY location_id, sku
),
demand_spread AS (
    -- Σ (x − mean)² over the days with demand, plus mean² for each of the zero days.
    SELECT m.location_id, m.sku, m.demand_28d_units, m.avg_daily_demand,
        sqrt((sum(power(w.units_ordered - m.avg_daily_demand, 2))
            + ({WINDOW_DAYS} - m.demand_days) * power(m.avg_daily_demand, 2))
            / {WINDOW_DAYS}) AS demand_std
    FROM demand_mean AS m
    JOIN window_demand AS w ON w.location_id = m.location_id AND w.sku = m.sku
    GROUP BY m.location_id, m.sku, m.demand_28d_units, m.avg_daily_demand, m.demand_days
),
receipts AS (
    SELECT r.po_id, r.line_no, r.received_time,
        sum(r.quantity) OVER (
            PARTITION BY r.po_id, r.line_no ORDER BY r.received_time, r.event_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS received_so_far
    FROM po_receipt_lines AS r
    WHERE r.received_date <= :as_of
),
po_line_state AS (
    SELECT l.po_id, l.line_no, l.ship_to AS location_id, l.sku, l.quantity, l.created_time,
        l.expected_date, coalesce(max(r.received_so_far), 0) AS received_units,
        min(CASE WHEN r.received_so_far >= l.quantity THEN r.received_time END) AS completed_time
    FROM po_lines AS l
    LEFT JOIN receipts AS r ON r.po_id = l.po_id AND r.line_no = l.line_no
    WHERE l.created_date <= :as_of
    GROUP BY l.po_id, l.line_no, l.ship_to, l.sku, l.quantity, l.created_time, l.expected_date
),
completed AS (
    SELECT location_id, sku,
        CAST(date_diff('microsecond', created_time, completed_time) AS DOUBLE) / 86400e6
            AS lead_time_days
    FROM po_line_state
    WHERE completed_time IS NOT NULL
),
sku_lead_times AS (
    SELECT location_id, sku, avg(lead_time_days) AS lead_time_days
    FROM completed GROUP BY location_id, sku
),
location_lead_times AS (
    SELECT location_id, avg(lead_time_days) AS lead_time_days
    FROM completed GROUP BY location_id
),
on_order AS (
    SELECT location_id, sku, sum(greatest(quantity - received_units, 0)) AS on_order
    FROM po_line_state
    WHERE expected_date >= :as_of - {LOST_AFTER_DAYS}
    GROUP BY location_id, sku
),
pairs AS (
    SELECT location_id, sku FROM on_hand UNION SELECT location_id, sku FROM demand_mean
),
planned AS (
    SELECT p.location_id, p.sku,
        coalesce(h.on_hand, 0) AS on_hand,
        coalesce(d.demand_28d_units, 0) AS demand_28d_units,
        coalesce(d.avg_daily_demand, 0.0) AS avg_daily_demand,
        coalesce(d.demand_std, 0.0) AS demand_std,
        coalesce(s.lead_time_days, l.lead_time_days) AS lead_time_days,
        coalesce(o.on_order, 0) AS on_order
    FROM pairs AS p
    LEFT JOIN on_hand AS h ON h.location_id = p.location_id AND h.sku = p.sku
    LEFT JOIN demand_spread AS d ON d.location_id = p.location_id AND d.sku = p.sku
    LEFT JOIN sku_lead_times AS s ON s.location_id = p.location_id AND s.sku = p.sku
    LEFT JOIN location_lead_times AS l ON l.location_id = p.location_id
    LEFT JOIN on_order AS o ON o.location_id = p.location_id AND o.sku = p.sku
),
points AS (
    SELECT *,
        {SERVICE_Z} * demand_std * sqrt(lead_time_days) AS safety_stock,
        avg_daily_demand * lead_time_days + {SERVICE_Z} * demand_std * sqrt(lead_time_days)
            AS reorder_point,
        CASE WHEN avg_daily_demand > 0 THEN on_hand / avg_daily_demand END AS days_of_cover
    FROM planned
),
decided AS (
    SELECT *, coalesce(on_hand + on_order <= reorder_point, FALSE) AS needs_reorder FROM points
)
SELECT location_id, sku, :as_of AS as_of_date, on_hand, demand_28d_units, avg_daily_demand,
    demand_std, lead_time_days, safety_stock, reorder_point, on_order, days_of_cover,
    CAST(:as_of + CAST(floor(days_of_cover) AS INTEGER) AS DATE) AS projected_stockout_date,
    needs_reorder,
    CASE WHEN needs_reorder
        THEN CAST(ceil(reorder_point + {REVIEW_DAYS} * avg_daily_demand - on_hand - on_order)
            AS BIGINT)
        ELSE 0 END AS suggested_order_units
FROM decided
"""


TABLE = GoldTable(
    name="replenishment_plan",
    description="Per location and sku: on hand, on order, 28-day demand, lead time, safety "
    "stock, reorder point, days of cover, projected stockout and the suggested order.",
    grain=("location_id", "sku"),
    columns=(
        Column("location_id", "VARCHAR", "location"),
        Column("sku", "VARCHAR", "product"),
        Column("as_of_date", "DATE", "the plan is as of the end of this day"),
        Column("on_hand", "BIGINT", "end-of-as-of-day on-hand (kpis.md's rule; 0 if unknown)"),
        Column("demand_28d_units", "BIGINT", "units ordered in the 28-day window"),
        Column("avg_daily_demand", "DOUBLE", "demand_28d_units / 28"),
        Column("demand_std", "DOUBLE", "population σ of the 28 daily totals, zero days in"),
        Column("lead_time_days", "DOUBLE", "mean lead time of completed PO lines (sku, else "
               "location; null if none)"),
        Column("safety_stock", "DOUBLE", "z × demand_std × √lead_time_days (z for 95 %)"),
        Column("reorder_point", "DOUBLE", "avg_daily_demand × lead_time_days + safety_stock"),
        Column("on_order", "BIGINT", "Σ open quantity of PO lines not yet lost"),
        Column("days_of_cover", "DOUBLE", "on_hand / avg_daily_demand"),
        Column("projected_stockout_date", "DATE", "as-of + ⌊days_of_cover⌋ days"),
        Column("needs_reorder", "BOOLEAN", "on_hand + on_order ≤ reorder_point"),
        Column("suggested_order_units", "BIGINT", "⌈reorder_point + 7 × avg − on_hand − "
               "on_order⌉ when needs_reorder, else 0"),
    ),
    partition_column=None,
    granularity="snapshot",
    inputs=("inventory_events", "order_lines", "po_lines", "po_receipt_lines"),
    sql=SQL,
    touched=rebuilt_whole,
    invariants=(
        "demand_28d_units >= 0",
        "on_order >= 0",
        "suggested_order_units >= 0",
        "needs_reorder = coalesce(on_hand + on_order <= reorder_point, FALSE)",
        "needs_reorder OR suggested_order_units = 0",
    ),
)  # fmt: skip
