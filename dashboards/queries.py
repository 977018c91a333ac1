"""Every query the dashboards run, as named SQL with DuckDB parameters.

Values a user picks are always parameters (``$start_date``, ``$locations``...): an empty
list means "all". No KPI logic lives here: pages filter and sum the gold KPI tables and the
detail tables behind them (``gold.order_line_fulfilment``, ``gold.perfect_order_detail``,
``gold.po_line_otif``), which are defined with their KPIs in ``transforms/kpis``.
"""

from __future__ import annotations


def _any(column: str, parameter: str) -> str:
    """Filter on a list parameter; written with code constants only, never user values."""
    return f"(len(${parameter}::varchar[]) = 0 or list_contains(${parameter}::varchar[], {column}))"


_ORDER_FILTERS = f"""
    order_date between $start_date and $end_date
    and {_any("ship_from", "locations")}
    and {_any("channel", "channels")}
"""

# -- what the filters offer ---------------------------------------------------------------

ORDER_DATE_BOUNDS = """
select min(order_date) as first_date, max(order_date) as last_date
from gold.fill_rate_daily
"""
LOCATIONS = """
select distinct ship_from as value from gold.fill_rate_daily order by value
"""
CHANNELS = """
select distinct channel as value from gold.fill_rate_daily order by value
"""
CATEGORIES = """
select distinct category as value from gold.order_line_fulfilment order by value
"""
RETURN_DATE_BOUNDS = """
select min(return_date) as first_date, max(return_date) as last_date from gold.returns_cost_daily
"""
RETURN_CATEGORIES = """
select distinct category as value from gold.returns_cost_daily order by value
"""
EXPECTED_DATE_BOUNDS = """
select min(expected_date) as first_date, max(expected_date) as last_date
from gold.supplier_otif_daily
"""
SUPPLIERS = """
select distinct supplier_id as value from gold.supplier_otif_daily order by value
"""
INVENTORY_LOCATIONS = """
select distinct location_id as value from gold.inventory_turns_monthly order by value
"""

POSITION_LOCATIONS = """
select distinct location_id as value from silver.inventory_position order by value
"""

# -- scorecard: daily (or monthly) numerators and denominators of each KPI ----------------

FILL_RATE_DAILY_TOTALS = f"""
select
    order_date as day,
    sum(orders_filled) as orders_filled,
    sum(orders) as orders,
    sum(lines_filled) as lines_filled,
    sum(lines) as lines,
    sum(units_filled) as units_filled,
    sum(units_ordered) as units_ordered
from gold.fill_rate_daily
where {_ORDER_FILTERS}
group by order_date
order by day
"""

PERFECT_ORDER_DAILY_TOTALS = f"""
select order_date as day, sum(perfect_orders) as perfect_orders, sum(orders) as orders
from gold.perfect_order_daily
where {_ORDER_FILTERS}
group by order_date
order by day
"""

CYCLE_TIME_DAILY_TOTALS = f"""
select
    order_date as day,
    sum(avg_cycle_time_days * orders_delivered) as cycle_time_days_total,
    sum(orders_delivered) as orders_delivered
from gold.order_cycle_time_daily
where {_ORDER_FILTERS}
group by order_date
order by day
"""

INVENTORY_MONTHLY_TOTALS = f"""
select
    month as day,
    sum(cogs) * 365 / max(period_days) as annualised_cogs,
    sum(avg_inventory_value) as avg_inventory_value,
    sum(avg_inventory_value) * max(period_days) as inventory_value_days,
    sum(cogs) as cogs
from gold.inventory_turns_monthly
where {_any("location_id", "locations")}
group by month
order by day
"""

RETURNS_DAILY_TOTALS = f"""
select
    return_date as day,
    sum(processing_cost) as processing_cost,
    sum(returns) as returns,
    sum(refund_amount) as refund_amount
from gold.returns_cost_daily
where return_date between $start_date and $end_date
  and {_any("category", "categories")}
group by return_date
order by day
"""

SUPPLIER_OTIF_DAILY_TOTALS = f"""
select expected_date as day, sum(po_lines_otif) as po_lines_otif, sum(po_lines) as po_lines
from gold.supplier_otif_daily
where expected_date between $start_date and $end_date
  and {_any("supplier_id", "suppliers")}
group by expected_date
order by day
"""

# -- fill rate ----------------------------------------------------------------------------

