"""Producer retries: a message whose acknowledgement was lost is sent again, unchanged.

About 0.5% of messages are resent with identical bytes (same event_id) a few messages
later, which is what an at-least-once producer does. Downstream must count them once.
"""

from __future__ import annotations

import random

from simulator.events import Record

RETRY_RATE = 0.005
MAX_DELAY_MESSAGES = 20


class RetryInjector:
    """Streams records through, adding the occasional retry shortly after its original."""

    def __init__(self, rng: random.Random, rate: float = RETRY_RATE) -> None:
        self.rng = rng
        self.rate = rate
        self.retries = 0
        self._waiting: list[list] = []  # [messages still to pass, record]

    def push(self, record: Record) -> list[Record]:
        out = [record]
        if self._waiting:
            for waiting in self._waiting:
                waiting[0] -= 1
            out += [r for left, r in self._waiting if left <= 0]
            self._waiting = [w for w in self._waiting if w[0] > 0]
        if self.rng.random() < self.rate:
            self.retries += 1
            self._waiting.append([self.rng.randint(1, MAX_DELAY_MESSAGES), record])
        return out

    def drain(self) -> list[Record]:
        """The retries still waiting (at the end of a run)."""
        out = [record for _, record in self._waiting]
        self._waiting = []
        return out
