"""Acceptance: ``scm refresh`` over a scenario the project has never seen equals kpis.md.

A small supply chain (two DCs, three products, two suppliers) is produced to the real broker in
two rounds, with late, duplicated and malformed messages, and ``scm refresh`` runs after each
round exactly as a user runs it. After each round every gold row of the scenario and every
``silver/inventory_position`` row equals :mod:`tests.kpi_reference`, an independent reading of
kpis.md in plain Python.

The broker is shared with other test modules, whose messages this lake ingests too (round 1
adds such traffic on purpose). Every id, location, sku, supplier and category here carries a
per-run token, so the scenario's rows are exactly the rows whose keys carry it. The as-of date
is global, so the scenario lives in 2027, after anything the other modules produce (their data
ends around today's date at the latest); conversely, modules that ingest these topics after
this one would see 2027 as their as-of date (pytest's default file order runs them first).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from scm.contracts import EVENT_TYPES, key_for
from scm.lake import Lake
from scm.settings import Settings, load_settings
from tests import kpi_reference
from tests.conftest import _free_port, make_settings
from tests.kpi_reference import Product, Reference
from transforms.gold import GOLD_TABLES

# Two cold refreshes (each starts the ingest stream and every Delta write path) on a shared
# 2-core machine: twice the default timeout, as for tests/test_refresh.py.
pytestmark = [pytest.mark.spark, pytest.mark.kafka, pytest.mark.timeout(1200)]

Message = tuple[str, str, bytes]  # topic, key, value
Event = dict[str, Any]

GRAIN: dict[str, tuple[str, ...]] = {
    "fill_rate_daily": ("order_date", "ship_from", "channel"),
    "perfect_order_daily": ("order_date", "ship_from", "channel"),
    "order_cycle_time_daily": ("order_date", "ship_from", "channel"),
    "inventory_turns_monthly": ("month", "location_id"),
    "returns_cost_daily": ("return_date", "category", "reason"),
    "supplier_otif_daily": ("expected_date", "supplier_id"),
}
# The grain column whose value carries the run's token.
TOKEN_COLUMN = {
    "fill_rate_daily": "ship_from",
    "perfect_order_daily": "ship_from",
    "order_cycle_time_daily": "ship_from",
    "inventory_turns_monthly": "location_id",
    "returns_cost_daily": "category",
    "supplier_otif_daily": "supplier_id",
}


def message(event: Event) -> Message:
    """The Kafka message a producer sends for ``event`` (topic and key from contracts.md)."""
    return (EVENT_TYPES[event["event_type"]].topic, key_for(event), json.dumps(event).encode())


# --- the scenario ---------------------------------------------------------------------------


@dataclass
class Scenario:
    """Events of the two rounds, in arrival order, and the master data they refer to."""

    token: str
    round1: list[Event] = field(default_factory=list)
    round2: list[Event] = field(default_factory=list)
    malformed1: list[Message] = field(default_factory=list)
    malformed2: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        t = self.token
        self.dc1, self.dc2 = f"{t}-DC1", f"{t}-DC2"
        self.widget, self.gadget, self.bolt = f"{t}-WIDGET", f"{t}-GADGET", f"{t}-BOLT"
        self.hardware, self.electronics = f"{t}-hardware", f"{t}-electronics"
        self.products = {
            self.widget: Product(self.hardware, Decimal("4.25")),
            self.gadget: Product(self.electronics, Decimal("12.5")),
            self.bolt: Product(self.hardware, Decimal("0.1")),
        }

    def id(self, name: str) -> str:
        return f"{self.token}-{name}"

    def event(self, name: str, event_type: str, when: str, **fields: Any) -> Event:
        return {
            "event_id": self.id(f"ev-{name}"),
            "event_type": event_type,
            "event_time": when,
            "source": "acceptance",
            "schema_version": 1,
            **fields,
        }

    # One builder per event type, taking the scenario's short names.
    def order(self, n: int, when: str, ship_from: str, channel: str, requested: str,
              lines: Sequence[tuple[str, int, float]]) -> Event:  # fmt: skip
        return self.event(
            f"O{n}", "order_placed", when, order_id=self.id(f"O{n}"),
            customer_id=self.id(f"C{n % 2 + 1}"), channel=channel, ship_from=ship_from,
            requested_delivery_date=requested, currency="EUR",
            lines=[{"line_no": i, "sku": sku, "quantity": qty, "unit_price": price}
                   for i, (sku, qty, price) in enumerate(lines, start=1)],
        )  # fmt: skip

    def dispatch(self, s: int, order: int, when: str, ship_from: str,
                 lines: Sequence[tuple[int, str, int]]) -> Event:  # fmt: skip
        return self.event(
            f"S{s}-out", "shipment_dispatched", when, shipment_id=self.id(f"S{s}"),
            order_id=self.id(f"O{order}"), ship_from=ship_from, carrier="DHL",
            lines=[{"line_no": no, "sku": sku, "quantity": qty} for no, sku, qty in lines],
        )  # fmt: skip

    def delivery(self, s: int, order: int, when: str, condition: str = "ok",
                 documents_ok: bool = True) -> Event:  # fmt: skip
        return self.event(
            f"S{s}-in", "shipment_delivered", when, shipment_id=self.id(f"S{s}"),
            order_id=self.id(f"O{order}"), condition=condition, documents_ok=documents_ok,
        )  # fmt: skip

    def snapshot(self, name: str, when: str, location: str, sku: str, on_hand: int) -> Event:
        return self.event(
            name, "inventory_snapshot", when, location_id=location, sku=sku, on_hand=on_hand
        )

    def movement(self, name: str, when: str, location: str, sku: str, delta: int,
                 kind: str, reference: str) -> Event:  # fmt: skip
        return self.event(
            name, "inventory_movement", when, location_id=location, sku=sku,
            quantity_delta=delta, movement_type=kind, reference_id=self.id(reference),
        )  # fmt: skip

    def return_(self, r: int, when: str, order: int, line_no: int, sku: str, quantity: int,
                reason: str, disposition: str, refund: float, cost: float) -> Event:  # fmt: skip
        return self.event(
            f"R{r}", "return_received", when, return_id=self.id(f"R{r}"),
            order_id=self.id(f"O{order}"), line_no=line_no, sku=sku, quantity=quantity,
            reason=reason, disposition=disposition, refund_amount=refund,
            processing_cost=cost, currency="EUR",
        )  # fmt: skip

    def po(self, p: int, when: str, supplier: int, ship_to: str, expected: str,
           lines: Sequence[tuple[str, int, float]]) -> Event:  # fmt: skip
        return self.event(
            f"PO{p}", "po_created", when, po_id=self.id(f"PO{p}"),
            supplier_id=self.id(f"SUP{supplier}"), ship_to=ship_to, expected_date=expected,
            currency="EUR",
            lines=[{"line_no": i, "sku": sku, "quantity": qty, "unit_cost": cost}
                   for i, (sku, qty, cost) in enumerate(lines, start=1)],
        )  # fmt: skip

    def receipt(self, name: str, when: str, p: int,
                lines: Sequence[tuple[int, str, int]]) -> Event:  # fmt: skip
        return self.event(
            name, "po_received", when, po_id=self.id(f"PO{p}"),
            lines=[{"line_no": no, "sku": sku, "quantity": qty} for no, sku, qty in lines],
        )  # fmt: skip

    def landing_files(self) -> dict[str, str]:
        products = "sku,name,category,unit_cost,unit_price\n" + "".join(
            f"{sku},{sku.rsplit('-', 1)[1].title()},{p.category},{p.unit_cost},{p.unit_cost * 3}\n"
            for sku, p in self.products.items()
        )
        t = self.token
        return {
            "products.csv": products,
            "locations.csv": f"location_id,name,type,region\n{self.dc1},North DC,dc,north\n"
            f"{self.dc2},South DC,dc,south\n",
            "suppliers.csv": f"supplier_id,name,country,lead_time_days\n{t}-SUP1,Acme,DE,5\n"
            f"{t}-SUP2,Globex,PL,9\n",
            "customers.csv": f"customer_id,name,segment,region\n{t}-C1,Ann,consumer,north\n"
            f"{t}-C2,Bob,business,south\n",
        }


def build_scenario(token: str) -> Scenario:
    """The hand-built scenario; comments give what kpis.md makes of each event."""
    s = Scenario(token)
    dc1, dc2, widget, gadget, bolt = s.dc1, s.dc2, s.widget, s.gadget, s.bolt
    one, two = s.round1, s.round2

    # Orders. O1: two lines, split over S1 and S2, both in time; S2's delivery arrives late.
    o1 = s.order(1, "2027-04-28T09:00:00Z", dc1, "online", "2027-05-01",
                 [(widget, 10, 20.0), (gadget, 2, 50.0)])  # fmt: skip
    # O2: BOLT line shipped short (60 of 100) and never completed.
    o2 = s.order(2, "2027-04-28T11:30:00Z", dc1, "online", "2027-05-02",
                 [(widget, 5, 20.0), (bolt, 100, 0.5)])  # fmt: skip
    # O3: delivered in full and in time, but damaged.
    o3 = s.order(3, "2027-04-28T14:00:00Z", dc1, "b2b", "2027-05-03", [(gadget, 3, 48.0)])
    # O4: documents wrong; its order event is sent twice by a producer retry.
    o4 = s.order(4, "2027-04-29T07:00:00Z", dc2, "store", "2027-05-04", [(bolt, 50, 0.5)])
    # O5: dispatched in time, never delivered.
    o5 = s.order(5, "2027-04-29T13:00:00Z", dc2, "online", "2027-05-03", [(widget, 8, 19.5)])
    # O6: dispatched and delivered after its requested date (round 2 makes it due).
    o6 = s.order(6, "2027-04-29T16:00:00Z", dc2, "online", "2027-05-05", [(gadget, 1, 55.0)])
    one += [o1, o2, o3, o4, o4, o5, o6]
    s1 = s.dispatch(1, 1, "2027-04-29T10:00:00Z", dc1, [(1, widget, 6), (2, gadget, 2)])
    one += [
        s1,
        s.dispatch(2, 1, "2027-04-30T15:00:00Z", dc1, [(1, widget, 4)]),
        s.dispatch(3, 2, "2027-04-29T08:00:00Z", dc1, [(1, widget, 5), (2, bolt, 60)]),
        s.dispatch(4, 3, "2027-04-30T09:00:00Z", dc1, [(1, gadget, 3)]),
        s.dispatch(5, 4, "2027-04-30T07:00:00Z", dc2, [(1, bolt, 50)]),
        s.dispatch(6, 5, "2027-05-02T10:00:00Z", dc2, [(1, widget, 8)]),
        s.delivery(1, 1, "2027-04-30T12:00:00Z"),
        s.delivery(3, 2, "2027-05-01T10:00:00Z"),
        s.delivery(4, 3, "2027-05-02T09:00:00Z", condition="damaged"),
        s.delivery(5, 4, "2027-05-03T16:00:00Z", documents_ok=False),
    ]
    # Inventory. DC1/WIDGET: counted at 100, three picks; round 2 brings a recount at 80
    # (replacing the running level 85+3) and an adjustment older than that recount.
    one += [
        s.snapshot("c-dc1-w", "2027-04-27T06:00:00Z", dc1, widget, 100),
        s.movement("m-dc1-w-s3", "2027-04-29T08:00:00Z", dc1, widget, -5, "shipment", "S3"),
        s.movement("m-dc1-w-s1", "2027-04-29T10:00:00Z", dc1, widget, -6, "shipment", "S1"),
        s.movement("m-dc1-w-s2", "2027-04-30T15:00:00Z", dc1, widget, -4, "shipment", "S2"),
        s.movement("m-dc1-w-po1", "2027-05-04T11:00:00Z", dc1, widget, 40, "receipt", "PO1"),
        s.movement("m-dc1-w-r1", "2027-05-04T15:00:00Z", dc1, widget, 2, "return_restock", "R1"),
        # DC1/GADGET: counted early in April, so April's first day already has stock.
        s.snapshot("c-dc1-g", "2027-04-01T09:00:00Z", dc1, gadget, 20),
        s.movement("m-dc1-g-s1", "2027-04-29T10:00:00Z", dc1, gadget, -2, "shipment", "S1"),
        s.movement("m-dc1-g-s4", "2027-04-30T09:00:00Z", dc1, gadget, -3, "shipment", "S4"),
        s.snapshot("c-dc1-b", "2027-04-27T06:00:00Z", dc1, bolt, 500),
        s.movement("m-dc1-b-s3", "2027-04-29T08:00:00Z", dc1, bolt, -60, "shipment", "S3"),
        s.movement("m-dc1-b-po1", "2027-05-04T11:00:00Z", dc1, bolt, 200, "receipt", "PO1"),
        # DC2/BOLT: movements only, never counted.
        s.movement("m-dc2-b-in", "2027-04-20T12:00:00Z", dc2, bolt, 200, "transfer_in", "T1"),
        s.movement("m-dc2-b-s5", "2027-04-30T07:00:00Z", dc2, bolt, -50, "shipment", "S5"),
        s.movement("m-dc2-b-r3", "2027-05-04T13:00:00Z", dc2, bolt, 5, "return_restock", "R3"),
        # DC2/WIDGET: a movement at the very instant of the count is already in it.
        s.snapshot("c-dc2-w", "2027-04-25T12:00:00Z", dc2, widget, 30),
        s.movement("m-dc2-w-adj", "2027-04-25T12:00:00Z", dc2, widget, -2, "adjustment", "K1"),
        s.movement("m-dc2-w-po3a", "2027-05-01T10:00:00Z", dc2, widget, 3, "receipt", "PO3"),
        s.movement("m-dc2-w-s6", "2027-05-02T10:00:00Z", dc2, widget, -8, "shipment", "S6"),
        s.movement("m-dc2-g-po2", "2027-05-03T14:00:00Z", dc2, gadget, 8, "receipt", "PO2"),
    ]
    # Returns: R1 restocked, R2 scrapped, R3 restocked at the other DC.
    r2 = s.return_(2, "2027-05-03T09:00:00Z", 3, 1, gadget, 3, "damaged", "scrap", 144.0, 12.75)
    one += [
        s.return_(1, "2027-05-04T10:00:00Z", 1, 1, widget, 2, "not_needed", "restock", 40.0, 3.5),
        r2,
        s.return_(3, "2027-05-04T09:00:00Z", 4, 1, bolt, 5, "wrong_item", "restock", 2.5, 0.4),
    ]
    # Procurement. PO1 line 2 is received short by its date, the rest later (round 2); PO2 is
    # short; PO3 arrives in two parts, the second reported late; PO4 is not due yet.
    one += [
        s.po(1, "2027-04-20T08:00:00Z", 1, dc1, "2027-05-04",
             [(widget, 40, 3.9), (bolt, 300, 0.08)]),
        s.po(2, "2027-04-21T08:00:00Z", 2, dc2, "2027-05-03", [(gadget, 10, 11.0)]),
        s.po(3, "2027-04-22T08:00:00Z", 1, dc2, "2027-05-03", [(widget, 5, 4.0)]),
        s.po(4, "2027-04-23T08:00:00Z", 2, dc1, "2027-05-10", [(bolt, 1000, 0.07)]),
        s.receipt("g-po1", "2027-05-04T11:00:00Z", 1, [(1, widget, 40), (2, bolt, 200)]),
        s.receipt("g-po2", "2027-05-03T14:00:00Z", 2, [(1, gadget, 8)]),
        s.receipt("g-po3a", "2027-05-01T10:00:00Z", 3, [(1, widget, 3)]),
    ]  # fmt: skip
    # Round 1's latest event is on 2027-05-04: its as-of date.

    # Round 2. Late: O7, placed on 04-28 UTC (written with a +02:00 offset), shipped and
    # delivered in time; S2's delivery; PO3's second receipt; a recount and an older movement.
    two += [
        s.order(7, "2027-04-29T01:30:00+02:00", dc1, "online", "2027-05-02", [(bolt, 10, 0.5)]),
        s.dispatch(8, 7, "2027-04-29T09:00:00Z", dc1, [(1, bolt, 10)]),
        s.delivery(8, 7, "2027-05-01T09:00:00Z"),
        s.delivery(2, 1, "2027-05-01T18:00:00Z"),
        s.receipt("g-po3b", "2027-05-02T16:00:00Z", 3, [(1, widget, 2)]),
        s.movement("m-dc1-w-adj", "2027-04-30T20:00:00Z", dc1, widget, 3, "adjustment", "K2"),
        s.snapshot("c-dc1-w-2", "2027-05-01T06:00:00Z", dc1, widget, 80),
        s.movement("m-dc1-b-s8", "2027-04-29T09:00:00Z", dc1, bolt, -10, "shipment", "S8"),
        s.movement("m-dc2-w-po3b", "2027-05-02T16:00:00Z", dc2, widget, 2, "receipt", "PO3"),
        # Two late returns of one day, category and reason: one row.
        s.return_(4, "2027-05-03T11:00:00Z", 2, 2, bolt, 10, "defective", "refurbish", 5.0, 0.3333),
        s.return_(5, "2027-05-03T17:45:00Z", 7, 1, bolt, 2, "defective", "scrap", 1.0, 0.1),
        # Retries of events already counted.
        s1,
        r2,
        # New: O6 goes out late, O8 is placed (not due by the end), PO1's rest arrives, and a
        # recount of DC2/GADGET on 05-08 moves the as-of date.
        s.dispatch(7, 6, "2027-05-06T08:00:00Z", dc2, [(1, gadget, 1)]),
        s.delivery(7, 6, "2027-05-07T10:00:00Z"),
        s.order(8, "2027-05-06T12:00:00Z", dc1, "online", "2027-05-12", [(widget, 2, 20.0)]),
        s.dispatch(9, 8, "2027-05-07T09:00:00Z", dc1, [(1, widget, 1)]),
        s.movement("m-dc1-w-s9", "2027-05-07T09:00:00Z", dc1, widget, -1, "shipment", "S9"),
        s.movement("m-dc2-g-s7", "2027-05-06T08:00:00Z", dc2, gadget, -1, "shipment", "S7"),
        s.receipt("g-po1b", "2027-05-06T09:00:00Z", 1, [(2, bolt, 100)]),
        s.movement("m-dc1-b-po1b", "2027-05-06T09:00:00Z", dc1, bolt, 100, "receipt", "PO1"),
        s.snapshot("c-dc2-g", "2027-05-08T07:00:00Z", dc2, gadget, 6),
    ]  # fmt: skip
    # Round 2's latest event is on 2027-05-08.

    s.malformed1 = malformed_messages(s, 1)
    s.malformed2 = malformed_messages(s, 2)
    return s


def malformed_messages(s: Scenario, round_number: int) -> list[Message]:
    """Invalid JSON, a missing field, an unknown event type: each would change a KPI if counted.

    Their event times are far after the scenario, so counting any of them would also move the
    as-of date. Keys start with ``<token>-bad``.
    """
    key = f"{s.token}-bad-{round_number}"
    order = s.order(90 + round_number, "2027-06-30T12:00:00Z", s.dc1, "online", "2027-07-01",
                    [(s.widget, 1000, 1.0)])  # fmt: skip
    missing = {k: v for k, v in order.items() if k != "requested_delivery_date"}
    movement = s.movement(f"bad-{round_number}", "2027-06-30T12:00:00Z", s.dc2, s.bolt, 999,
                          "receipt", "X")  # fmt: skip
    unknown = {**movement, "event_type": "inventory_teleported"}
    truncated = json.dumps(order).encode()[:57]
    return [
        ("scm.orders", f"{key}-json", truncated),
        ("scm.orders", f"{key}-missing", json.dumps(missing).encode()),
        ("scm.inventory", f"{key}-unknown", json.dumps(unknown).encode()),
    ]


# --- running it -----------------------------------------------------------------------------


def produce(settings: Settings, messages: Sequence[Message]) -> None:
    """Produce in order, idempotently, and wait until the broker has every message."""
    from confluent_kafka import Producer

    producer = Producer({**settings.librdkafka_config(), "enable.idempotence": True})
    failures: list[Any] = []

    def report(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(error)

    for topic, key, value in messages:
        producer.produce(topic, key=key, value=value, on_delivery=report)
    assert producer.flush(60) == 0
    assert not failures, failures


def scm_refresh(settings: Settings) -> tuple[int, list[str]]:
    """``scm refresh`` in-process, configured through the environment like a user's shell;
    its exit code and what it printed."""
    from scm.cli import main

    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("SCM_LAKE", settings.lake)
        patch.setenv("SCM_STATE", str(settings.state))
        patch.setenv("SCM_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
        patch.setenv("SCM_SPARK_MASTER", "local[2]")
        patch.setenv("SCM_ENGINE", settings.engine)
        patch.delenv("SCM_SETTINGS_FILE", raising=False)
        patch.chdir(Path(settings.lake).parent)  # no stray ./scm.env
        code = main(["refresh"])
    return code, printed.getvalue().splitlines()


def read_delta(path: str) -> list[dict[str, Any]]:
    from deltalake import DeltaTable

    return DeltaTable(path).to_pyarrow_table().to_pylist()


@dataclass
class LakeState:
    """This run's rows of every gold table and of the inventory position after one round."""

    exit_code: int
    printed: list[str]
    gold: dict[str, list[dict[str, Any]]]
    positions: list[dict[str, Any]]
    quarantine_keys: list[str]
    bronze_event_ids: set[str]


