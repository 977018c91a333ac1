"""``--live``: keep the company trading, in real time, until SIGINT or SIGTERM.

The simulation clock runs faster than the wall clock so that the stream carries about
``rate`` messages per second, and every event is stamped with the wall-clock time at which
it is produced. The speed-up is steered once a second from the messages actually produced
(quiet simulated nights pass quickly, busy dispatch waves slowly), so the rate stays near
``rate`` instead of following the day's rhythm. The company either continues the history
just produced (same orders, stock and open POs) or, with ``days=0``, opens afresh with a
full cycle count, so the stream is consistent either way.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scm.errors import ScmError
from scm.kafka import DeliveryReport, produce
from simulator.demand import DAY_SECONDS
from simulator.events import Record
from simulator.feed import Feed
from simulator.history import History, start_company
from simulator.options import SimulationOptions
from simulator.progress import Progress
from simulator.world import build_world

if TYPE_CHECKING:
    from confluent_kafka import Producer

# Messages per order in a default history (orders, shipments, movements, counts, POs...):
# the first guess of the speed-up when there is no history to measure it on.
MESSAGES_PER_ORDER = 11.0
TICK_SECONDS = 0.1
STEER_SECONDS = 1.0  # the speed-up aims at the right number of messages this far ahead
CATCH_UP_SECONDS = 15.0  # a surplus of this many seconds' worth of messages slows by e
# One simulated day in no less than ~4 s: bounds the speed-up, keeps microseconds distinct.
MAX_SPEEDUP = 20_000.0


class LiveStream:
    """The company's ongoing stream, paced to about ``rate`` messages per wall second."""

    def __init__(
        self, options: SimulationOptions, history: History | None, wall_start: float
    ) -> None:
        self.rate = options.rate
        namespace = f"scm-simulator:{options.seed}:live:{wall_start:.6f}:{options.orders_per_day}"
        if history is not None:
            if history.end > wall_start:
                raise ScmError(
                    f"--live continues the history, which ends after now ({history.first_day}"
                    f" + {options.days} days): drop --start or choose an earlier date"
                )
            self.chain, self.feed = history.chain, history.feed
            per_order = history.feed.events / max(1, self.chain.orders_placed)
            live_from = history.end
            # Fresh event ids: a later run's live events must never reuse this run's ids.
            self.chain.ids.reseed_event_ids(namespace)
        else:
            world = build_world(options.seed)
            self.chain = start_company(options, namespace, world)
            self.feed = Feed(namespace, options.malformed_fraction)
            per_order = MESSAGES_PER_ORDER
            live_from = math.floor(wall_start) & ~1  # openings fall on even seconds
        per_simulated_second = options.orders_per_day * per_order / DAY_SECONDS
        speedup = min(MAX_SPEEDUP, max(1.0, self.rate / per_simulated_second))
        self.clock = self.chain.clock
        self.clock.go_live(live_from, wall_start, speedup)
        if history is None:
            self.chain.open(live_from)
        self.messages = 0
        self._started = wall_start
        self._live_from = float(live_from)
        self._prior_density = per_simulated_second  # messages per simulated second
        self._baseline: int | None = None  # messages of the first tick (the opening burst)

    def tick(self, now: float) -> list[Record]:
        """The messages due by wall time ``now`` (call every ~0.1 s)."""
        simulation_now = self.clock.simulation_time(now)
        records = self.feed.push(self.chain.run_until(simulation_now))
        self.messages += len(records)
        if self._baseline is None:
            self._baseline = self.messages  # the opening burst is not part of the pace
        self._steer(now, simulation_now)
        return records

    def _steer(self, now: float, simulation_now: float) -> None:
        """Set the speed-up so that the next second brings about ``rate`` messages.

        The simulated day is lumpy (quiet nights, dispatch waves), so the speed-up comes
        from a forecast of the queued actions, corrected by how far the stream is ahead
        of or behind ``rate`` × elapsed seconds.
        """
        assert self._baseline is not None
        produced = self.messages - self._baseline
        surplus = produced - self.rate * (now - self._started)
        correction = math.exp(-max(-2.0, min(2.0, surplus / (self.rate * CATCH_UP_SECONDS))))
        budget = max(1.0, self.rate * STEER_SECONDS * correction)
        when = self.chain.time_of_message(budget)
        if when is None:
            wanted = self.rate / self._prior_density
        else:
            wanted = (when - simulation_now) / STEER_SECONDS
        factor = min(4.0, max(0.25, wanted / self.clock.speedup))
        speedup = min(MAX_SPEEDUP, max(1.0, self.clock.speedup * factor))
        self.clock.rebase(simulation_now, now, speedup)

    def drain(self) -> list[Record]:
        records = self.feed.drain()
        self.messages += len(records)
        return records


@dataclass
class LiveResult:
    messages: int
    seconds: float


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM end the loop gracefully (a flush follows) instead of killing it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_live(
    options: SimulationOptions,
    history: History | None,
    producer: Producer,
    *,
    bootstrap: str,
    progress: Progress,
) -> LiveResult:
    """Produce the ongoing stream until a signal arrives; flush and report on the way out."""
    started = time.time()
    stream = LiveStream(options, history, started)
    report = DeliveryReport()
    stop = threading.Event()
    with _stop_on_signals(stop):
        while not stop.is_set() and not report.failed:
            produce(producer, stream.tick(time.time()), report)
            elapsed = max(time.time() - started, 1e-9)
            progress.show(
                f"live: {stream.messages:,} messages, {stream.messages / elapsed:.1f}/s"
                " (Ctrl-C stops)"
            )
            stop.wait(TICK_SECONDS)
        produce(producer, stream.drain(), report)
        remaining = producer.flush(30)
    progress.clear()
    if remaining:
        raise ScmError(f"{remaining} live messages were not acknowledged by Kafka at {bootstrap}")
    report.raise_on_failure(bootstrap)
    return LiveResult(stream.messages, time.time() - started)
