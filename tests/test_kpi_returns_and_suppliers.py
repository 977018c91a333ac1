"""Returns cost and supplier OTIF on hand-built events, expected rows worked out by hand."""

from __future__ import annotations

import datetime as dt

from simulator.events import po_created, po_received, return_received
from transforms.testing import HandBuiltLake, same_rows


def _return(event_id, time, sku, quantity, reason, disposition, refund, cost):  # type: ignore[no-untyped-def]
    return return_received(
        event_id=event_id, event_time=time, return_id=f"R-{event_id}", order_id="O-1",
        line_no=1, sku=sku, quantity=quantity, reason=reason, disposition=disposition,
        refund_amount=refund, processing_cost=cost,
    )  # fmt: skip


def test_returns_cost_daily_by_category_and_reason(tmp_path) -> None:
    restocked = _return("r1", "2026-03-02T09:00:00Z", "A", 2, "damaged", "restock", 20.0, 3.5)
    events = [
        restocked,
        _return("r2", "2026-03-02T17:00:00Z", "A", 1, "damaged", "scrap", 10.0, 1.25),
        _return("r3", "2026-03-02T18:00:00Z", "B", 1, "not_needed", "restock", 15.5, 2.0),
        # A sku missing from products.csv lands in category "unknown".
        _return("r4", "2026-03-03T08:00:00Z", "Z", 1, "wrong_item", "refurbish", 0.0, 4.0),
        restocked,  # a producer retry: counted once
    ]
    lake = HandBuiltLake(
        str(tmp_path / "lake"),
        {"returns": events},
        products=[("A", "Anvil", "tools", "2", "9"), ("B", "Bolt", "parts", "5", "12")],
    )
    actual = lake.gold("returns_cost_daily", as_of=dt.date(2026, 3, 3))
    expected = [
        dict(return_date=dt.date(2026, 3, 2), category="tools", reason="damaged", returns=2,
            units_returned=3, refund_amount=30.0, processing_cost=4.75),
        dict(return_date=dt.date(2026, 3, 2), category="parts", reason="not_needed", returns=1,
            units_returned=1, refund_amount=15.5, processing_cost=2.0),
        dict(return_date=dt.date(2026, 3, 3), category="unknown", reason="wrong_item", returns=1,
            units_returned=1, refund_amount=0.0, processing_cost=4.0),
    ]  # fmt: skip
    assert same_rows(actual, expected)
    # The records behind it: one row per return (the retry once), with its category.
    detail = lake.gold("returns_detail", as_of=dt.date(2026, 3, 3))
    assert same_rows(
        detail,
        [
            dict(return_date=dt.date(2026, 3, 2), return_id="R-r1", order_id="O-1", line_no=1,
                sku="A", category="tools", reason="damaged", disposition="restock", quantity=2,
                refund_amount=20.0, processing_cost=3.5),
            dict(return_date=dt.date(2026, 3, 2), return_id="R-r2", order_id="O-1", line_no=1,
                sku="A", category="tools", reason="damaged", disposition="scrap", quantity=1,
                refund_amount=10.0, processing_cost=1.25),
            dict(return_date=dt.date(2026, 3, 2), return_id="R-r3", order_id="O-1", line_no=1,
                sku="B", category="parts", reason="not_needed", disposition="restock",
                quantity=1, refund_amount=15.5, processing_cost=2.0),
            dict(return_date=dt.date(2026, 3, 3), return_id="R-r4", order_id="O-1", line_no=1,
                sku="Z", category="unknown", reason="wrong_item", disposition="refurbish",
                quantity=1, refund_amount=0.0, processing_cost=4.0),
        ],
    )  # fmt: skip


def _po(po_id: str, supplier: str, expected: str, lines):  # type: ignore[no-untyped-def]
    return po_created(
        event_id=f"e-{po_id}", event_time="2026-03-01T08:00:00Z", po_id=po_id,
        supplier_id=supplier, ship_to="DC-1", expected_date=expected,
        lines=[(n, sku, qty, 1.5) for n, sku, qty in lines],
    )  # fmt: skip


def _receipt(event_id: str, time: str, po_id: str, lines):  # type: ignore[no-untyped-def]
    return po_received(event_id=event_id, event_time=time, po_id=po_id, lines=lines)


def test_supplier_otif_daily_needs_full_quantity_by_the_expected_date(tmp_path) -> None:
    short = _receipt("g4", "2026-03-09T10:00:00Z", "PO-2", [(1, "A", 2)])
    events = [
        _po("PO-1", "SUP-1", "2026-03-10", [(1, "A", 10), (2, "B", 5)]),
        _po("PO-2", "SUP-1", "2026-03-10", [(1, "A", 3)]),
        _po("PO-3", "SUP-2", "2026-03-12", [(1, "C", 1)]),  # never received
        # PO-1 line 1 in two parts by the expected day (OTIF); line 2 a day late.
        _receipt("g1", "2026-03-08T10:00:00Z", "PO-1", [(1, "A", 6)]),
        _receipt("g2", "2026-03-10T23:00:00Z", "PO-1", [(1, "A", 4)]),
        _receipt("g3", "2026-03-11T08:00:00Z", "PO-1", [(2, "B", 5)]),
        short,  # PO-2: 2 of 3
        short,  # a retry of the same receipt must not make it 4
    ]
    lake = HandBuiltLake(str(tmp_path / "lake"), {"procurement": events})
    sup_1 = dict(expected_date=dt.date(2026, 3, 10), supplier_id="SUP-1", po_lines=3,
                po_lines_otif=1, otif_rate=1 / 3)  # fmt: skip
    # As of 03-11 (the latest event) PO-3 is not due yet: SUP-2 has no row.
    assert same_rows(lake.gold("supplier_otif_daily", as_of=dt.date(2026, 3, 11)), [sup_1])
    # From its expected date on it counts, never received.
    sup_2 = dict(expected_date=dt.date(2026, 3, 12), supplier_id="SUP-2", po_lines=1,
                po_lines_otif=0, otif_rate=0.0)  # fmt: skip
    actual = lake.gold("supplier_otif_daily", as_of=dt.date(2026, 3, 12))
    assert same_rows(actual, [sup_1, sup_2])
