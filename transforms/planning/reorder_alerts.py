"""``reorder_needed`` alerts on ``scm.alerts``, published through an outbox table.

``gold/reorder_alerts`` holds one row per pair and turn to true: a row opens when the
written ``replenishment_plan`` says ``needs_reorder`` for a pair without an open alert, and
is resolved when a later plan no longer does. ``published`` stays false until Kafka has
acknowledged the alert. :func:`settle` runs both steps; each is idempotent and reads only
what is on disk, so a crash anywhere loses no turn: a plan written by a refresh that died
before its alerts is settled by the next refresh (before it rebuilds the plan), and a crash
between producing and marking produces the same ``alert_id`` again, which a consumer drops
as it drops any duplicated event.

The ``alert_id`` is derived from (location, sku, turn number), so the same turn always gets
the same id however often it is retried, and a pair that turns true again gets a new one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from scm.lake import Lake
from scm.settings import Settings
from transforms.lake_io import table_exists

log = logging.getLogger(__name__)

OUTBOX_TABLE = "reorder_alerts"
ALERT_TYPE = "reorder_needed"
_NAMESPACE = uuid.UUID("6f1d2a4e-52c3-4b0c-9a57-1f3e0d6b8c21")
_KEYS = ["location_id", "sku"]
_PLAN_COLUMNS = [
    "location_id",
    "sku",
    "as_of_date",
    "on_hand",
    "on_order",
    "reorder_point",
    "suggested_order_units",
    "projected_stockout_date",
    "needs_reorder",
]

OUTBOX_SCHEMA = pa.schema(
    [
        ("alert_id", pa.string()),
        ("location_id", pa.string()),
        ("sku", pa.string()),
        ("turn", pa.int64()),  # 1 for the pair's first turn to true, 2 for the next, ...
        ("as_of_date", pa.date32()),  # the plan's as-of date when it turned true
        ("opened_at", pa.timestamp("us", tz="UTC")),  # the alert's event_time
        ("on_hand", pa.int64()),
        ("on_order", pa.int64()),
        ("reorder_point", pa.float64()),
        ("suggested_order_units", pa.int64()),
        ("projected_stockout_date", pa.date32()),
        ("resolved_as_of", pa.date32()),  # null while the pair still needs a reorder
        ("published", pa.bool_()),  # the outbox flag: true once Kafka acknowledged it
    ]
)


@dataclass(frozen=True)
class Settlement:
    """What one :func:`settle` did."""

    opened: int = 0
    resolved: int = 0
    published: int = 0
    pending: int = 0  # still unpublished (Kafka unreachable)

    def line(self) -> str:
        text = (
            f"reorder alerts: {self.opened} opened, {self.resolved} resolved, "
            f"{self.published} published"
        )
        return text + (f", {self.pending} kept for the next refresh" if self.pending else "")


def settle(settings: Settings, lake: Lake, *, now: dt.datetime | None = None) -> Settlement:
    """Bring the outbox in line with the written plan, then publish what is pending."""
    opened, resolved = sync(lake, now=now)
    published, pending = publish_pending(settings, lake)
    return Settlement(opened, resolved, published, pending)


def sync(lake: Lake, *, now: dt.datetime | None = None) -> tuple[int, int]:
    """Open an alert per pair that turned true, resolve those that turned false.

    One Delta commit when anything changed, none otherwise. Returns (opened, resolved).
    """
    plan_path = lake.gold("replenishment_plan")
    if not table_exists(plan_path):
        return 0, 0
    plan = _read(plan_path, _PLAN_COLUMNS)
    if not plan.num_rows:  # no pairs yet (or no as-of date to resolve with): keep the outbox
        return 0, 0
    outbox = read_outbox(lake)
    open_keys = outbox.filter(pc.is_null(outbox["resolved_as_of"])).select(_KEYS)
    wanting = plan.filter(plan["needs_reorder"])
    turned_true = wanting.join(open_keys, _KEYS, join_type="left anti")
    turned_false = open_keys.join(wanting.select(_KEYS), _KEYS, join_type="left anti")
    if not turned_true.num_rows and not turned_false.num_rows:
        return 0, 0
    as_of = plan["as_of_date"][0]  # one as-of date per plan
    resolved = _resolve(outbox, turned_false, as_of)
    opened = _open(turned_true, outbox, now or dt.datetime.now(dt.UTC))
    _write(lake, pa.concat_tables([resolved, opened]))
    return turned_true.num_rows, turned_false.num_rows


def publish_pending(settings: Settings, lake: Lake) -> tuple[int, int]:
    """Produce every unpublished alert, then mark them published. Returns (published,
    pending): when Kafka is unreachable the alerts stay in the outbox for the next try."""
    from scm.contracts import ALERTS_TOPIC
    from scm.errors import ScmError
    from scm.kafka import ensure_topics, publish_alerts

    outbox = read_outbox(lake)
    pending = outbox.filter(pc.invert(outbox["published"]))
    if not pending.num_rows:
        return 0, 0
    messages = [(f"{r['location_id']}:{r['sku']}", to_json(r)) for r in pending.to_pylist()]
    try:
        ensure_topics(settings, (ALERTS_TOPIC,))  # an unreachable broker fails in seconds
        publish_alerts(settings, messages, ALERT_TYPE)
    except ScmError as error:
        log.warning("could not publish %d reorder alert(s): %s", len(messages), error)
        return 0, len(messages)
    column = OUTBOX_SCHEMA.get_field_index("published")
    flags = pa.array([True] * outbox.num_rows, pa.bool_())
    _write(lake, outbox.set_column(column, OUTBOX_SCHEMA.field(column), flags))
    return len(messages), 0


def to_json(row: dict[str, Any]) -> bytes:
    """The ``scm.alerts`` event of one outbox row (planning.md); ``event_id`` repeats the
    alert_id so consumers deduplicate alerts like every other event."""
    stockout = row["projected_stockout_date"]
    event = {
        "alert_type": ALERT_TYPE,
        "event_type": ALERT_TYPE,
        "alert_id": row["alert_id"],
        "event_id": row["alert_id"],
        "event_time": row["opened_at"].astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "source": "scm-refresh",
        "location_id": row["location_id"],
        "sku": row["sku"],
        "on_hand": row["on_hand"],
        "on_order": row["on_order"],
        "reorder_point": row["reorder_point"],
        "suggested_order_units": row["suggested_order_units"],
        "projected_stockout_date": None if stockout is None else stockout.isoformat(),
        "as_of_date": row["as_of_date"].isoformat(),
    }
    return json.dumps(event, separators=(",", ":")).encode()


def read_outbox(lake: Lake) -> pa.Table:
    path = lake.gold(OUTBOX_TABLE)
    if not table_exists(path):
        return OUTBOX_SCHEMA.empty_table()
    return _read(path, OUTBOX_SCHEMA.names).cast(OUTBOX_SCHEMA)


def alert_id(location_id: str, sku: str, turn: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{ALERT_TYPE}|{location_id}|{sku}|{turn}"))


def _resolve(outbox: pa.Table, turned_false: pa.Table, as_of: pa.Scalar) -> pa.Table:
    """``outbox`` with the open alerts of ``turned_false`` resolved as of ``as_of``."""
    pair = pc.binary_join_element_wise(outbox["location_id"], outbox["sku"], "\x1f")
    gone = pc.binary_join_element_wise(turned_false["location_id"], turned_false["sku"], "\x1f")
    closing = pc.and_(pc.is_in(pair, gone), pc.is_null(outbox["resolved_as_of"]))
    column = OUTBOX_SCHEMA.get_field_index("resolved_as_of")
    resolved = pc.if_else(closing, as_of.cast(pa.date32()), outbox["resolved_as_of"])
    return outbox.set_column(column, OUTBOX_SCHEMA.field(column), resolved)


def _open(turned_true: pa.Table, outbox: pa.Table, now: dt.datetime) -> pa.Table:
    """One new outbox row per pair of ``turned_true``, numbered after the pair's past turns."""
    past = outbox.group_by(_KEYS).aggregate([("turn", "max")])
    numbered = turned_true.join(past, _KEYS, join_type="left outer")
    rows = numbered.to_pylist()  # only the pairs that turned true in this plan
    turns = [(r["turn_max"] or 0) + 1 for r in rows]
    ids = [alert_id(r["location_id"], r["sku"], t) for r, t in zip(rows, turns, strict=True)]
    count = numbered.num_rows
    columns = {
        "alert_id": pa.array(ids, pa.string()),
        "turn": pa.array(turns, pa.int64()),
        "opened_at": pa.array([now] * count, pa.timestamp("us", tz="UTC")),
        "resolved_as_of": pa.nulls(count, pa.date32()),
        "published": pa.array([False] * count, pa.bool_()),
    }
    return pa.table(
        {f.name: columns[f.name] if f.name in columns else numbered[f.name] for f in OUTBOX_SCHEMA}
    ).cast(OUTBOX_SCHEMA)


def _read(path: str, columns: list[str]) -> pa.Table:
    from deltalake import DeltaTable

    return DeltaTable(path).to_pyarrow_table(columns=columns)


def _write(lake: Lake, table: pa.Table) -> None:
    from deltalake import write_deltalake

    write_deltalake(lake.gold(OUTBOX_TABLE), table.cast(OUTBOX_SCHEMA), mode="overwrite")