FILL_RATE_TREND = f"""
with daily as (
    select
        order_date,
        sum(orders_filled) / nullif(sum(orders), 0) as order_fill_rate,
        sum(lines_filled) / nullif(sum(lines), 0) as line_fill_rate,
        sum(units_filled) / nullif(sum(units_ordered), 0) as unit_fill_rate
    from gold.fill_rate_daily
    where {_ORDER_FILTERS}
    group by order_date
)
select * from daily order by order_date
"""


def _fill_rate_by(column: str) -> str:
    return f"""
with grouped as (
    select
        {column},
        sum(orders) as orders,
        sum(orders_filled) as orders_filled,
        sum(orders_filled) / nullif(sum(orders), 0) as order_fill_rate,
        sum(lines_filled) / nullif(sum(lines), 0) as line_fill_rate,
        sum(units_filled) / nullif(sum(units_ordered), 0) as unit_fill_rate
    from gold.fill_rate_daily
    where {_ORDER_FILTERS}
    group by {column}
)
select * from grouped order by {column}
"""


FILL_RATE_BY_LOCATION = _fill_rate_by("ship_from")
FILL_RATE_BY_CHANNEL = _fill_rate_by("channel")

ORDER_LINE_DETAIL = "gold.order_line_fulfilment"

# The lines the fill rate counts (due by the as-of date), from the KPI's own detail table.
_DUE_LINES = f"""
due_lines as (
    select *
    from gold.order_line_fulfilment
    where is_due and {_ORDER_FILTERS} and {_any("category", "categories")}
)"""

FILL_RATE_BY_CATEGORY = f"""
with {_DUE_LINES},
by_category as (
    select
        category,
        count(*) as lines,
        count(*) filter (where is_filled) as lines_filled,
        count(*) filter (where is_filled) / count(*) as line_fill_rate,
        sum(filled_units) / nullif(sum(ordered_units), 0) as unit_fill_rate
    from due_lines
    group by category
)
select * from by_category order by category
"""

# -- perfect order and cycle time -----------------------------------------------------------

PERFECT_ORDER_TREND = f"""
with daily as (
    select
        order_date,
        sum(orders) as orders,
        sum(perfect_orders) / nullif(sum(orders), 0) as perfect_order_rate
    from gold.perfect_order_daily
    where {_ORDER_FILTERS}
    group by order_date
)
select * from daily order by order_date
"""

PERFECT_ORDER_BY_LOCATION = f"""
with by_location as (
    select
        ship_from,
        sum(orders) as orders,
        sum(perfect_orders) / nullif(sum(orders), 0) as perfect_order_rate
    from gold.perfect_order_daily
    where {_ORDER_FILTERS}
    group by ship_from
)
select * from by_location order by ship_from
"""

CYCLE_TIME_TREND = f"""
with daily as (
    select
        order_date,
        sum(orders_delivered) as orders_delivered,
        sum(avg_cycle_time_days * orders_delivered) / nullif(sum(orders_delivered), 0)
            as avg_cycle_time_days
    from gold.order_cycle_time_daily
    where {_ORDER_FILTERS}
    group by order_date
)
select * from daily order by order_date
"""

ORDER_DETAIL = "gold.perfect_order_detail"

# Why orders were not perfect (kpis.md RL.1.1): an order can fail for several reasons.
PERFECT_ORDER_FAILURES = f"""
with due_orders as (
    select * from gold.perfect_order_detail where is_due and {_ORDER_FILTERS}
),
reasons as (
    select 'late' as reason, count(*) filter (where is_late) as orders from due_orders
    union all
    select 'short', count(*) filter (where is_short) from due_orders
    union all
    select 'damaged', count(*) filter (where is_damaged) from due_orders
    union all
    select 'documents', count(*) filter (where has_document_errors) from due_orders
)
select reason, orders, orders / nullif((select count(*) from due_orders), 0) as share_of_orders
from reasons
"""

# -- inventory ------------------------------------------------------------------------------

INVENTORY_TURNS_BY_MONTH = f"""
select month, location_id, inventory_turns, days_of_supply, cogs, avg_inventory_value
from gold.inventory_turns_monthly
where {_any("location_id", "locations")}
order by month, location_id
"""

