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

from scm.contracts import ALERTS_TOPIC
from scm.errors import ScmError
from scm.settings import Settings

_FLUSH_TIMEOUT_SECONDS = 70.0  # the shared producer gives up on a message after 60 s


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
    from scm.kafka import DeliveryReport, produce, producer

    if not alerts:
        return
    client = producer(settings)
    report = DeliveryReport()
    produce(client, [(ALERTS_TOPIC, alert.key, alert.to_json()) for alert in alerts], report)
    remaining = client.flush(_FLUSH_TIMEOUT_SECONDS)
    if remaining:
        raise ScmError(
            f"{remaining} stockout alert(s) not acknowledged by Kafka at "
            f"{settings.kafka_bootstrap} within {_FLUSH_TIMEOUT_SECONDS:.0f} s"
        )
    report.raise_on_failure(settings.kafka_bootstrap)