def lake_state(lake: Lake, token: str, refreshed: tuple[int, list[str]]) -> LakeState:
    gold = {
        name: [row for row in read_delta(lake.gold(name)) if str(row[column]).startswith(token)]
        for name, column in TOKEN_COLUMN.items()
    }
    positions = [
        row
        for row in read_delta(lake.silver("inventory_position"))
        if str(row["location_id"]).startswith(token)
    ]
    quarantine = [
        str(row["key"])
        for row in read_delta(lake.quarantine)
        if str(row["key"]).startswith(f"{token}-bad")
    ]
    event_ids = {
        str(row["event_id"])
        for entity in ("orders", "shipments", "inventory", "returns", "procurement")
        for row in read_delta(lake.bronze(entity))
        if str(row["event_id"]).startswith(token)
    }
    return LakeState(*refreshed, gold, positions, quarantine, event_ids)


@dataclass
class Run:
    scenario: Scenario
    rounds: list[LakeState]
    settings: Settings


@pytest.fixture(scope="module", params=["duckdb", "spark"])
def run(
    request: pytest.FixtureRequest,
    spark: Any,
    kafka_broker: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Run]:
    """Produce round 1, ``scm refresh``, produce round 2, ``scm refresh``; keep both states.

    Once per engine of the batch layer: both must give the reference's rows. The second
    engine's run gets a broker of its own: the first run's round 2 (a later as-of date)
    would otherwise be in the topics it ingests."""
    from scm.broker import EmbeddedBroker

    with contextlib.ExitStack() as stack:
        bootstrap = kafka_broker
        if request.param == "spark":
            private = load_settings(
                {
                    "SCM_STATE": str(tmp_path_factory.mktemp("spark-broker")),
                    "SCM_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}",
                }
            )
            bootstrap = stack.enter_context(EmbeddedBroker(private)).bootstrap
        yield _run_rounds(
            make_settings(
                tmp_path_factory.mktemp("acceptance"), bootstrap, SCM_ENGINE=request.param
            )
        )


