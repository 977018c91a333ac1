"""Random draws the simulation needs, all from an explicit ``random.Random``."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Weighted(Generic[T]):
    """A weighted choice over a fixed population (cumulative weights computed once)."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cumulative = list(itertools.accumulate(weights))

    @classmethod
    def of(cls, table: Mapping[T, float]) -> Weighted[T]:
        return cls(list(table), list(table.values()))

    def pick(self, rng: random.Random) -> T:
        index = bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])
        return self.items[min(index, len(self.items) - 1)]

    def mean(self) -> float:
        """The expected value, for numeric populations."""
        total, previous = 0.0, 0.0
        for item, cumulative in zip(self.items, self.cumulative, strict=True):
            total += float(item) * (cumulative - previous)  # type: ignore[arg-type]
            previous = cumulative
        return total / self.cumulative[-1]


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (normal approximation for large means)."""
    if mean <= 0:
        return 0
    if mean > 60:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
