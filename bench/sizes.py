"""The amounts of work the benchmarks run at: the same measures at growing sizes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    """One amount of work: days of default simulation and the freshness load beside it."""

    name: str
    days: int
    orders_per_day: int = 300
    freshness_seconds: float = 30.0
    freshness_background_rate: float = 100.0
    freshness_marker_rate: float = 4.0
    sustained_events: int = 200_000  # the backlog a warm ingest works through
    sustained_batch_events: int = 20_000  # records per micro-batch: 1 s of the 20k ev/s goal


SIZES: dict[str, Size] = {
    "tiny": Size(
        "tiny", days=2, orders_per_day=20, freshness_seconds=8.0,
        freshness_background_rate=20.0, freshness_marker_rate=4.0,
        sustained_events=2_000, sustained_batch_events=500,
    ),
    "small": Size("small", days=10),
    "medium": Size("medium", days=30),
    "large": Size("large", days=90),
}  # fmt: skip


def parse_sizes(text: str) -> list[Size]:
    """``small,medium`` -> the named sizes, in the order given."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SIZES]
    if unknown or not names:
        raise ValueError(
            f"unknown size(s) {', '.join(unknown) or '(none)'}: use {', '.join(SIZES)}"
        )
    return [SIZES[name] for name in names]
