"""The simulated history: ``days`` of operations, day by day, as Kafka records."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass

from simulator.demand import Demand
from simulator.events import Record
from simulator.feed import Feed
from simulator.options import DAY_SECONDS, SimulationOptions, epoch_seconds
from simulator.supply_chain import Clock, Identifiers, SupplyChain
from simulator.world import World, build_world


@dataclass
class History:
    """A finished history and the running company it leaves behind (for ``--live``)."""

    records: list[Record]
    world: World
    chain: SupplyChain
    feed: Feed
    first_day: dt.date
    end: int  # epoch second where the history stops (midnight UTC)


def start_company(options: SimulationOptions, namespace: str, world: World) -> SupplyChain:
    """A company ready to trade, its randomness derived from ``namespace`` only."""
    return SupplyChain(
        world,
        Demand(world, options.orders_per_day, random.Random(f"{namespace}:demand")),
        rng=random.Random(f"{namespace}:operations"),
        ids=Identifiers(namespace),
        clock=Clock(),
    )


def run_history(
    options: SimulationOptions,
    *,
    today: dt.date | None = None,
    on_day: Callable[[int, int], None] | None = None,
) -> History:
    """Simulate ``options.days`` days; ``on_day(done, total)`` reports progress."""
    first_day = options.first_day(today)
    namespace = options.namespace(first_day)
    world = build_world(options.seed)
    chain = start_company(options, namespace, world)
    feed = Feed(namespace, options.malformed_fraction)
    start = epoch_seconds(first_day)
    chain.open(start)
    records: list[Record] = []
    for day in range(1, options.days + 1):
        records += feed.push(chain.run_until(start + day * DAY_SECONDS))
        if on_day is not None:
            on_day(day, options.days)
    if not options.live:
        records += feed.drain()
    return History(records, world, chain, feed, first_day, start + options.days * DAY_SECONDS)


def generate_history(options: SimulationOptions) -> list[Record]:
    """The history's messages in production order; pure: same options, same bytes.

    Without ``options.start`` the history ends today (UTC), so it changes day by day.
    """
    return run_history(dataclasses.replace(options, live=False)).records
