"""The company's operations as a discrete-event simulation.

Actions (an order arriving, a dispatch wave, a delivery, a PO receipt, a cycle count...)
wait in one time-ordered queue; each runs at its time, changes the state and emits the
events that describe what happened, stamped with that time. So the event stream comes out
in event-time order and is consistent by construction:

- stock is *reserved* when an order line is allocated and leaves the shelf when it is
  dispatched; what cannot be allocated is backordered and served first-come first-served
  when a PO receipt, a transfer or a restocked return brings stock in;
- every dispatched unit has an ``inventory_movement`` (shipment, negative) with the same
  time, so on-hand never goes negative and cycle counts report the true level;
- deliveries follow dispatches, returns follow deliveries and never exceed what was
  delivered for the order line.

Movements happen on even seconds and cycle counts on odd ones, so no snapshot shares a
timestamp with a movement of the same (location, sku) and "deltas after the snapshot" is
never ambiguous downstream.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import time as _time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator import events
from simulator.demand import DAY_SECONDS, Demand, OrderRequest
from simulator.events import Event
from simulator.sampling import Weighted
from simulator.world import Product, Supplier, World

HOUR = 3600
# Dispatch waves at each DC (seconds after midnight UTC).
WAVES = (8 * HOUR, 14 * HOUR, 20 * HOUR)
REVIEW_TIME = 1 * HOUR  # daily replenishment review
# Cycle counting runs through the evening: each counted sku at its own (even) second,
# its snapshot one second later.
COUNT_HOURS = (20 * HOUR, 23 * HOUR)
LOST_SHIPMENT_RATE = 0.002
# B2B orders leave on pallets of at most this many lines, one shipment each.
LINES_PER_PALLET = 6
SPLIT_SHIPMENT_RATE = 0.06  # consumer orders shipped in two parcels although all in stock
TRANSFER_RATE = 0.5  # chance a DC with backorders asks a sister DC for surplus stock
COUNT_ADJUSTMENT_RATE = 0.03  # a cycle count finds a discrepancy
CYCLE_DAYS_BY_ABC = ((0.2, 1), (0.5, 3), (1.0, 7))  # popularity quantile -> count every N days


@dataclass(frozen=True)
class Carrier:
    name: str
    transit_days: Weighted[int]
    damage_rate: float


CARRIERS = {
    "UPS": Carrier("UPS", Weighted.of({1: 55, 2: 35, 3: 7, 4: 3}), 0.015),
    "FedEx": Carrier("FedEx", Weighted.of({1: 60, 2: 30, 3: 7, 5: 3}), 0.012),
    "DHL": Carrier("DHL", Weighted.of({1: 45, 2: 38, 3: 10, 4: 5, 6: 2}), 0.02),
    "XPO Freight": Carrier("XPO Freight", Weighted.of({2: 40, 3: 35, 4: 15, 6: 10}), 0.025),
    # Same-day courier: transit 0 means a few hours after dispatch.
    "Courier": Carrier("Courier", Weighted.of({0: 85, 1: 15}), 0.01),
}
EXPRESS_CARRIER = "Courier"
REFUSAL_RATE = 0.08  # courier deliveries refused at the door and taken back the same day
CARRIER_MIX = {
    "online": Weighted.of({"UPS": 40, "FedEx": 35, "DHL": 25}),
    "store": Weighted.of({"UPS": 50, "DHL": 50}),
    "b2b": Weighted.of({"XPO Freight": 70, "UPS": 30}),
}
RETURN_REASONS = Weighted.of({"not_needed": 45, "defective": 30, "wrong_item": 25})
DISPOSITIONS = {
    "damaged": Weighted.of({"scrap": 60, "refurbish": 40}),
    "defective": Weighted.of({"refurbish": 55, "scrap": 45}),
    "wrong_item": Weighted.of({"restock": 85, "refurbish": 15}),
    "not_needed": Weighted.of({"restock": 85, "refurbish": 15}),
    "late_delivery": Weighted.of({"restock": 85, "refurbish": 15}),
}
BASE_RETURN_RATE = {"online": 0.10, "store": 0.05, "b2b": 0.02}
DOCUMENT_ERROR_RATE = {"online": 0.01, "store": 0.01, "b2b": 0.05}


def random_uuid(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (``uuid.UUID`` is slow in bulk)."""
    n = rng.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _even(t: int) -> int:
    return t - (t & 1)