INVENTORY_POSITION = f"""
with positions as (
    select location_id, sku, on_hand, updated_at
    from silver.inventory_position
    where {_any("location_id", "locations")}
)
select *, on_hand <= 0 as is_stockout, on_hand > 0 and on_hand <= $low_stock_units as is_low
from positions
order by on_hand, location_id, sku
"""

INVENTORY_POSITION_WITH_CATEGORY = f"""
with positions as (
    select location_id, sku, on_hand, updated_at
    from silver.inventory_position
    where {_any("location_id", "locations")}
),
products as (
    select sku, name, category from silver.products
),
described as (
    select positions.location_id, positions.sku, products.name, products.category,
           positions.on_hand, positions.updated_at
    from positions
    left join products using (sku)
    where {_any("products.category", "categories")}
)
select *, on_hand <= 0 as is_stockout, on_hand > 0 and on_hand <= $low_stock_units as is_low
from described
order by on_hand, location_id, sku
"""

# -- returns --------------------------------------------------------------------------------

_RETURN_FILTERS = f"""
    return_date between $start_date and $end_date
    and {_any("category", "categories")}
"""


def _returns_by(column: str) -> str:
    return f"""
with grouped as (
    select
        {column},
        sum(returns) as returns,
        sum(units_returned) as units_returned,
        sum(processing_cost) as processing_cost,
        sum(refund_amount) as refund_amount
    from gold.returns_cost_daily
    where {_RETURN_FILTERS}
    group by {column}
)
select * from grouped order by processing_cost desc
"""


RETURNS_BY_REASON = _returns_by("reason")
RETURNS_BY_CATEGORY = _returns_by("category")
RETURNS_TREND = f"""
select
    return_date,
    sum(returns) as returns,
    sum(processing_cost) as processing_cost,
    sum(refund_amount) as refund_amount
from gold.returns_cost_daily
where {_RETURN_FILTERS}
group by return_date
order by return_date
"""

# -- suppliers ------------------------------------------------------------------------------

_SUPPLIER_FILTERS = f"""
    expected_date between $start_date and $end_date
    and {_any("supplier_id", "suppliers")}
"""

SUPPLIER_OTIF_BY_SUPPLIER = f"""
with by_supplier as (
    select
        supplier_id,
        sum(po_lines) as po_lines,
        sum(po_lines_otif) as po_lines_otif,
        sum(po_lines) - sum(po_lines_otif) as po_lines_missed,
        sum(po_lines_otif) / nullif(sum(po_lines), 0) as otif_rate
    from gold.supplier_otif_daily
    where {_SUPPLIER_FILTERS}
    group by supplier_id
)
select * from by_supplier order by otif_rate
"""

SUPPLIER_OTIF_TREND = f"""
select expected_date, sum(po_lines_otif) / nullif(sum(po_lines), 0) as otif_rate
from gold.supplier_otif_daily
where {_SUPPLIER_FILTERS}
group by expected_date
order by expected_date
"""

PO_LINE_DETAIL = "gold.po_line_otif"

# PO lines that missed OTIF: late (received in full only after the expected date) or short.


# -- pipeline health ------------------------------------------------------------------------

QUARANTINE_BY_ERROR = """
with rejected as (
    select topic, error, raw_value, quarantined_at from bronze.quarantine
),
by_error as (
    select
        error,
        count(*) as events,
        string_agg(distinct topic, ', ' order by topic) as topics,
        max(quarantined_at) as last_seen,
        arg_max(raw_value, quarantined_at) as sample_message
    from rejected
    group by error
)
select * from by_error order by events desc
"""


def latest_ingested_at(table: str) -> str:
    """Newest ``_ingested_at`` of one bronze table (``table`` comes from the lake catalog)."""
    layer, name = table.split(".", 1)
    quoted = '"' + name.replace('"', '""') + '"'
    return f"select max(_ingested_at) as latest_ingested_at from {layer}.{quoted}"


# -- planning (gold.replenishment_plan, gold.demand_daily, gold.demand_forecast) ---------------

PLAN_LOCATIONS = """
select distinct location_id as value from gold.replenishment_plan order by value
"""

# Most urgent first: pairs to reorder, then the fewest days of cover.
REPLENISHMENT_PLAN = f"""
select location_id, sku, on_hand, on_order, avg_daily_demand, days_of_cover,
    projected_stockout_date, lead_time_days, safety_stock, reorder_point, needs_reorder,
    suggested_order_units, as_of_date
from gold.replenishment_plan
where {_any("location_id", "locations")}
    and (not $reorder_only or needs_reorder)
order by needs_reorder desc, days_of_cover asc nulls last, location_id, sku
"""

