"""How each order was fulfilled: the shared facts behind fill rate, perfect order, cycle time.

kpis.md, shared definitions: *dispatched by day D* sums ``shipment_dispatched`` line
quantities for the (order_id, line_no) dispatched on days ≤ D; *delivered quantity* sums the
lines of shipments that have a ``shipment_delivered`` event. A shipment reported delivered
twice counts its lines once.

:data:`ORDER_FULFILMENT` is a list of SQL common table expressions (without the leading
``WITH``) over the orders placed on the days in scope:

- ``line_fulfilment``, grain order line: ``ordered_units``, ``dispatched_by_requested_units``,
  ``delivered_units``;
- ``orders_fulfilled``, grain order: ``lines``, ``lines_filled``, ``units_ordered``,
  ``units_filled``, ``is_filled`` (every line filled), ``is_fully_delivered``,
  ``last_delivery_time`` and ``has_only_on_time_clean_deliveries`` (every delivery on a day
  ≤ the requested date, ``condition = ok`` and ``documents_ok``; true without deliveries),
  and the reasons an order is not perfect: ``is_late``, ``is_damaged``,
  ``has_document_errors`` (some delivery was), besides not being fully delivered.
"""

from __future__ import annotations

ORDER_GRAIN: tuple[str, ...] = ("order_date", "ship_from", "channel")

_ORDER = "order_id, order_date, order_time, ship_from, channel, requested_delivery_date"

ORDER_FULFILMENT = f"""
orders AS (
    SELECT * FROM order_lines WHERE IN_SCOPE(order_date)
),
delivered_shipments AS (
    SELECT DISTINCT shipment_id FROM deliveries
    WHERE order_id IN (SELECT order_id FROM orders)
),
shipped AS (
    SELECT s.order_id, s.line_no, s.quantity AS shipped_units, s.dispatch_date,
        d.shipment_id IS NOT NULL AS is_delivered
    FROM shipment_lines AS s
    LEFT JOIN delivered_shipments AS d ON d.shipment_id = s.shipment_id
    WHERE s.order_id IN (SELECT order_id FROM orders)
),
line_fulfilment AS (
    SELECT o.order_id, o.order_date, o.order_time, o.ship_from, o.channel,
        o.requested_delivery_date, o.line_no, o.sku, o.quantity AS ordered_units,
        coalesce(sum(CASE WHEN s.dispatch_date <= o.requested_delivery_date
            THEN s.shipped_units END), 0) AS dispatched_by_requested_units,
        coalesce(sum(CASE WHEN s.is_delivered THEN s.shipped_units END), 0) AS delivered_units
    FROM orders AS o
    LEFT JOIN shipped AS s ON s.order_id = o.order_id AND s.line_no = o.line_no
    GROUP BY o.order_id, o.order_date, o.order_time, o.ship_from, o.channel,
        o.requested_delivery_date, o.line_no, o.sku, o.quantity
),
order_totals AS (
    SELECT {_ORDER},
        count(*) AS lines,
        count(CASE WHEN dispatched_by_requested_units >= ordered_units THEN 1 END)
            AS lines_filled,
        sum(ordered_units) AS units_ordered,
        sum(least(dispatched_by_requested_units, ordered_units)) AS units_filled,
        bool_and(dispatched_by_requested_units >= ordered_units) AS is_filled,
        bool_and(delivered_units >= ordered_units) AS is_fully_delivered
    FROM line_fulfilment
    GROUP BY {_ORDER}
),
delivery_facts AS (
    SELECT d.order_id, max(d.delivery_time) AS last_delivery_time,
        bool_and(coalesce(d.delivery_date <= o.requested_delivery_date
            AND d.condition = 'ok' AND d.documents_ok, FALSE)) AS is_clean,
        bool_or(coalesce(d.delivery_date > o.requested_delivery_date, TRUE)) AS is_late,
        bool_or(coalesce(d.condition <> 'ok', TRUE)) AS is_damaged,
        bool_or(NOT coalesce(d.documents_ok, FALSE)) AS has_document_errors
    FROM deliveries AS d
    JOIN order_totals AS o ON o.order_id = d.order_id
    GROUP BY d.order_id
),
orders_fulfilled AS (
    SELECT o.*, f.last_delivery_time,
        coalesce(f.is_clean, TRUE) AS has_only_on_time_clean_deliveries,
        coalesce(f.is_late, FALSE) AS is_late,
        coalesce(f.is_damaged, FALSE) AS is_damaged,
        coalesce(f.has_document_errors, FALSE) AS has_document_errors
    FROM order_totals AS o
    LEFT JOIN delivery_facts AS f ON f.order_id = o.order_id
)
"""