def _run_rounds(settings: Settings) -> Run:
    from scm.kafka import ensure_topics

    lake = Lake.at(settings.lake)
    scenario = build_scenario(f"acc{uuid.uuid4().hex[:8]}")
    Path(lake.landing).mkdir(parents=True)
    for name, text in scenario.landing_files().items():
        Path(lake.landing, name).write_text(text)
    ensure_topics(settings)

    # Another producer's traffic on the same topics, as other test modules leave behind: same
    # days, unrelated ids, skus this lake has no master data for. None of it may leak in.
    neighbour = [message(event) for event in build_scenario(f"zz{uuid.uuid4().hex[:8]}").round1]

    rounds = []
    for events, malformed, others in (
        (scenario.round1, scenario.malformed1, neighbour),
        (scenario.round2, scenario.malformed2, []),
    ):
        messages = [message(event) for event in events]
        produce(settings, messages[:3] + malformed + others + messages[3:])
        rounds.append(lake_state(lake, scenario.token, scm_refresh(settings)))
    return Run(scenario, rounds, settings)


# --- comparing ------------------------------------------------------------------------------


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, float) and isinstance(got, float):
        # The same formula evaluated in another order may differ in the last bits.
        return math.isclose(expected, got, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(got, Decimal):
        return False  # kpis.md: money is a double after aggregation
    return type(expected) is type(got) and expected == got


def mismatches(table: str, expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> list[str]:
    """Every difference between the reference's rows and the lake's, one line each."""
    grain = GRAIN[table]
    want = {tuple(row[c] for c in grain): row for row in expected}
    have = {tuple(row[c] for c in grain): row for row in got}
    problems = (
        [f"{table}: {len(got) - len(have)} duplicate grain rows"] if len(have) < len(got) else []
    )
    problems += [
        f"{table} {key}: row missing" for key in sorted(want.keys() - have.keys(), key=repr)
    ]
    problems += [
        f"{table} {key}: unexpected row {have[key]}"
        for key in sorted(have.keys() - want.keys(), key=repr)
    ]
    for key in sorted(want.keys() & have.keys(), key=repr):
        for column, value in want[key].items():
            if column not in have[key]:
                problems.append(f"{table}: column {column} missing")
            elif not _same(value, have[key][column]):
                problems.append(
                    f"{table} {key} {column}: expected {value!r}, got {have[key][column]!r}"
                )
    return sorted(set(problems))


def reference_after(scenario: Scenario, round_number: int) -> Reference:
    events = scenario.round1 + (scenario.round2 if round_number == 2 else [])
    return kpi_reference.compute(events, scenario.products)


# --- tests ----------------------------------------------------------------------------------


def test_reference_agrees_with_hand_computed_values() -> None:
    """Guards the reference on this scenario with numbers worked out by hand from kpis.md."""
    s = build_scenario("hand")
    first, final = reference_after(s, 1), reference_after(s, 2)
    assert (first.as_of, final.as_of) == (dt.date(2027, 5, 4), dt.date(2027, 5, 8))

    def row(ref: Reference, table: str, *key: Any) -> dict[str, Any]:
        (found,) = [r for r in ref.gold[table] if tuple(r[c] for c in GRAIN[table]) == key]
        return found

    may, april = dt.date(2027, 5, 1), dt.date(2027, 4, 1)
    day28 = dt.date(2027, 4, 28)
    # O1 filled; O2's BOLT line 60 of 100; O7 (late, +02:00 is still 04-28 UTC) filled.
    fill = row(final, "fill_rate_daily", day28, s.dc1, "online")
    assert (fill["orders"], fill["orders_filled"], fill["lines"], fill["lines_filled"]) == (
        3,
        2,
        5,
        4,
    )
    assert (fill["units_ordered"], fill["units_filled"]) == (127, 87)
    # Round 1: O1 waits for S2's delivery, O2 short; round 2: O1 and O7 perfect.
    assert row(first, "perfect_order_daily", day28, s.dc1, "online")["perfect_orders"] == 0
    assert row(final, "perfect_order_daily", day28, s.dc1, "online")["perfect_orders"] == 2
    # O1: 05-01T18:00 − 04-28T09:00 = 3.375 d; O7: 05-01T09:00 − 04-28T23:30 = 2.3958.. d.
    cycle = row(final, "order_cycle_time_daily", day28, s.dc1, "online")
    assert cycle["orders_delivered"] == 2
    assert cycle["avg_cycle_time_days"] == pytest.approx((3.375 + 57.5 / 24) / 2)
    # O6 is not due in round 1 (05-05 > 05-04): only O5 counts then; both by the end.
    assert row(first, "perfect_order_daily", dt.date(2027, 4, 29), s.dc2, "online")["orders"] == 1
    assert row(final, "perfect_order_daily", dt.date(2027, 4, 29), s.dc2, "online")["orders"] == 2
    # DC2 in May round 2: cogs = S6 8 × 4.25 + S7 1 × 12.5 = 46.5 over 8 days.
    turns = row(final, "inventory_turns_monthly", may, s.dc2)
    assert (turns["period_days"], turns["cogs"]) == (8, 46.5)
    # DC2 April: BOLT 200 on 04-20..29 (10 days), 150 on 04-30; WIDGET 30 from 04-25 (6 days);
    # GADGET 0. Σ = (10 × 200 + 150) × 0.1 + 6 × 30 × 4.25 = 215 + 765 = 980 over 30 days.
    assert row(final, "inventory_turns_monthly", april, s.dc2)["avg_inventory_value"] == (
        pytest.approx(980 / 30)
    )
    assert final.inventory_position[(s.dc1, s.widget)] == 80 + 40 + 2 - 1
    assert first.inventory_position[(s.dc1, s.widget)] == 100 - 5 - 6 - 4 + 40 + 2
    assert final.inventory_position[(s.dc2, s.widget)] == 30 + 3 - 8 + 2
    otif = row(final, "supplier_otif_daily", dt.date(2027, 5, 3), f"{s.token}-SUP1")
    assert (otif["po_lines"], otif["po_lines_otif"]) == (1, 1)  # PO3: 3 + 2 by 05-03
    assert (
        row(first, "supplier_otif_daily", dt.date(2027, 5, 3), f"{s.token}-SUP1")["po_lines_otif"]
        == 0
    )
    defective = row(final, "returns_cost_daily", dt.date(2027, 5, 3), s.hardware, "defective")
    assert (defective["returns"], defective["units_returned"]) == (2, 12)
    assert defective["processing_cost"] == 0.4333


@pytest.mark.parametrize("round_number", [1, 2])
def test_refresh_succeeds(run: Run, round_number: int) -> None:
    assert run.rounds[round_number - 1].exit_code == 0


def test_refresh_shows_each_step_as_it_finishes(run: Run) -> None:
    """A first refresh takes a while: each step is printed with the time since the start."""
    printed = run.rounds[0].printed
    steps = [line.split("] ", 1)[1] for line in printed[:-1]]
    assert all(re.fullmatch(r"\[ *\d+\.\d s\] .+", line) for line in printed[:-1]), printed
    assert steps[0].startswith("landing: products ")
    assert steps[1] == "starting Spark"  # for the ingest; the DuckDB engine needs none
    assert steps[2] == "ingest: caught up"
    assert steps[3].startswith("silver: order_lines +")
    every = len(GOLD_TABLES)
    assert steps[4].startswith(f"gold: rebuilding {every} of {every} tables, as-of ")
    gold = [step for step in steps[5:] if step.startswith("gold.")]
    assert sorted(step.split(":", 1)[0] for step in gold) == sorted(
        f"gold.{name}" for name in GOLD_TABLES
    )
    assert all(" in all partitions (" in step for step in gold)
    # Then the reorder-alert outbox settles, printed when it changed (the shared broker's
    # other events can bring pairs that need a reorder).
    after = steps[5 + len(gold) :]
    assert after == [] or (
        len(after) == 1
        and re.fullmatch(r"reorder alerts: \d+ opened, 0 resolved, \d+ published", after[0])
    ), after
    assert re.fullmatch(r"refresh 1 \(first build\) in \d+\.\d s, as-of 2027-05-04", printed[-1])


@pytest.mark.parametrize("round_number", [1, 2])
@pytest.mark.parametrize("table", list(GRAIN))
def test_every_gold_row_equals_kpis_md(run: Run, table: str, round_number: int) -> None:
    state = run.rounds[round_number - 1]
    expected = reference_after(run.scenario, round_number).gold[table]
    assert expected, "the scenario must give every table rows"
    assert mismatches(table, expected, state.gold[table]) == []


@pytest.mark.parametrize("round_number", [1, 2])
def test_inventory_position_equals_kpis_md(run: Run, round_number: int) -> None:
    state = run.rounds[round_number - 1]
    expected = reference_after(run.scenario, round_number).inventory_position
    got = {(row["location_id"], row["sku"]): row["on_hand"] for row in state.positions}
    assert len(got) == len(state.positions), "one row per (location_id, sku)"
    assert got == expected
    assert all(row["updated_at"] is not None for row in state.positions)


def test_malformed_messages_are_quarantined_and_not_counted(run: Run) -> None:
    s = run.scenario
    first, final = run.rounds
    bad = [key for _, key, _ in s.malformed1 + s.malformed2]
    assert sorted(first.quarantine_keys) == sorted(key for _, key, _ in s.malformed1)
    assert sorted(final.quarantine_keys) == sorted(bad)
    # None of them reached bronze (the KPI comparisons show none was counted either: each
    # would have moved the as-of date to 2027-06-30 and added 1000 ordered units).
    malformed_ids = {s.id("ev-O91"), s.id("ev-O92"), s.id("ev-bad-1"), s.id("ev-bad-2")}
    assert not final.bronze_event_ids & malformed_ids
    valid_ids = {str(e["event_id"]) for e in s.round1 + s.round2}
    assert final.bronze_event_ids == valid_ids


def _drilldown_mismatches(kpi: Any, records: Any, totals: Any) -> list[str]:
    """Where a tile's records disagree with its KPI's own counts (empty: they agree)."""
    against = records["reason"].notna() if "reason" in records else None
    title, sums = kpi.title, totals.sum(numeric_only=True)
    pairs: dict[str, tuple[float, float]]
    if title == "Order fill rate":
        pairs = {
            "orders": (records["order_id"].nunique(), sums["orders"]),
            "orders not filled": (
                records.loc[against, "order_id"].nunique(),
                sums["orders"] - sums["orders_filled"],
            ),
        }
    elif title == "Line fill rate":
        pairs = {
            "lines": (len(records), sums["lines"]),
            "lines not filled": (against.sum(), sums["lines"] - sums["lines_filled"]),
        }
    elif title == "Unit fill rate":
        pairs = {
            "units ordered": (records["ordered_units"].sum(), sums["units_ordered"]),
            "units filled": (records["filled_units"].sum(), sums["units_filled"]),
        }
    elif title == "Perfect order rate":
        pairs = {
            "orders": (len(records), sums["orders"]),
            "not perfect": (against.sum(), sums["orders"] - sums["perfect_orders"]),
        }
    elif title == "Order cycle time":
        pairs = {
            "orders delivered": (len(records), sums["orders_delivered"]),
            "cycle days": (records["cycle_time_days"].sum(), sums["cycle_time_days_total"]),
        }
    elif title in ("Inventory turns", "Days of supply"):
        pairs = {"cogs": (records["cogs"].sum(), sums["cogs"])}
    elif title == "Returns cost per return":
        pairs = {
            "returns": (len(records), sums["returns"]),
            "processing cost": (records["processing_cost"].sum(), sums["processing_cost"]),
        }
    else:
        assert title == "Supplier OTIF", f"no check for the tile {title}"
        pairs = {
            "PO lines": (len(records), sums["po_lines"]),
            "not OTIF": (against.sum(), sums["po_lines"] - sums["po_lines_otif"]),
        }
    return [
        f"{title} {what}: records {got}, KPI {want}"
        for what, (got, want) in pairs.items()
        if not math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9)
    ]


def test_drilldown_records_add_up_to_each_kpi(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each scorecard tile's records, for every day (or month) of the scenario and for the
    whole span, give that KPI's own counts: a drill-down shows exactly what the tile counts.
    """
    import streamlit as st

    from dashboards import connection, drilldown
    from dashboards.scorecard import KPIS

    monkeypatch.setenv("SCM_LAKE", run.settings.lake)
    monkeypatch.setenv("SCM_STATE", str(run.settings.state))
    st.cache_data.clear()
    gold = run.rounds[-1].gold
    s = run.scenario
    filters = {
        "locations": [s.dc1, s.dc2],
        "channels": [],
        "categories": sorted({row["category"] for row in gold["returns_cost_daily"]}),
        "suppliers": sorted({row["supplier_id"] for row in gold["supplier_otif_daily"]}),
    }
    span = {"start_date": dt.date(2027, 1, 1), "end_date": dt.date(2027, 12, 31)}
    problems: list[str] = []
    checked: set[str] = set()
    for kpi in KPIS:
        whole = connection.run(kpi.query, {**filters, **span})
        days = sorted(set(whole["day"]))
        scopes = [(day, day) for day in days] + ([] if kpi.monthly else [(days[0], days[-1])])
        for start, end in scopes:
            totals = whole[(whole["day"] >= start) & (whole["day"] <= end)]
            records = drilldown.records(drilldown.Scope(kpi, start, end), filters)
            problems += [f"{start}..{end} {p}" for p in _drilldown_mismatches(kpi, records, totals)]
            if len(records):
                checked.add(kpi.title)
    assert problems == []
    assert checked == {kpi.title for kpi in KPIS}, "every tile must have records to check"


def test_scenario_messages_are_what_they_claim() -> None:
    """Guards the fixture: every scenario event is valid, every malformed message is not."""
    from scm.contracts import validate_event

    s = build_scenario("check")
    for topic, key, value in [message(e) for e in s.round1 + s.round2]:
        assert validate_event(topic, value) is None, key
    for topic, key, value in s.malformed1 + s.malformed2:
        assert validate_event(topic, value) is not None, key
