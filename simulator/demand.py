"""Customer demand: how many orders arrive each day, when, from whom, for what.

Three channels with their own weekday and hour-of-day rhythm, basket sizes and delivery
promises; skus are picked by Zipf popularity, each riding its own slow yearly trend
(:meth:`Product.popularity_on`), so a (DC, sku) series has a weekly rhythm (the channel
mix changes by weekday) and a level that drifts. :meth:`Demand.expected_daily_units` turns
the same profile, at the trend's yearly mean, into the demand rate that sets reorder points.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulator.sampling import Weighted, poisson
from simulator.world import Customer, Product, World

DAY_SECONDS = 86_400
CUTOFF_SECONDS = 17 * 3600  # orders placed later are promised one day later
SAME_DAY_CUTOFF_SECONDS = 13 * 3600  # same-day courier orders placed later arrive tomorrow


@dataclass(frozen=True)
class ChannelProfile:
    name: str
    share: float  # of all orders
    weekday: tuple[float, ...]  # Monday..Sunday, mean 1
    hourly: tuple[float, ...]  # relative arrivals per hour of day
    lines: dict[int, float]  # lines per order -> weight
    quantity: dict[int, float]  # units per line -> weight
    service_days: dict[int, float]  # requested delivery date - order date -> weight
    segments: tuple[str, ...]
    discount: tuple[float, float]  # off list price


_EVENING = (2, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 8, 9, 8, 7, 7, 8, 9, 10, 12, 13, 12, 8, 4)
_SHOP_HOURS = (0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 7, 9, 10, 9, 8, 8, 9, 10, 10, 8, 6, 3, 0, 0)
_OFFICE_HOURS = (0, 0, 0, 0, 0, 0, 1, 4, 9, 12, 12, 10, 7, 9, 10, 9, 7, 4, 2, 1, 0, 0, 0, 0)

CHANNELS: tuple[ChannelProfile, ...] = (
    ChannelProfile(
        "online", 0.55, (1.05, 1.0, 0.95, 0.95, 1.0, 1.0, 1.05), _EVENING,
        {1: 35, 2: 28, 3: 17, 4: 11, 5: 9}, {1: 75, 2: 17, 3: 5, 4: 3},
        {0: 10, 2: 30, 3: 40, 4: 20}, ("consumer",), (0.0, 0.0),
    ),
    ChannelProfile(
        "store", 0.25, (0.8, 0.8, 0.85, 0.9, 1.1, 1.45, 1.1), _SHOP_HOURS,
        {1: 45, 2: 30, 3: 15, 4: 10}, {1: 60, 2: 25, 3: 10, 4: 5},
        {3: 40, 4: 35, 5: 25}, ("consumer",), (0.0, 0.0),
    ),
    ChannelProfile(
        "b2b", 0.20, (1.3, 1.25, 1.2, 1.15, 1.05, 0.6, 0.45), _OFFICE_HOURS,
        {n: 1.0 for n in range(6, 29)}, {2: 15, 4: 20, 6: 20, 10: 20, 12: 15, 20: 7, 30: 3},
        {4: 30, 5: 40, 7: 30}, ("small_business", "enterprise"), (0.03, 0.15),
    ),
)  # fmt: skip


def _normalised(values: tuple[float, ...]) -> tuple[float, ...]:
    mean = sum(values) / len(values)
    return tuple(value / mean for value in values)


@dataclass(frozen=True)
class OrderRequest:
    """An order a customer is about to place (the OMS gives it an id when placed)."""

    time: int  # seconds since the epoch, UTC
    channel: str
    customer: Customer
    lines: tuple[tuple[str, int, float], ...]  # (sku, quantity, unit_price)
    service_days: int

    @property
    def express(self) -> bool:
        """Promised for today or tomorrow: goes by courier, first in the next wave."""
        return self.service_days <= 1


class Demand:
    """Draws each day's orders; the daily volume averages ``orders_per_day``."""

    def __init__(self, world: World, orders_per_day: float, rng: random.Random) -> None:
        self.world = world
        self.orders_per_day = orders_per_day
        self.rng = rng
        self._weekday = {c.name: _normalised(c.weekday) for c in CHANNELS}
        self._hours = {c.name: Weighted(range(24), c.hourly) for c in CHANNELS}
        self._lines = {c.name: Weighted.of(c.lines) for c in CHANNELS}
        self._quantity = {c.name: Weighted.of(c.quantity) for c in CHANNELS}
        self._service = {c.name: Weighted.of(c.service_days) for c in CHANNELS}
        self._customers: dict[str, Weighted[Customer]] = {}
        for channel in CHANNELS:
            pool = [c for c in world.customers if c.segment in channel.segments]
            self._customers[channel.name] = Weighted(pool, [c.weight for c in pool])
        self._skus_day = -1
        self._skus: Weighted[Product] = Weighted(world.products, [1.0] * len(world.products))

    def orders_for_day(self, day_start: int) -> list[OrderRequest]:
        """The orders placed on the UTC day starting at ``day_start``, in time order."""
        rng = self.rng
        day = day_start // DAY_SECONDS
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
        if day != self._skus_day:
            products = self.world.products
            self._skus = Weighted(products, [p.popularity_on(day) for p in products])
            self._skus_day = day
        day_factor = max(0.5, rng.gauss(1.0, 0.07))  # weather, promotions, news
        requests = []
        for channel in CHANNELS:
            mean = self.orders_per_day * channel.share * self._weekday[channel.name][weekday]
            for _ in range(poisson(rng, mean * day_factor)):
                hour = self._hours[channel.name].pick(rng)
                time = day_start + hour * 3600 + rng.randrange(1800) * 2
                requests.append(self._request(channel, time))
        requests.sort(key=lambda request: request.time)
        return requests

    def _request(self, channel: ChannelProfile, time: int) -> OrderRequest:
        rng = self.rng
        customer = self._customers[channel.name].pick(rng)
        count = self._lines[channel.name].pick(rng)
        skus: dict[str, None] = {}
        while len(skus) < count:
            skus[self._skus.pick(rng).sku] = None
        discount = rng.uniform(*channel.discount) if customer.segment == "enterprise" else 0.0
        lines = tuple(
            (
                sku,
                self._quantity[channel.name].pick(rng),
                round(self.world.product[sku].unit_price * (1 - discount), 2),
            )
            for sku in skus
        )
        service_days = self._service[channel.name].pick(rng)
        if service_days == 0:  # same-day courier (metro areas)
            if time % DAY_SECONDS >= SAME_DAY_CUTOFF_SECONDS:
                service_days = 1
        elif time % DAY_SECONDS >= CUTOFF_SECONDS:
            service_days += 1  # promised from tomorrow: the day's last wave has left
        return OrderRequest(time, channel.name, customer, lines, service_days)

    def expected_daily_units(self) -> dict[tuple[str, str], float]:
        """Mean units ordered per day for each (DC, sku): the basis of reorder points."""
        region_share: dict[str, dict[str, float]] = {}
        for channel in CHANNELS:
            pool = [c for c in self.world.customers if c.segment in channel.segments]
            total = sum(c.weight for c in pool)
            shares = dict.fromkeys(self.world.dc_of_region, 0.0)
            for customer in pool:
                shares[customer.region] += customer.weight / total
            region_share[channel.name] = shares
        units: dict[tuple[str, str], float] = {}
        for channel in CHANNELS:
            per_day = (
                self.orders_per_day
                * channel.share
                * self._lines[channel.name].mean()
                * self._quantity[channel.name].mean()
            )
            for region, dc in self.world.dc_of_region.items():
                for product in self.world.products:
                    key = (dc, product.sku)
                    units[key] = units.get(key, 0.0) + (
                        per_day * region_share[channel.name][region] * product.popularity
                    )
        return units
