"""What ``scm simulate`` is asked to do."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from scm.errors import ScmError

DAY_SECONDS = 86_400


@dataclass(frozen=True, kw_only=True)
class SimulationOptions:
    """Options of one simulation run (the ``scm simulate`` flags).

    ``days`` of history start at ``start`` (default: ``days`` before today, UTC) and end at
    midnight UTC; with an explicit ``start`` the output is the same bytes on every run.
    ``days=0`` with ``live`` skips the history and starts the live stream from a fresh
    opening count.
    """

    days: int = 30
    seed: int = 7
    start: dt.date | None = None
    orders_per_day: int = 300
    malformed_fraction: float = 0.0
    live: bool = False
    rate: float = 20.0  # events per second with ``live``
    output: str | None = None  # JSON-lines file instead of Kafka ("-" = stdout)
    progress: bool = True

    def validate(self) -> None:
        """Fail with one line on options that cannot work together."""
        if self.days < 0 or (self.days == 0 and not self.live):
            raise ScmError(f"--days {self.days} is invalid: use a whole number of days >= 1")
        if self.orders_per_day <= 0:
            raise ScmError(f"--orders-per-day {self.orders_per_day} is invalid: use a number > 0")
        if not 0.0 <= self.malformed_fraction <= 1.0:
            raise ScmError(f"--malformed-fraction {self.malformed_fraction} is invalid: use 0 to 1")
        if self.live and self.rate <= 0:
            raise ScmError(f"--rate {self.rate} is invalid: use events per second > 0")
        if self.live and self.output is not None:
            raise ScmError("--live needs Kafka; drop --output")

    def first_day(self, today: dt.date | None = None) -> dt.date:
        """The first simulated day: ``start``, or ``days`` before today (UTC)."""
        if self.start is not None:
            return self.start
        today = today or dt.datetime.now(dt.UTC).date()
        return today - dt.timedelta(days=self.days)

    def namespace(self, first_day: dt.date) -> str:
        """What makes a history unique: runs that share it share their event ids."""
        return f"scm-simulator:{self.seed}:{first_day.isoformat()}:{self.orders_per_day}"


def epoch_seconds(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY_SECONDS
