"""Track & trace over a hand-made bronze lake: one split order with a damaged delivery, a
duplicate delivery event, a return and a quarantined sibling, beside unrelated orders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from streamlit.testing.v1 import AppTest

from dashboards import trace
from scm.contracts import quarantine_arrow_schema
from scm.lake import Lake
from scm.query import LakeQuery, open_lake
from transforms.testing import append_bronze

PAGE = Path(__file__).resolve().parents[1] / "dashboards" / "app_pages" / "trace.py"
UTC = dt.UTC
NOT_FOUND = "Nothing found for"


def _envelope(event_id: str, event_type: str, event_time: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "event_time": event_time,
        "source": "test",
        "schema_version": 1,
    }


def _order(
    event_id: str, order_id: str, customer: str, at: str, lines: list[Any]
) -> dict[str, Any]:
    return {
        **_envelope(event_id, "order_placed", at),
        "order_id": order_id,
        "customer_id": customer,
        "channel": "online",
        "ship_from": "DC-1",
        "requested_delivery_date": "2026-03-06",
        "currency": "USD",
        "lines": [
            {"line_no": n, "sku": sku, "quantity": q, "unit_price": p} for n, sku, q, p in lines
        ],
    }


def _dispatch(
    event_id: str, shipment: str, order: str, at: str, lines: list[Any]
) -> dict[str, Any]:
    return {
        **_envelope(event_id, "shipment_dispatched", at),
        "shipment_id": shipment,
        "order_id": order,
        "ship_from": "DC-1",
        "carrier": "UPS",
        "lines": [{"line_no": n, "sku": sku, "quantity": q} for n, sku, q in lines],
    }


def _delivery(
    event_id: str, shipment: str, order: str, at: str, condition: str, docs: bool
) -> dict[str, Any]:
    return {
        **_envelope(event_id, "shipment_delivered", at),
        "shipment_id": shipment,
        "order_id": order,
        "condition": condition,
        "documents_ok": docs,
    }


ORDERS = [
    _order(
        "e-o1", "O-1", "C-1", "2026-03-02T10:00:00Z", [(1, "SKU-A", 10, 25), (2, "SKU-B", 4, 8)]
    ),
    _order("e-o2", "O-2", "C-2", "2026-03-03T09:00:00Z", [(1, "SKU-A", 1, 25)]),
    _order("e-o10", "O-10", "C-1", "2026-03-20T09:00:00Z", [(1, "SKU-C", 2, 5)]),
]
# O-1 ships in two: S-1 (line 1 whole, half of line 2), S-2 (the rest of line 2).
SHIPMENTS = [
    _dispatch("e-s1", "S-1", "O-1", "2026-03-02T15:00:00Z", [(1, "SKU-A", 10), (2, "SKU-B", 2)]),
    _dispatch("e-s2", "S-2", "O-1", "2026-03-03T08:00:00Z", [(2, "SKU-B", 2)]),
    _dispatch("e-s3", "S-3", "O-2", "2026-03-03T12:00:00Z", [(1, "SKU-A", 1)]),
    _delivery("e-d1", "S-1", "O-1", "2026-03-04T12:00:00Z", "damaged", True),
    _delivery("e-d2", "S-2", "O-1", "2026-03-05T09:00:00Z", "ok", False),
]
# A producer retry of S-2's delivery lands a day later, in a later micro-batch.
RETRY_OFFSET = 9
RETRIED = {**SHIPMENTS[4], "_ingested_at": "2026-03-06T00:00:00Z"}
RETURNS = [
    {
        **_envelope("e-r1", "return_received", "2026-03-06T10:00:00Z"),
        "return_id": "R-1",
        "order_id": "O-1",
        "line_no": 1,
        "sku": "SKU-A",
        "quantity": 3,
        "reason": "damaged",
        "disposition": "scrap",
        "refund_amount": 75,
        "processing_cost": 6.5,
        "currency": "USD",
    },
    {
        **_envelope("e-r2", "return_received", "2026-03-07T10:00:00Z"),
        "return_id": "R-2",
        "order_id": "O-2",
        "line_no": 1,
        "sku": "SKU-A",
        "quantity": 1,
        "reason": "not_needed",
        "disposition": "restock",
        "refund_amount": 25,
        "processing_cost": 2,
        "currency": "USD",
    },
]
PROCUREMENT = [
    {
        **_envelope("e-p1", "po_created", "2026-03-01T08:00:00Z"),
        "po_id": "PO-1",
        "supplier_id": "SUP-1",
        "ship_to": "DC-1",
        "expected_date": "2026-03-08",
        "currency": "USD",
        "lines": [{"line_no": 1, "sku": "SKU-A", "quantity": 50, "unit_cost": 12.5}],
    },
    {
        **_envelope("e-p2", "po_received", "2026-03-08T14:00:00Z"),
        "po_id": "PO-1",
        "lines": [{"line_no": 1, "sku": "SKU-A", "quantity": 30}],
    },
]
DELIVERY_ERROR = "field 'condition' must be one of ok|damaged, got 'lost'"
QUARANTINED = [
    {
        "topic": "scm.shipments",
        "partition": 0,
        "offset": 7,
        "key": "S-2",
        "raw_value": '{"event_id": "e-bad", "event_type": "shipment_delivered", '
        '"shipment_id": "S-2", "order_id": "O-1", "condition": "lost"}',
        "error": DELIVERY_ERROR,
        "quarantined_at": dt.datetime(2026, 3, 5, 9, 30, tzinfo=UTC),
        "raw_bytes": None,
    },
    {  # mentions O-10 only: not a sibling of O-1
        "topic": "scm.orders",
        "partition": 1,
        "offset": 4,
        "key": "O-10",
        "raw_value": '{"event_id": "e-bad-2", "order_id": "O-10", "lines": [',
        "error": "invalid JSON",
        "quarantined_at": dt.datetime(2026, 3, 20, 9, 5, tzinfo=UTC),
        "raw_bytes": None,
    },
]


def build_trace_lake(root: Path) -> Path:
    lake = Lake.at(str(root))
    append_bronze(lake, "orders", ORDERS)
    append_bronze(lake, "shipments", SHIPMENTS)
    append_bronze(lake, "shipments", [RETRIED], first_offset=RETRY_OFFSET)
    append_bronze(lake, "returns", RETURNS)
    append_bronze(lake, "procurement", PROCUREMENT)
    write_deltalake(
        lake.bronze("quarantine"),
        pa.Table.from_pylist(QUARANTINED, schema=quarantine_arrow_schema()),
    )
    return root


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_trace_lake(tmp_path_factory.mktemp("trace") / "lake")


@pytest.fixture(scope="module")
def lake(lake_root: Path) -> Iterator[LakeQuery]:
    with open_lake(str(lake_root)) as opened:
        yield opened


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# Every event of O-1 in time order: (time, step, reference, details, units, duplicate,
# event_id, topic, partition, offset).
O1_TIMELINE = [
    (
        _at("2026-03-02T10:00:00Z"), "placed", "O-1",
        "customer C-1 · online from DC-1 · requested 2026-03-06 · "
        "line 1 SKU-A ×10 @ 25.00, line 2 SKU-B ×4 @ 8.00 USD",
        14, False, "e-o1", "scm.orders", 0, 0,
    ),
    (
        _at("2026-03-02T15:00:00Z"), "dispatched", "S-1",
        "UPS from DC-1 · line 1 SKU-A ×10, line 2 SKU-B ×2",
        12, False, "e-s1", "scm.shipments", 0, 0,
    ),
    (
        _at("2026-03-03T08:00:00Z"), "dispatched", "S-2",
        "UPS from DC-1 · line 2 SKU-B ×2", 2, False, "e-s2", "scm.shipments", 0, 1,
    ),
    (
        _at("2026-03-04T12:00:00Z"), "delivered", "S-1",
        "condition damaged · documents ok · line 1 SKU-A ×10, line 2 SKU-B ×2",
        12, False, "e-d1", "scm.shipments", 0, 3,
    ),
    (
        _at("2026-03-05T09:00:00Z"), "delivered", "S-2",
        "condition ok · documents not ok · line 2 SKU-B ×2",
        2, False, "e-d2", "scm.shipments", 0, 4,
    ),
    (
        _at("2026-03-05T09:00:00Z"), "delivered", "S-2",
        "condition ok · documents not ok · line 2 SKU-B ×2",
        2, True, "e-d2", "scm.shipments", 0, RETRY_OFFSET,
    ),
    (
        _at("2026-03-06T10:00:00Z"), "returned", "R-1",
        "reason damaged · scrap · line 1 SKU-A ×3 · refund 75.00 USD · cost 6.50 USD",
        3, False, "e-r1", "scm.returns", 0, 0,
    ),
]  # fmt: skip
COLUMNS = (
    "event_time", "step", "reference", "details", "units", "is_duplicate",
    "event_id", "topic", "partition", "offset",
)  # fmt: skip


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    return [tuple(row[c] for c in COLUMNS) for row in table.to_pylist()]


# -- lookups ------------------------------------------------------------------------------


def test_an_order_shows_exactly_its_events_in_time_order(lake: LakeQuery) -> None:
    found = trace.find(lake, "order", "O-1")
    assert found is not None
    assert (found.root, found.root_id) == ("order", "O-1")
    assert found.timeline.schema == trace.TIMELINE_SCHEMA
    assert _rows(found.timeline) == O1_TIMELINE


def test_the_retried_delivery_keeps_its_own_arrival(lake: LakeQuery) -> None:
    found = trace.find(lake, "order", "O-1")
    assert found is not None
    copies = [r for r in found.timeline.to_pylist() if r["event_id"] == "e-d2"]
    assert [(r["is_duplicate"], r["ingested_at"]) for r in copies] == [
        (False, dt.datetime(2026, 1, 1, 0, 0, 4, tzinfo=UTC)),
        (True, _at("2026-03-06T00:00:00Z")),
    ]


@pytest.mark.parametrize(("kind", "id"), [("shipment", "S-2"), ("return", "R-1")])
def test_a_shipment_or_a_return_opens_its_order_history(
    lake: LakeQuery, kind: trace.Kind, id: str
) -> None:
    found = trace.find(lake, kind, id)
    assert found is not None
    assert (found.kind, found.looked_up, found.root_id) == (kind, id, "O-1")
    assert _rows(found.timeline) == O1_TIMELINE


def test_the_quarantined_sibling_is_shown_with_its_error(lake: LakeQuery) -> None:
    found = trace.find(lake, "order", "O-1")
    assert found is not None
    assert found.quarantined.to_pylist() == [
        {
            "quarantined_at": dt.datetime(2026, 3, 5, 9, 30, tzinfo=UTC),
            "error": DELIVERY_ERROR,
            "topic": "scm.shipments",
            "partition": 0,
            "offset": 7,
            "key": "S-2",
            "raw_value": QUARANTINED[0]["raw_value"],
        }
    ]


def test_another_order_has_its_own_history_and_quarantine(lake: LakeQuery) -> None:
    found = trace.find(lake, "order", "O-10")
    assert found is not None
    assert [(r["step"], r["event_id"]) for r in found.timeline.to_pylist()] == [("placed", "e-o10")]
    assert [(r["topic"], r["offset"], r["error"]) for r in found.quarantined.to_pylist()] == [
        ("scm.orders", 4, "invalid JSON")
    ]
    other = trace.find(lake, "return", "R-2")
    assert other is not None and other.root_id == "O-2"
    assert [(r["step"], r["reference"]) for r in other.timeline.to_pylist()] == [
        ("placed", "O-2"),
        ("dispatched", "S-3"),
        ("returned", "R-2"),
    ]
    assert other.quarantined.num_rows == 0


def test_a_purchase_order_shows_its_creation_and_receipts(lake: LakeQuery) -> None:
    found = trace.find(lake, "po", "PO-1")
    assert found is not None
    rows = [(r["step"], r["details"], r["units"], r["offset"]) for r in found.timeline.to_pylist()]
    assert rows == [
        ("created", "supplier SUP-1 to DC-1 · expected 2026-03-08 · line 1 SKU-A ×50 @ 12.50 USD",
         50, 0),
        ("received", "line 1 SKU-A ×30", 30, 1),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "id"),
    [("order", "O-404"), ("shipment", "S-404"), ("return", "R-404"), ("po", "PO-404")],
)
def test_an_unknown_id_finds_nothing(lake: LakeQuery, kind: trace.Kind, id: str) -> None:
    assert trace.find(lake, kind, id) is None


def test_an_id_is_a_value_never_sql(lake: LakeQuery) -> None:
    assert trace.find(lake, "order", "O-1' or '1'='1") is None
    assert trace.find(lake, "shipment", "x') or true --") is None


def test_an_unknown_kind_lists_the_valid_ones(lake: LakeQuery) -> None:
    with pytest.raises(ValueError, match="order, shipment, return, po"):
        trace.find(lake, "invoice", "O-1")  # type: ignore[arg-type]


# -- search -------------------------------------------------------------------------------


def test_a_customer_search_lists_its_orders_in_the_dates(lake: LakeQuery) -> None:
    march = trace.OrderSearch(dt.date(2026, 3, 1), dt.date(2026, 3, 31), customer_id="C-1")
    assert trace.search_orders(lake, march).to_pylist() == [
        {
            "order_id": "O-1",
            "placed_at": _at("2026-03-02T10:00:00Z"),
            "customer_id": "C-1",
            "channel": "online",
            "ship_from": "DC-1",
            "lines": 2,
            "units": 14,
            "skus": "SKU-A, SKU-B",
        },
        {
            "order_id": "O-10",
            "placed_at": _at("2026-03-20T09:00:00Z"),
            "customer_id": "C-1",
            "channel": "online",
            "ship_from": "DC-1",
            "lines": 1,
            "units": 2,
            "skus": "SKU-C",
        },
    ]
    early = trace.OrderSearch(dt.date(2026, 3, 1), dt.date(2026, 3, 19), customer_id="C-1")
    assert trace.search_orders(lake, early).column("order_id").to_pylist() == ["O-1"]


def test_a_sku_search_lists_the_orders_with_it(lake: LakeQuery) -> None:
    days = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    by_sku = trace.search_orders(lake, trace.OrderSearch(*days, sku="SKU-A"))
    assert by_sku.column("order_id").to_pylist() == ["O-1", "O-2"]
    both = trace.search_orders(lake, trace.OrderSearch(*days, customer_id="C-2", sku="SKU-A"))
    assert both.column("order_id").to_pylist() == ["O-2"]
    assert trace.order_dates(lake) == (dt.date(2026, 3, 2), dt.date(2026, 3, 20))


def test_a_search_needs_a_customer_or_a_sku() -> None:
    with pytest.raises(ValueError, match="customer_id, a sku"):
        trace.OrderSearch(dt.date(2026, 3, 1), dt.date(2026, 3, 2))


# -- a young lake -------------------------------------------------------------------------


def test_a_young_lake_traces_what_it_has(tmp_path: Path) -> None:
    lake = Lake.at(str(tmp_path / "lake"))
    with open_lake(lake.root) as empty:
        assert trace.find(empty, "order", "O-1") is None
        assert trace.event_tables(empty) == []
        assert trace.order_dates(empty) is None
    append_bronze(lake, "orders", ORDERS[:1])
    with open_lake(lake.root) as young:
        assert trace.event_tables(young) == ["bronze.orders"]
        found = trace.find(young, "order", "O-1")
        assert found is not None
        assert _rows(found.timeline) == O1_TIMELINE[:1]
        assert found.quarantined.num_rows == 0
        assert trace.find(young, "shipment", "S-1") is None


def test_an_id_only_in_quarantine_shows_its_rejected_events(tmp_path: Path) -> None:
    lake = Lake.at(str(tmp_path / "lake"))
    write_deltalake(
        lake.bronze("quarantine"),
        pa.Table.from_pylist(QUARANTINED[:1], schema=quarantine_arrow_schema()),
    )
    with open_lake(lake.root) as only_rejected:
        found = trace.find(only_rejected, "shipment", "S-2")
    assert found is not None
    assert found.root_id is None and found.timeline.num_rows == 0
    assert found.quarantined.column("error").to_pylist() == [DELIVERY_ERROR]


# -- the page -----------------------------------------------------------------------------


@pytest.fixture
def lake_env(lake_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SCM_LAKE", str(lake_root))
    monkeypatch.setenv("SCM_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("SCM_SETTINGS_FILE", raising=False)
    return lake_root


def _page() -> AppTest:
    return AppTest.from_file(str(PAGE), default_timeout=60)


def _shown_timeline(app: AppTest) -> list[tuple[Any, ...]]:
    frame = app.dataframe[0].value
    return [
        (row.event_time.to_pydatetime(), row.step, row.reference, row.details, row.units,
         bool(row.is_duplicate), row.event_id, row.topic, row.partition, row.offset)
        for row in frame.itertuples()
    ]  # fmt: skip


def _texts(app: AppTest) -> str:
    return " ".join(str(e.value) for e in [*app.info, *app.caption, *app.subheader])


def test_the_page_traces_a_typed_shipment_id(lake_env: Path) -> None:
    app = _page().run()
    assert not app.exception, [e.message for e in app.exception]
    assert app.title[0].value == "Track & trace"
    assert not app.dataframe  # nothing looked up yet
    app.selectbox(key="trace.kind").set_value("shipment").run()
    app.text_input(key="trace.id").input("S-2").run()
    assert not app.exception, [e.message for e in app.exception]
    assert _shown_timeline(app) == O1_TIMELINE
    assert len(app.get("vega_lite_chart")) == 1
    quarantined = app.dataframe[1].value
    assert quarantined["error"].tolist() == [DELIVERY_ERROR]
    assert quarantined[["topic", "partition", "offset"]].values.tolist() == [
        ["scm.shipments", 0, 7]
    ]
    assert "Order O-1" in _texts(app)
    assert app.query_params == {"shipment_id": "S-2"}  # the address now shares this history


def test_a_link_opens_the_order_history(lake_env: Path) -> None:
    app = _page()
    app.query_params["order_id"] = "O-1"
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    assert app.text_input(key="trace.id").value == "O-1"
    assert _shown_timeline(app) == O1_TIMELINE


def test_a_link_to_a_purchase_order(lake_env: Path) -> None:
    app = _page()
    app.query_params["po_id"] = "PO-1"
    app.run()
    assert [row.step for row in app.dataframe[0].value.itertuples()] == ["created", "received"]
    assert "Purchase order PO-1" in _texts(app)
    assert "No quarantined event mentions" in _texts(app)


def test_an_unknown_id_says_so(lake_env: Path) -> None:
    app = _page().run()
    app.text_input(key="trace.id").input("O-404").run()
    assert not app.exception
    assert not app.dataframe
    assert [m.value for m in app.info if NOT_FOUND in m.value] == [
        "Nothing found for order `O-404`: no accepted or quarantined event mentions it. "
        "Check the id, or look it up as another kind."
    ]


def test_the_page_searches_a_customer_and_opens_a_picked_order(lake_env: Path) -> None:
    app = _page().run()
    app.radio(key="trace.mode").set_value("Customer or sku").run()
    app.text_input(key="trace.customer").input("C-1").run()
    assert not app.exception, [e.message for e in app.exception]
    assert app.dataframe[0].value["order_id"].tolist() == ["O-1", "O-10"]
    assert app.selectbox(key="trace.pick").value == "O-1"
    assert app.dataframe[1].value["event_id"].tolist() == [row[6] for row in O1_TIMELINE]
    assert app.query_params == {"customer_id": "C-1"}
    app.selectbox(key="trace.pick").set_value("O-10").run()
    timeline = app.dataframe[1].value
    assert timeline[["step", "event_id", "offset"]].values.tolist() == [["placed", "e-o10", 2]]


def test_the_page_on_an_empty_lake_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCM_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("SCM_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("SCM_SETTINGS_FILE", raising=False)
    app = _page().run()
    assert not app.exception
    assert any("has no order, shipment, return or PO events" in m.value for m in app.info)
