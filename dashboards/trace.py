"""Track & trace: every event of one order or purchase order, as it landed in bronze.

Bronze keeps each accepted event with its Kafka coordinates (silver has deduplicated them),
so a history read here shows producer retries and late arrivals as they happened. The
entities link through the contract's fields: shipments (dispatched and delivered) and
returns carry ``order_id``; PO receipts carry ``po_id``. Rejected events have no typed
columns: a quarantined row belongs to a history when its raw message mentions one of the
history's ids.

Ids are user input and always bound as DuckDB parameters; the SQL text is built from the
constants below only (a table missing from a young lake leaves its part out).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, get_args

import pyarrow as pa

from scm.query import LakeQuery

__all__ = [
    "KINDS",
    "KIND_LABELS",
    "QUARANTINE_SCHEMA",
    "QUERY_PARAMETERS",
    "SEARCH_SCHEMA",
    "TIMELINE_SCHEMA",
    "Kind",
    "OrderSearch",
    "Trace",
    "event_tables",
    "find",
    "order_dates",
    "search_orders",
]

Kind = Literal["order", "shipment", "return", "po"]
Root = Literal["order", "po"]

KINDS: tuple[Kind, ...] = get_args(Kind)
KIND_LABELS: dict[Kind, str] = {
    "order": "Order",
    "shipment": "Shipment",
    "return": "Return",
    "po": "Purchase order",
}
# The page's URL parameters (``trace?order_id=...``), one per kind of id.
QUERY_PARAMETERS: dict[Kind, str] = {
    "order": "order_id",
    "shipment": "shipment_id",
    "return": "return_id",
    "po": "po_id",
}
EVENT_TABLES = ("bronze.orders", "bronze.shipments", "bronze.returns", "bronze.procurement")
QUARANTINE = "bronze.quarantine"
SEARCH_LIMIT = 500

_TIMESTAMP = pa.timestamp("us", tz="UTC")
TIMELINE_SCHEMA = pa.schema(
    [
        ("event_time", _TIMESTAMP),
        ("step", pa.string()),
        ("reference", pa.string()),
        ("details", pa.string()),
        ("units", pa.int64()),
        ("is_duplicate", pa.bool_()),
        ("event_id", pa.string()),
        ("source", pa.string()),
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("ingested_at", _TIMESTAMP),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("quarantined_at", _TIMESTAMP),
        ("error", pa.string()),
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("key", pa.string()),
        ("raw_value", pa.string()),
    ]
)
SEARCH_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("placed_at", _TIMESTAMP),
        ("customer_id", pa.string()),
        ("channel", pa.string()),
        ("ship_from", pa.string()),
        ("lines", pa.int64()),
        ("units", pa.int64()),
        ("skus", pa.string()),
    ]
)


def _lines_text(column: str, *, price: str | None = None) -> str:
    """SQL listing a ``lines`` array as ``line 1 SKU-A ×10 @ 25.00, ...`` (code constants only)."""
    item = "'line ' || l.line_no || ' ' || l.sku || ' ×' || l.quantity"
    if price is not None:
        item += f" || ' @ ' || printf('%.2f', l.{price}::double)"
    return f"array_to_string(list_transform({column}, lambda l: {item}), ', ')"


def _units(column: str) -> str:
    return f"list_sum(list_transform({column}, lambda l: l.quantity))::bigint"


def _money(column: str) -> str:
    return f"printf('%.2f', {column}::double) || ' ' || currency"


_COORDINATES = """
    event_id,
    source,
    _topic as topic,
    _partition as "partition",
    _offset as "offset",
    _ingested_at as ingested_at
"""

# -- one part per bronze table: the events of one order (or PO), in the timeline's columns --

ORDER_PLACED = f"""
select
    event_time,
    'placed' as step,
    1 as step_rank,
    order_id as reference,
    concat_ws(
        ' · ',
        'customer ' || customer_id,
        channel || ' from ' || ship_from,
        'requested ' || requested_delivery_date,
        {_lines_text("lines", price="unit_price")} || ' ' || currency
    ) as details,
    {_units("lines")} as units,
    {_COORDINATES}
from bronze.orders
where order_id = $order_id
"""

# A delivery event names its shipment only: its lines are those the shipment dispatched.
ORDER_SHIPMENTS = f"""
with shipment_events as (
    select * from bronze.shipments where order_id = $order_id
),

dispatched as (
    select shipment_id, arg_min(lines, _ingested_at) as lines
    from shipment_events
    where event_type = 'shipment_dispatched'
    group by shipment_id
)