SUGGESTED_ORDERS = f"""
select location_id, sku, suggested_order_units, on_hand, on_order, reorder_point,
    projected_stockout_date, as_of_date
from gold.replenishment_plan
where needs_reorder and {_any("location_id", "locations")}
order by location_id, sku
"""

DEMAND_HISTORY_AND_FORECAST = """
select demand_date as day, 'ordered' as series, cast(units_ordered as double) as units
from gold.demand_daily
where location_id = $location_id and sku = $sku and demand_date > $as_of_date - 56
union all
select forecast_date, 'forecast', forecast_units
from gold.demand_forecast
where location_id = $location_id and sku = $sku
order by day
"""

FORECAST_ACCURACY = """
select mae, naive_mae, wape, model
from gold.forecast_accuracy
where location_id = $location_id and sku = $sku
"""

FORECAST_ACCURACY_TOTALS = f"""
select sum(mae) / nullif(sum(naive_mae), 0) as error_vs_naive
from gold.forecast_accuracy
where {_any("location_id", "locations")}
"""

# -- records behind a KPI: the drill-down of a tile or a chart point -----------------------
# Each lists a KPI's own records from its gold detail table, filtered like the KPI, with
# ``reason`` saying why a record counts against it (null when it does not).

RECORDS_ORDER_LINES = f"""
select order_date, order_id, line_no, sku, category, ship_from, channel,
    requested_delivery_date, ordered_units, filled_units, short_units, is_filled,
    case when is_filled then null
        when dispatched_by_requested_units = 0 then 'not dispatched by the requested date'
        else 'short by the requested date' end as reason
from gold.order_line_fulfilment
where is_due and {_ORDER_FILTERS} and {_any("category", "categories")}
order by is_filled, order_date, order_id, line_no
"""

RECORDS_ORDERS = f"""
with due_orders as (
    select *, list_filter([
        case when is_short then 'short' end,
        case when is_late then 'late' end,
        case when is_damaged then 'damaged' end,
        case when has_document_errors then 'documents' end], lambda r: r is not null) as reasons
    from gold.perfect_order_detail
    where is_due and {_ORDER_FILTERS}
)
select order_date, order_id, ship_from, channel, requested_delivery_date, lines, is_perfect,
    nullif(array_to_string(reasons, ', '), '') as reason
from due_orders
where len($reasons::varchar[]) = 0 or list_has_any(reasons, $reasons::varchar[])
order by is_perfect, order_date, order_id
"""

RECORDS_DELIVERED_ORDERS = f"""
select order_date, order_id, ship_from, channel, requested_delivery_date, lines,
    cycle_time_days,
    case when cycle_time_days > $target then 'slower than the target' end as reason
from gold.perfect_order_detail
where cycle_time_days is not null and {_ORDER_FILTERS}
order by cycle_time_days desc, order_id
"""


def _inventory_records(against: str) -> str:
    return f"""
select month, location_id, period_days, cogs, avg_inventory_value, inventory_turns,
    days_of_supply, case when {against} then 'off target' end as reason
from gold.inventory_turns_monthly
where month between $start_date and $end_date and {_any("location_id", "locations")}
order by reason nulls last, location_id
"""


RECORDS_INVENTORY_TURNS = _inventory_records("coalesce(inventory_turns, 0) < $target")
RECORDS_DAYS_OF_SUPPLY = _inventory_records("days_of_supply > $target")

RECORDS_RETURNS = f"""
select return_date, return_id, order_id, line_no, sku, category, reason as return_reason,
    disposition, quantity, refund_amount, processing_cost,
    case when processing_cost > $target then 'costlier than the target' end as reason
from gold.returns_detail
where return_date between $start_date and $end_date and {_any("category", "categories")}
  and {_any("reason", "reasons")}
order by processing_cost desc, return_id
"""

RECORDS_PO_LINES = f"""
select expected_date, po_id, line_no, supplier_id, sku, quantity, received_on_time_units,
    received_units, is_otif, problem as reason
from gold.po_line_otif
where is_due and expected_date between $start_date and $end_date
  and {_any("supplier_id", "suppliers")}
order by is_otif, expected_date, po_id, line_no
"""
