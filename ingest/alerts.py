"""Stockout alerts on ``scm.alerts``: JSON events shaped like every other contract event.

The event_id is derived from (location, sku, stockout time), so a consumer can drop the
rare duplicate (an alert produced just before a crash and produced again on restart)
exactly as it drops duplicated supply-chain events.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

from scm.settings import Settings


@dataclass(frozen=True)
class StockoutAlert:
    """A position that went from > 0 to <= 0."""

    event_id: str
    event_time: dt.datetime
    location_id: str
    sku: str
    on_hand: int

    @property
    def key(self) -> str:
        return f"{self.location_id}:{self.sku}"

    def to_json(self) -> bytes:
        moment = self.event_time
        if moment.tzinfo is None:  # Spark hands back naive datetimes in the session zone: UTC
            moment = moment.replace(tzinfo=dt.UTC)
        event = {
            "event_id": self.event_id,
            "event_type": "stockout",
            "alert_type": "stockout",
            "event_time": moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "source": "scm-ingest",
            "schema_version": 1,
            "location_id": self.location_id,
            "sku": self.sku,
            "on_hand": self.on_hand,
        }
        return json.dumps(event, separators=(",", ":")).encode()


def publish_stockouts(settings: Settings, alerts: Sequence[StockoutAlert]) -> None:
    """Produce ``alerts`` and wait until Kafka acknowledged every one (or raise ScmError)."""
    from scm.kafka import publish_alerts

    publish_alerts(settings, [(alert.key, alert.to_json()) for alert in alerts], "stockout")
