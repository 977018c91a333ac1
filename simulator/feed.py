"""From simulated events to Kafka messages: encoding, producer retries, malformed copies."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from simulator.events import Event, Record, to_record
from simulator.malformed import MalformedInjector
from simulator.retries import RetryInjector


class Feed:
    """Encodes events and passes them through the retry and malformed stages, in order.

    Retries are decided on the valid stream and malformed copies on the result, each with
    its own random stream, so dropping the malformed copies gives back exactly the output
    of a run without them.
    """

    def __init__(self, namespace: str, malformed_fraction: float) -> None:
        self.retries = RetryInjector(random.Random(f"{namespace}:retries"))
        self.malformed = MalformedInjector(
            random.Random(f"{namespace}:malformed"), malformed_fraction
        )
        self.events = 0
        self.per_topic: Counter[str] = Counter()

    def push(self, events: Iterable[Event]) -> list[Record]:
        out: list[Record] = []
        for event in events:
            self.events += 1
            for record in self.retries.push(to_record(event)):
                out += self.malformed.push(record)
        self.per_topic.update(record.topic for record in out)
        return out

    def drain(self) -> list[Record]:
        """Whatever is still waiting to be inserted (call once, at the end)."""
        out: list[Record] = []
        for record in self.retries.drain():
            out += self.malformed.push(record)
        out += self.malformed.drain()
        self.per_topic.update(record.topic for record in out)
        return out