select
    event_time,
    case when event_type = 'shipment_dispatched' then 'dispatched' else 'delivered' end as step,
    case when event_type = 'shipment_dispatched' then 2 else 3 end as step_rank,
    shipment_id as reference,
    case
        when event_type = 'shipment_dispatched' then concat_ws(
            ' · ', carrier || ' from ' || ship_from, {_lines_text("shipment_events.lines")}
        )
        else concat_ws(
            ' · ',
            'condition ' || condition,
            case when documents_ok then 'documents ok' else 'documents not ok' end,
            {_lines_text("dispatched.lines")}
        )
    end as details,
    case
        when event_type = 'shipment_dispatched' then {_units("shipment_events.lines")}
        else {_units("dispatched.lines")}
    end as units,
    {_COORDINATES}
from shipment_events
left join dispatched using (shipment_id)
"""

ORDER_RETURNS = f"""
select
    event_time,
    'returned' as step,
    4 as step_rank,
    return_id as reference,
    concat_ws(
        ' · ',
        'reason ' || reason,
        disposition,
        'line ' || line_no || ' ' || sku || ' ×' || quantity,
        'refund ' || {_money("refund_amount")},
        'cost ' || {_money("processing_cost")}
    ) as details,
    quantity::bigint as units,
    {_COORDINATES}
from bronze.returns
where order_id = $order_id
"""

PO_EVENTS = f"""
select
    event_time,
    case when event_type = 'po_created' then 'created' else 'received' end as step,
    case when event_type = 'po_created' then 1 else 2 end as step_rank,
    po_id as reference,
    case
        when event_type = 'po_created' then concat_ws(
            ' · ',
            'supplier ' || supplier_id || ' to ' || ship_to,
            'expected ' || expected_date,
            {_lines_text("lines", price="unit_cost")} || ' ' || currency
        )
        else {_lines_text("lines")}
    end as details,
    {_units("lines")} as units,
    {_COORDINATES}
from bronze.procurement
where po_id = $po_id
"""

_ORDER_PARTS = {
    "bronze.orders": ORDER_PLACED,
    "bronze.shipments": ORDER_SHIPMENTS,
    "bronze.returns": ORDER_RETURNS,
}
_PO_PARTS = {"bronze.procurement": PO_EVENTS}

# A producer retry resends the same event_id: the first copy to land is the event, later
# copies are marked (silver counts the event once).
_TIMELINE = """
with events as (
    {parts}
),

marked as (
    select
        *,
        row_number() over (
            partition by topic, event_id order by ingested_at, "partition", "offset"
        ) > 1 as is_duplicate
    from events
)

select
    event_time, step, reference, details, units, is_duplicate,
    event_id, source, topic, "partition", "offset", ingested_at
from marked
order by event_time, step_rank, reference, ingested_at, "partition", "offset"
"""

# -- from any id to the order (or PO) whose history it belongs to -------------------------

ORDER_OF_SHIPMENT = """
select order_id from bronze.shipments
where shipment_id = $id and order_id is not null
order by _ingested_at
limit 1
"""
ORDER_OF_RETURN = """
select order_id from bronze.returns
where return_id = $id and order_id is not null
order by _ingested_at
limit 1
"""

# The id must stand alone in the message: O-1 is not mentioned by a message about O-10.
QUARANTINED = """
with ids as (
    select unnest($ids::varchar[]) as id
),

mentioning as (
    select quarantine.*
    from bronze.quarantine as quarantine
    where exists (
        select 1
        from ids
        where quarantine.key = ids.id
           or (
               contains(quarantine.raw_value, ids.id)
               and regexp_matches(
                   quarantine.raw_value,
                   '(^|[^A-Za-z0-9_-])' || regexp_escape(ids.id) || '($|[^A-Za-z0-9_-])'
               )
           )
    )
)

select quarantined_at, error, topic, "partition", "offset", key, raw_value
from mentioning
order by quarantined_at, topic, "partition", "offset"
"""

# -- search: the orders of a customer or with a sku, placed between two days --------------

ORDER_DATES = """
select min(event_time)::date as first_date, max(event_time)::date as last_date
from bronze.orders
"""

SEARCH_ORDERS = """
with placed as (
    select *
    from bronze.orders
    where event_time >= $start_time
      and event_time < $end_time
      and ($customer_id::varchar is null or customer_id = $customer_id::varchar)
      and (
          $sku::varchar is null
          or list_contains(list_transform(lines, lambda l: l.sku), $sku::varchar)
      )
    qualify row_number() over (
        partition by order_id order by _ingested_at, _partition, _offset
    ) = 1
)

select
    order_id,
    event_time as placed_at,
    customer_id,
    channel,
    ship_from,
    len(lines)::bigint as lines,
    list_sum(list_transform(lines, lambda l: l.quantity))::bigint as units,
    array_to_string(list_sort(list_distinct(list_transform(lines, lambda l: l.sku))), ', ') as skus