class Clock:
    """Turns simulation seconds into event timestamps and dates.

    History: simulation time *is* UTC time. Live: from ``live_from`` on, simulation time
    runs ``speedup`` times faster than the wall clock; :meth:`rebase` changes the speed-up
    without a jump, so the mapping stays continuous and increasing. Live timestamps carry
    microseconds, which keeps distinct simulation seconds apart.
    """

    def __init__(self) -> None:
        self.live_from: int | None = None
        self.anchor_simulation = 0.0
        self.anchor_wall = 0.0
        self.speedup = 1.0
        self._dates: dict[int, str] = {}

    def go_live(self, live_from: int, wall_start: float, speedup: float) -> None:
        self.live_from = live_from
        self.rebase(live_from, wall_start, speedup)

    def rebase(self, simulation: float, wall: float, speedup: float) -> None:
        """From (``simulation``, ``wall``) on, run ``speedup`` times faster than real time."""
        self.anchor_simulation, self.anchor_wall, self.speedup = simulation, wall, speedup

    def wall(self, t: float) -> float:
        if self.live_from is None or t < self.live_from:
            return float(t)
        return self.anchor_wall + (t - self.anchor_simulation) / self.speedup

    def simulation_time(self, wall: float) -> float:
        """The simulation second that ``wall`` corresponds to (live only)."""
        return self.anchor_simulation + (wall - self.anchor_wall) * self.speedup

    def timestamp(self, t: int) -> str:
        if self.live_from is None or t < self.live_from:
            return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(t))
        wall = self.wall(t)
        seconds = math.floor(wall)
        micros = min(999_999, int((wall - seconds) * 1_000_000))
        return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(seconds)) + f".{micros:06d}Z"

    def date(self, t: int) -> str:
        day = int(self.wall(t) // DAY_SECONDS)
        text = self._dates.get(day)
        if text is None:
            text = self._dates[day] = _time.strftime("%Y-%m-%d", _time.gmtime(day * DAY_SECONDS))
        return text


class Identifiers:
    """Deterministic ids: event ids from a seeded stream, business ids from counters.

    Business ids carry a short tag of the run's namespace (seed, start, volume), so two
    different runs do not reuse an order or shipment id with another meaning.
    """

    def __init__(self, namespace: str) -> None:
        self.tag = hashlib.sha256(namespace.encode()).hexdigest()[:4].upper()
        self._counters: dict[str, int] = {}
        self.reseed_event_ids(namespace)

    def reseed_event_ids(self, namespace: str) -> None:
        self._rng = random.Random(f"{namespace}:event-ids")

    def event_id(self) -> str:
        return random_uuid(self._rng)

    def next(self, prefix: str) -> str:
        number = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = number
        return f"{prefix}-{self.tag}-{number:06d}"


@dataclass(eq=False)
class OrderLine:
    line_no: int
    sku: str
    quantity: int
    unit_price: float
    allocated: int = 0  # reserved or already shipped
    delivered: int = 0
    returned: int = 0  # returns received or on their way


@dataclass(eq=False)
class Order:
    order_id: str
    channel: str
    ship_from: str
    requested_date: str
    lines: list[OrderLine]
    express: bool = False


@dataclass(eq=False)
class Shipment:
    shipment_id: str
    order: Order
    lines: dict[int, int]  # line_no -> quantity


@dataclass(eq=False)
class PurchaseOrder:
    po_id: str
    ship_to: str
    supplier: Supplier
    lines: list[tuple[int, str, int]]  # (line_no, sku, quantity)
    received: dict[int, int] = field(default_factory=dict)  # line_no -> quantity so far


@dataclass(eq=False)
class Stock:
    """One sku at one DC."""

    on_hand: int
    reorder_point: int
    order_up_to: int
    reserved: int = 0  # allocated to orders, not yet dispatched
    on_order: int = 0  # open PO quantity
    inbound: int = 0  # transfers on their way in
    backordered: int = 0  # ordered, not yet allocated
    backorders: deque[tuple[Order, OrderLine]] = field(default_factory=deque)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def position(self) -> int:
        return self.on_hand - self.reserved - self.backordered + self.on_order + self.inbound


Action = Callable[..., None]


class SupplyChain:
    """The simulated company in motion; :meth:`run_until` advances it and returns events."""

    def __init__(
        self,
        world: World,
        demand: Demand,
        *,
        rng: random.Random,
        ids: Identifiers,
        clock: Clock,
    ) -> None:
        self.world = world
        self.demand = demand
        self.rng = rng
        self.ids = ids
        self.clock = clock
        self.orders_placed = 0
        self._queue: list[tuple[int, int, Action, tuple[Any, ...]]] = []
        self._sequence = 0
        self._emitted: list[Event] = []
        self._stock: dict[tuple[str, str], Stock] = {}
        self._count_every: dict[str, int] = {}
        ranked = sorted(world.products, key=lambda p: p.popularity_rank)
        for index, product in enumerate(ranked):
            quantile = (index + 1) / len(ranked)
            self._count_every[product.sku] = next(
                days for limit, days in CYCLE_DAYS_BY_ABC if quantile <= limit
            )

    # -- running -------------------------------------------------------------------------

    def _at(self, t: int, action: Action, *args: Any) -> None:
        heapq.heappush(self._queue, (t, self._sequence, action, args))
        self._sequence += 1

    def run_until(self, end: float) -> list[Event]:
        """Run every action due before ``end``; return their events in time order."""
        queue = self._queue
        while queue and queue[0][0] < end:
            t, _, action, args = heapq.heappop(queue)
            action(t, *args)
        emitted, self._emitted = self._emitted, []
        return emitted

    def time_of_message(self, messages: float) -> float | None:
        """When, in simulation time, about ``messages`` more messages will have been emitted.

        A forecast from the queued actions (live mode steers its speed with it); None when
        too little is queued to tell.
        """
        expected = 0.0
        for t, _, action, args in heapq.nsmallest(int(messages) + 8, self._queue):
            expected += self._expected_messages(action, args)
            if expected >= messages:
                return float(t)
        return None

    def _expected_messages(self, action: Action, args: tuple[Any, ...]) -> float:
        name = getattr(action, "__name__", "")
        if name == "_dispatch":
            return 1 + len(args[1])  # the shipment and one movement per line
        if name == "_receive_po":
            return 1 + sum(1 for quantity in args[1].values() if quantity)
        if name in ("_begin_day", "_adjust_counted"):
            return 0.0
        return 1.0

    def _emit(self, event: Event) -> None:
        self._emitted.append(event)

    def _envelope(self, t: int) -> dict[str, str]:
        return {"event_id": self.ids.event_id(), "event_time": self.clock.timestamp(t)}

    # -- opening position ----------------------------------------------------------------

    def open(self, start: int) -> None:
        """Start trading at ``start``: count every (DC, sku) and carry over open POs."""
        rng = self.rng
        expected_units = self.demand.expected_daily_units()
        for dc in self.world.dcs:
            carried: dict[str, list[tuple[Product, int]]] = {}
            for product in self.world.products:
                supplier = self.world.supplier[product.supplier_id]
                daily = max(expected_units[(dc.location_id, product.sku)], 0.05)
                # Reorder point: demand over lead time plus a day's review, and safety stock
                # for lumpy demand (a B2B line is ~6 units at once, hence the variance).
                cover = daily * (supplier.lead_time_days + 1)
                reorder_point = math.ceil(cover + 1.5 * math.sqrt(cover * 6))
                order_up_to = reorder_point + max(product.case_pack, math.ceil(daily * 14))
                on_hand = rng.randint(reorder_point // 2, order_up_to)
                stock = Stock(on_hand, reorder_point, order_up_to)
                self._stock[(dc.location_id, product.sku)] = stock
                self._emit(
                    events.inventory_snapshot(
                        **self._envelope(start),
                        location_id=dc.location_id,
                        sku=product.sku,
                        on_hand=on_hand,
                    )
                )
                if stock.position <= reorder_point:
                    carried.setdefault(product.supplier_id, []).append(
                        (product, self._order_quantity(stock, product))
                    )
            for supplier_id, lines in carried.items():
                supplier = self.world.supplier[supplier_id]
                # Ordered before we started watching: due within one lead time.
                due_in = rng.randint(0, supplier.lead_time_days)
                self._create_po(start, dc.location_id, supplier, lines, due_in_days=due_in)
        self._at(start, self._begin_day, start - start % DAY_SECONDS, start)

    # -- the daily rhythm ----------------------------------------------------------------

    def _begin_day(self, t: int, day_start: int, not_before: int) -> None:
        for request in self.demand.orders_for_day(day_start):
            if request.time >= not_before:
                self._at(request.time, self._place_order, request)
        day_number = day_start // DAY_SECONDS
        for index, dc in enumerate(self.world.dcs):
            review = day_start + REVIEW_TIME + 2 * index
            if review >= not_before:
                self._at(review, self._review, dc.location_id)
            if day_start + COUNT_HOURS[0] < not_before:
                continue
            count_id = self.ids.next("CNT")
            for product in self.world.products:
                if (product.popularity_rank + index + day_number) % self._count_every[product.sku]:
                    continue
                first, last = COUNT_HOURS
                count = day_start + first + 2 * self.rng.randrange((last - first) // 2)
                self._at(count, self._adjust_counted, dc.location_id, product.sku, count_id)
                self._at(count + 1, self._report_count, dc.location_id, product.sku)
        next_day = day_start + DAY_SECONDS
        self._at(next_day, self._begin_day, next_day, next_day)

    # -- orders and shipments ------------------------------------------------------------

    def _place_order(self, t: int, request: OrderRequest) -> None:
        self.orders_placed += 1
        dc = self.world.dc_of_region[request.customer.region]
        order = Order(
            order_id=self.ids.next("ORD"),
            channel=request.channel,
            ship_from=dc,
            requested_date=self.clock.date(t + request.service_days * DAY_SECONDS),
            lines=[
                OrderLine(number, sku, quantity, price)
                for number, (sku, quantity, price) in enumerate(request.lines, start=1)
            ],
            express=request.express,
        )
        self._emit(
            events.order_placed(
                **self._envelope(t),
                order_id=order.order_id,
                customer_id=request.customer.customer_id,
                channel=order.channel,
                ship_from=dc,
                requested_delivery_date=order.requested_date,
                lines=[(ln.line_no, ln.sku, ln.quantity, ln.unit_price) for ln in order.lines],
            )
        )
        allocated: dict[int, int] = {}
        for line in order.lines:
            stock = self._stock[(dc, line.sku)]
            quantity = min(line.quantity, stock.available)
            if quantity:
                stock.reserved += quantity
                line.allocated += quantity
                allocated[line.line_no] = quantity
            if quantity < line.quantity:
                stock.backorders.append((order, line))
                stock.backordered += line.quantity - quantity
        if allocated:
            self._plan_shipments(t, order, allocated)

    def _next_wave(self, t: int) -> int:
        day_start = t - t % DAY_SECONDS
        for days in range(3):
            for wave in WAVES:
                if day_start + days * DAY_SECONDS + wave >= t:
                    return day_start + days * DAY_SECONDS + wave
        raise AssertionError("unreachable")

    def _plan_shipments(self, t: int, order: Order, allocated: dict[int, int]) -> None:
        """Schedule dispatch of allocated quantities: pallets for B2B, parcels otherwise."""
        rng = self.rng
        line_numbers = list(allocated)
        if order.channel == "b2b":
            groups = [
                line_numbers[i : i + LINES_PER_PALLET]
                for i in range(0, len(line_numbers), LINES_PER_PALLET)
            ]
        elif len(line_numbers) > 1 and rng.random() < SPLIT_SHIPMENT_RATE:
            cut = rng.randint(1, len(line_numbers) - 1)
            groups = [line_numbers[:cut], line_numbers[cut:]]
        else:
            groups = [line_numbers]
        if order.express:
            wave = self._next_wave(t + HOUR)
        else:
            wave = self._next_wave(t + rng.randint(1, 3) * HOUR)
            if rng.random() < 0.05:  # a backlog at the DC: one wave later
                wave = self._next_wave(wave + 1)
        for index, group in enumerate(groups):
            if index and rng.random() < 0.3:
                wave = self._next_wave(wave + 1)
            dispatch = wave + 2 * rng.randrange(1500)  # the wave takes up to ~50 minutes
            self._at(dispatch, self._dispatch, order, {n: allocated[n] for n in group})

    def _dispatch(self, t: int, order: Order, lines: dict[int, int]) -> None:
        rng = self.rng
        shipment = Shipment(self.ids.next("SHP"), order, lines)
        carrier = CARRIERS[
            EXPRESS_CARRIER if order.express else CARRIER_MIX[order.channel].pick(rng)
        ]
        order_lines = [order.lines[n - 1] for n in lines]
        self._emit(
            events.shipment_dispatched(
                **self._envelope(t),
                shipment_id=shipment.shipment_id,
                order_id=order.order_id,
                ship_from=order.ship_from,
                carrier=carrier.name,
                lines=[(ln.line_no, ln.sku, lines[ln.line_no]) for ln in order_lines],
            )
        )
        for line in order_lines:
            quantity = lines[line.line_no]
            stock = self._stock[(order.ship_from, line.sku)]
            stock.on_hand -= quantity
            stock.reserved -= quantity
            self._move(t, order.ship_from, line.sku, -quantity, "shipment", shipment.shipment_id)
        if rng.random() < LOST_SHIPMENT_RATE:
            return  # lost in transit: never delivered
        transit_days = carrier.transit_days.pick(rng)
        if transit_days == 0:
            delivered = _even(t + rng.randint(HOUR, 5 * HOUR))
        else:
            arrival_day = t - t % DAY_SECONDS + transit_days * DAY_SECONDS
            delivered = max(arrival_day + 8 * HOUR + 2 * rng.randrange(6 * HOUR), t + 2 * HOUR)
        self._at(delivered, self._deliver, shipment, carrier)

    def _deliver(self, t: int, shipment: Shipment, carrier: Carrier) -> None:
        rng = self.rng
        order = shipment.order
        damaged = rng.random() < carrier.damage_rate
        self._emit(
            events.shipment_delivered(
                **self._envelope(t),
                shipment_id=shipment.shipment_id,
                order_id=order.order_id,
                condition="damaged" if damaged else "ok",
                documents_ok=rng.random() >= DOCUMENT_ERROR_RATE[order.channel],
            )
        )
        late = self.clock.date(t) > order.requested_date
        for line_no, quantity in shipment.lines.items():
            line = order.lines[line_no - 1]
            line.delivered += quantity
            self._maybe_return(
                t, order, line, quantity, damaged=damaged, late=late, courier=carrier.name
            )

    # -- returns -------------------------------------------------------------------------

    def _maybe_return(
        self,
        t: int,
        order: Order,
        line: OrderLine,
        delivered: int,
        *,
        damaged: bool,
        late: bool,
        courier: str,
    ) -> None:
        rng = self.rng
        product = self.world.product[line.sku]
        rate = BASE_RETURN_RATE[order.channel] * product.return_factor
        if courier == EXPRESS_CARRIER and rng.random() < REFUSAL_RATE:
            # Refused at the door: the courier brings it back within hours.
            reason = "wrong_item" if rng.random() < 0.3 else "not_needed"
            arrives = _even(t + rng.randint(HOUR, 4 * HOUR))
            quantity = min(delivered, line.delivered - line.returned)
            line.returned += quantity
            self._at(arrives, self._receive_return, order, line, quantity, reason)
            return
        if damaged and rng.random() < 0.35:
            reason, delay_days = "damaged", rng.randint(0, 3)
        elif late and rng.random() < 0.03:
            reason, delay_days = "late_delivery", rng.randint(1, 10)
        elif rng.random() < rate:
            reason = RETURN_REASONS.pick(rng)
            delay_days = rng.randint(2, 25)
        else:
            return
        if order.channel == "b2b" or rng.random() < 0.2:
            quantity = rng.randint(1, delivered)
        else:
            quantity = delivered
        quantity = min(quantity, line.delivered - line.returned)
        if quantity <= 0:
            return
        line.returned += quantity
        arrives = _even(t + delay_days * DAY_SECONDS + rng.randint(HOUR, 10 * HOUR))
        self._at(arrives, self._receive_return, order, line, quantity, reason)

    def _receive_return(
        self, t: int, order: Order, line: OrderLine, quantity: int, reason: str
    ) -> None:
        rng = self.rng
        disposition = DISPOSITIONS[reason].pick(rng)
        refund = quantity * line.unit_price
        if order.channel == "b2b" and reason == "not_needed":
            refund *= 0.85  # restocking fee
        reverse_freight = rng.uniform(25, 60) if order.channel == "b2b" else rng.uniform(6, 12)
        cost = rng.uniform(3, 6) + quantity * rng.uniform(0.4, 1.2) + reverse_freight
        if disposition == "scrap":
            cost += quantity * 1.0  # disposal
        return_id = self.ids.next("RMA")
        self._emit(
            events.return_received(
                **self._envelope(t),
                return_id=return_id,
                order_id=order.order_id,
                line_no=line.line_no,
                sku=line.sku,
                quantity=quantity,
                reason=reason,
                disposition=disposition,
                refund_amount=refund,
                processing_cost=cost,
            )
        )
        if disposition == "restock":
            back_on_shelf = _even(t + rng.randint(4 * HOUR, 30 * HOUR))
            self._at(back_on_shelf, self._restock, order.ship_from, line.sku, quantity, return_id)

    def _restock(self, t: int, dc: str, sku: str, quantity: int, return_id: str) -> None:
        self._stock[(dc, sku)].on_hand += quantity
        self._move(t, dc, sku, quantity, "return_restock", return_id)
        self._serve_backorders(t, dc, [sku])

    # -- inventory -----------------------------------------------------------------------

    def _move(self, t: int, dc: str, sku: str, delta: int, kind: str, reference: str) -> None:
        self._emit(
            events.inventory_movement(
                **self._envelope(t),
                location_id=dc,
                sku=sku,
                quantity_delta=delta,
                movement_type=kind,
                reference_id=reference,
            )
        )

    def _serve_backorders(self, t: int, dc: str, skus: list[str]) -> None:
        """Allocate newly arrived stock to waiting order lines, oldest first."""
        allocated: dict[Order, dict[int, int]] = {}
        for sku in skus:
            stock = self._stock[(dc, sku)]
            while stock.backorders and stock.available > 0:
                order, line = stock.backorders[0]
                quantity = min(line.quantity - line.allocated, stock.available)
                line.allocated += quantity
                stock.reserved += quantity
                stock.backordered -= quantity
                lines = allocated.setdefault(order, {})
                lines[line.line_no] = lines.get(line.line_no, 0) + quantity
                if line.allocated == line.quantity:
                    stock.backorders.popleft()
        for order, lines in allocated.items():
            self._plan_shipments(t, order, dict(sorted(lines.items())))

    def _adjust_counted(self, t: int, dc: str, sku: str, count_id: str) -> None:
        """The count finds shrinkage or stray units now and then: book an adjustment."""
        rng = self.rng
        if rng.random() >= COUNT_ADJUSTMENT_RATE:
            return
        stock = self._stock[(dc, sku)]
        if stock.available > 0 and rng.random() < 0.7:
            delta = -min(rng.randint(1, 3), stock.available)
        else:
            delta = rng.randint(1, 2)
        stock.on_hand += delta
        self._move(t, dc, sku, delta, "adjustment", count_id)
        if delta > 0:
            self._serve_backorders(t, dc, [sku])

    def _report_count(self, t: int, dc: str, sku: str) -> None:
        on_hand = self._stock[(dc, sku)].on_hand
        self._emit(
            events.inventory_snapshot(**self._envelope(t), location_id=dc, sku=sku, on_hand=on_hand)
        )

    # -- replenishment -------------------------------------------------------------------

    def _order_quantity(self, stock: Stock, product: Product) -> int:
        shortfall = stock.order_up_to - stock.position
        return max(1, math.ceil(shortfall / product.case_pack)) * product.case_pack

    def _review(self, t: int, dc: str) -> None:
        """Daily review: borrow surplus from sister DCs for backorders, then reorder."""
        rng = self.rng
        for product in self.world.products:
            stock = self._stock[(dc, product.sku)]
            if stock.backordered > stock.inbound and rng.random() < TRANSFER_RATE:
                self._transfer_to(t, dc, product.sku, stock.backordered - stock.inbound)
        by_supplier: dict[str, list[tuple[Product, int]]] = {}
        for product in self.world.products:
            stock = self._stock[(dc, product.sku)]
            if stock.position <= stock.reorder_point:
                by_supplier.setdefault(product.supplier_id, []).append(
                    (product, self._order_quantity(stock, product))
                )
        for supplier_id, lines in by_supplier.items():
            supplier = self.world.supplier[supplier_id]
            self._create_po(t, dc, supplier, lines, due_in_days=supplier.lead_time_days)

    def _transfer_to(self, t: int, dc: str, sku: str, wanted: int) -> None:
        for donor in self.world.dcs:
            if donor.location_id == dc:
                continue
            donor_stock = self._stock[(donor.location_id, sku)]
            surplus = donor_stock.available - donor_stock.reorder_point
            if surplus <= 0:
                continue
            quantity = min(wanted, surplus)
            transfer_id = self.ids.next("TRF")
            donor_stock.on_hand -= quantity
            self._move(t, donor.location_id, sku, -quantity, "transfer_out", transfer_id)
            self._stock[(dc, sku)].inbound += quantity
            arrives = _even(t + self.rng.randint(18 * HOUR, 40 * HOUR))
            self._at(arrives, self._receive_transfer, dc, sku, quantity, transfer_id)
            return

    def _receive_transfer(self, t: int, dc: str, sku: str, quantity: int, transfer_id: str) -> None:
        stock = self._stock[(dc, sku)]
        stock.on_hand += quantity
        stock.inbound -= quantity
        self._move(t, dc, sku, quantity, "transfer_in", transfer_id)
        self._serve_backorders(t, dc, [sku])

    def _create_po(
        self,
        t: int,
        dc: str,
        supplier: Supplier,
        lines: list[tuple[Product, int]],
        *,
        due_in_days: int,
    ) -> None:
        po = PurchaseOrder(
            self.ids.next("PO"),
            dc,
            supplier,
            [(n, product.sku, quantity) for n, (product, quantity) in enumerate(lines, start=1)],
        )
        self._emit(
            events.po_created(
                **self._envelope(t),
                po_id=po.po_id,
                supplier_id=supplier.supplier_id,
                ship_to=dc,
                expected_date=self.clock.date(t + due_in_days * DAY_SECONDS),
                lines=[
                    (n, product.sku, quantity, product.unit_cost)
                    for n, (product, quantity) in enumerate(lines, start=1)
                ],
            )
        )
        for _, sku, quantity in po.lines:
            self._stock[(dc, sku)].on_order += quantity
        self._plan_receipts(t, po, due_in_days)

    def _plan_receipts(self, t: int, po: PurchaseOrder, due_in_days: int) -> None:
        """Decide how the supplier delivers: on time or late, in full or short, in parts."""
        rng = self.rng
        supplier = po.supplier
        if rng.random() < supplier.on_time_rate:
            delay = rng.choice((-1, 0, 0, 0))
        else:
            delay = rng.randint(1, 6)
        day_start = t - t % DAY_SECONDS
        arrival = day_start + max(0, due_in_days + delay) * DAY_SECONDS
        arrival += 7 * HOUR + 2 * rng.randrange(5 * HOUR)
        arrival = max(arrival, t + 2 * HOUR)
        shipped = {}
        for line_no, _, quantity in po.lines:
            if rng.random() < supplier.short_rate:
                quantity = math.floor(quantity * rng.uniform(0.4, 0.95))
            shipped[line_no] = quantity
        if rng.random() < supplier.split_rate and sum(shipped.values()) > 1:
            first = {n: rng.randint(0, q) if rng.random() < 0.6 else q for n, q in shipped.items()}
            rest = {n: shipped[n] - first[n] for n in shipped}
            later = _even(arrival + rng.randint(1, 5) * DAY_SECONDS + rng.randint(-HOUR, HOUR))
            self._at(arrival, self._receive_po, po, first, False)
            self._at(later, self._receive_po, po, rest, True)
        else:
            self._at(arrival, self._receive_po, po, shipped, True)

    def _receive_po(
        self, t: int, po: PurchaseOrder, quantities: dict[int, int], last: bool
    ) -> None:
        received = [(n, sku, quantities[n]) for n, sku, _ in po.lines if quantities[n] > 0]
        if received:
            self._emit(events.po_received(**self._envelope(t), po_id=po.po_id, lines=received))
        for line_no, sku, quantity in received:
            stock = self._stock[(po.ship_to, sku)]
            stock.on_hand += quantity
            stock.on_order -= quantity
            po.received[line_no] = po.received.get(line_no, 0) + quantity
            self._move(t, po.ship_to, sku, quantity, "receipt", po.po_id)
        if last:
            # The supplier sends nothing more: the open remainder is cancelled (a short PO).
            for line_no, sku, ordered in po.lines:
                self._stock[(po.ship_to, sku)].on_order -= ordered - po.received.get(line_no, 0)
        self._serve_backorders(t, po.ship_to, [sku for _, sku, _ in received])