from placed
order by placed_at, order_id
limit $limit
"""


@dataclass(frozen=True)
class Trace:
    """The history an id belongs to: the root order (or PO) and its events, in time order.

    ``root_id`` is None when the id was found in quarantine only (no accepted event names
    it, so its order is unknown).
    """

    kind: Kind
    looked_up: str
    root: Root
    root_id: str | None
    timeline: pa.Table
    quarantined: pa.Table


@dataclass(frozen=True)
class OrderSearch:
    """Orders placed between two UTC days (inclusive) by a customer, with a sku, or both."""

    start: dt.date
    end: dt.date
    customer_id: str | None = None
    sku: str | None = None

    def __post_init__(self) -> None:
        if not (self.customer_id or self.sku):
            raise ValueError("an order search needs a customer_id, a sku or both")
        if self.end < self.start:
            raise ValueError(f"the search ends ({self.end}) before it starts ({self.start})")

    def params(self) -> dict[str, object]:
        midnight = dt.time(tzinfo=dt.UTC)
        return {
            "start_time": dt.datetime.combine(self.start, midnight),
            "end_time": dt.datetime.combine(self.end + dt.timedelta(days=1), midnight),
            "customer_id": self.customer_id or None,
            "sku": self.sku or None,
            "limit": SEARCH_LIMIT,
        }


def event_tables(lake: LakeQuery) -> list[str]:
    """The bronze event tables the lake has now (a young lake may miss some)."""
    return [name for name in EVENT_TABLES if lake.has_table(name)]


def find(lake: LakeQuery, kind: Kind, id: str) -> Trace | None:
    """The whole history of the order or PO that ``id`` (of ``kind``) belongs to; None when
    neither an accepted nor a quarantined event mentions it."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is invalid: use one of {', '.join(KINDS)}")
    looked_up = id.strip()
    if not looked_up:
        return None
    root: Root = "po" if kind == "po" else "order"
    root_id = _root_id(lake, kind, looked_up)
    timeline = _timeline(lake, root, root_id) if root_id else TIMELINE_SCHEMA.empty_table()
    mentioned = {looked_up, *(r for r in timeline.column("reference").to_pylist() if r)}
    quarantined = _quarantined(lake, sorted(mentioned))
    if timeline.num_rows == 0 and quarantined.num_rows == 0:
        return None
    return Trace(
        kind, looked_up, root, root_id if timeline.num_rows else None, timeline, quarantined
    )


def search_orders(lake: LakeQuery, search: OrderSearch) -> pa.Table:
    """One row per matching order (first copy of each), oldest first, at most 500."""
    if not lake.has_table("bronze.orders"):
        return SEARCH_SCHEMA.empty_table()
    return lake.query(SEARCH_ORDERS, search.params()).cast(SEARCH_SCHEMA)


def order_dates(lake: LakeQuery) -> tuple[dt.date, dt.date] | None:
    """First and last UTC day an order was placed; None before the first order."""
    if not lake.has_table("bronze.orders"):
        return None
    row = lake.query(ORDER_DATES).to_pylist()[0]
    first, last = row["first_date"], row["last_date"]
    if not isinstance(first, dt.date) or not isinstance(last, dt.date):
        return None
    return first, last


def _root_id(lake: LakeQuery, kind: Kind, id: str) -> str | None:
    """The order (or PO) id the history is about: a shipment or return names its order."""
    if kind in ("order", "po"):
        return id
    table, sql = (
        ("bronze.shipments", ORDER_OF_SHIPMENT)
        if kind == "shipment"
        else ("bronze.returns", ORDER_OF_RETURN)
    )
    if not lake.has_table(table):
        return None
    rows = lake.query(sql, {"id": id}).column("order_id").to_pylist()
    return str(rows[0]) if rows else None


def _timeline(lake: LakeQuery, root: Root, root_id: str) -> pa.Table:
    parts = _ORDER_PARTS if root == "order" else _PO_PARTS
    present = [sql for table, sql in parts.items() if lake.has_table(table)]
    if not present:
        return TIMELINE_SCHEMA.empty_table()
    union = "\n    union all by name\n".join(f"select * from ({sql})" for sql in present)
    parameter = "order_id" if root == "order" else "po_id"
    sql = _TIMELINE.format(parts=union)
    return lake.query(sql, {parameter: root_id}).cast(TIMELINE_SCHEMA)


def _quarantined(lake: LakeQuery, ids: list[str]) -> pa.Table:
    if not ids or not lake.has_table(QUARANTINE):
        return QUARANTINE_SCHEMA.empty_table()
    return lake.query(QUARANTINED, {"ids": ids}).cast(QUARANTINE_SCHEMA)
