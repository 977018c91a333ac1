"""Track & trace lookups on a simulated lake: cold (first lookup of a fresh session) and warm.

``python -m bench.trace --days 90`` writes ``days`` of accepted simulated events to bronze
(delta-rs, :func:`bench.engines.simulated_bronze`) in a temporary folder, adds a quarantine
of malformed copies (1 % of the events, as a lossy producer would leave), then times
:func:`dashboards.trace.find` (what the page calls) for random order ids and a few
shipment, return and PO ids, and one customer and one sku search. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pyarrow as pa

from dashboards import trace
from scm.lake import Lake
from scm.query import LakeQuery, open_lake

P = ParamSpec("P")
T = TypeVar("T")

QUARANTINED_SHARE = 0.01
# The tables an id of each kind is drawn from, and its column.
ID_SOURCES: dict[trace.Kind, tuple[str, str]] = {
    "order": ("bronze.orders", "order_id"),
    "shipment": ("bronze.shipments", "shipment_id"),
    "return": ("bronze.returns", "return_id"),
    "po": ("bronze.procurement", "po_id"),
}


def write_quarantine(lake: Lake, session: LakeQuery, rng: random.Random) -> int:
    """Malformed copies (cut JSON) of a random 1 % of the order, shipment and return events."""
    from deltalake import write_deltalake

    from scm.contracts import quarantine_arrow_schema

    rows: list[dict[str, Any]] = []
    for table in ("bronze.orders", "bronze.shipments", "bronze.returns"):
        events = session.query(
            f"select * exclude (_kafka_timestamp, _ingested_at) from {table}"
            " where hash(event_id) % 10000 < $share",
            {"share": round(QUARANTINED_SHARE * 10000)},
        ).to_pylist()
        for event in events:
            text = json.dumps(
                {k: v for k, v in event.items() if not k.startswith("_")}, default=str
            )
            rows.append(
                {
                    "topic": event["_topic"],
                    "partition": event["_partition"],
                    "offset": 10_000_000 + len(rows),
                    "key": None,
                    "raw_value": text[: rng.randint(len(text) // 2, len(text) - 1)],
                    "error": "invalid JSON",
                    "quarantined_at": dt.datetime.now(dt.UTC),
                    "raw_bytes": None,
                }
            )
    write_deltalake(
        lake.bronze("quarantine"), pa.Table.from_pylist(rows, schema=quarantine_arrow_schema())
    )
    return len(rows)


def split_into_batches(lake: Lake, batches: int) -> None:
    """Rewrite each event table as ``batches`` appends in arrival order: the many small files
    (and commits) a streaming ingest leaves before maintenance compacts them."""
    from deltalake import DeltaTable, write_deltalake

    for entity in ("orders", "shipments", "returns", "procurement"):
        path = lake.bronze(entity)
        rows = DeltaTable(path).to_pyarrow_table().sort_by("_ingested_at")
        shutil.rmtree(path)
        size = -(-rows.num_rows // batches)
        for start in range(0, rows.num_rows, size):
            write_deltalake(path, rows.slice(start, size), mode="append")


def sample_ids(session: LakeQuery, kind: trace.Kind, count: int, seed: int) -> list[str]:
    table, column = ID_SOURCES[kind]
    ids = session.query(f"select distinct {column} as id from {table} order by id")
    values = [str(v) for v in ids.column("id").to_pylist()]
    return random.Random(f"{seed}:{kind}").sample(values, min(count, len(values)))


def _seconds(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> tuple[float, T]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def _summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "lookups": len(samples),
        "median_s": round(statistics.median(ordered), 4),
        "p95_s": round(p95, 4),
        "max_s": round(ordered[-1], 4),
    }


def cold(root: str, kind: trace.Kind, id: str) -> float:
    """The first lookup of a fresh session: opens the Delta logs, reads Parquet footers."""
    with open_lake(root) as session:
        seconds, found = _seconds(trace.find, session, kind, id)
    assert found is not None, (kind, id)
    return seconds


def warm(session: LakeQuery, kind: trace.Kind, ids: list[str]) -> tuple[list[float], int, int]:
    """Seconds per lookup, and the events and quarantined messages the lookups returned."""
    samples: list[float] = []
    events = quarantined = 0
    for id in ids:
        seconds, found = _seconds(trace.find, session, kind, id)
        assert isinstance(found, trace.Trace), (kind, id)
        samples.append(seconds)
        events += found.timeline.num_rows
        quarantined += found.quarantined.num_rows
    return samples, events, quarantined


def measure(root: str, *, orders: int, others: int, seed: int) -> dict[str, Any]:
    with open_lake(root) as session:
        ids = {
            kind: sample_ids(session, kind, orders if kind == "order" else others, seed)
            for kind in trace.KINDS
        }
    report: dict[str, Any] = {
        "cold_s": {kind: round(cold(root, kind, ids[kind][0]), 4) for kind in trace.KINDS}
    }
    with open_lake(root) as session:
        trace.find(session, "order", ids["order"][0])  # the views and footers, once
        all_samples: list[float] = []
        report["warm"] = {}
        for kind in trace.KINDS:
            samples, events, quarantined = warm(session, kind, ids[kind])
            all_samples += samples
            report["warm"][kind] = {
                **_summary(samples),
                "events_per_lookup": events / len(ids[kind]),
                "quarantined_per_lookup": quarantined / len(ids[kind]),
            }
        report["warm"]["all"] = _summary(all_samples)
        report["search_s"] = search_seconds(session)
    return report


def search_seconds(session: LakeQuery) -> dict[str, Any]:
    """One customer and one sku over the whole history (warm)."""
    bounds = trace.order_dates(session)
    assert bounds is not None
    first = session.query(
        "select customer_id, lines[1].sku as sku from bronze.orders order by event_time limit 1"
    ).to_pylist()[0]
    result: dict[str, Any] = {}
    for name, search in (
        ("customer", trace.OrderSearch(*bounds, customer_id=first["customer_id"])),
        ("sku", trace.OrderSearch(*bounds, sku=first["sku"])),
    ):
        trace.search_orders(session, search)
        seconds, found = _seconds(trace.search_orders, session, search)
        assert isinstance(found, pa.Table)
        result[name] = {"seconds": round(seconds, 4), "orders": found.num_rows}
    return result


def prepare(lake: Lake, *, days: int, seed: int, batches: int) -> dict[str, Any]:
    """The simulated bronze lake with its quarantine; what it holds and how long it took."""
    from bench.engines import simulated_bronze

    started = time.perf_counter()
    _, _, events = simulated_bronze(lake, days, seed)
    if batches > 1:
        split_into_batches(lake, batches)
    with open_lake(lake.root) as session:
        quarantined = write_quarantine(lake, session, random.Random(seed))
    return {
        "bronze_events": events,
        "quarantined": quarantined,
        "prepare_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--orders", type=int, default=20, help="random order ids to look up")
    parser.add_argument("--others", type=int, default=5, help="shipment, return and PO ids each")
    parser.add_argument("--lake", help="an existing lake to read instead of a simulated one")
    parser.add_argument(
        "--batches", type=int, default=1, help="write each event table in this many appends"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scm-bench-trace-"))
    try:
        report: dict[str, Any] = {"days": args.days, "batches": args.batches}
        root = args.lake
        if root is None:
            root = str(work / "lake")
            report |= prepare(Lake.at(root), days=args.days, seed=args.seed, batches=args.batches)
        with open_lake(root) as session:
            report["rows"] = {
                name: session.query(f"select count(*) as n from {name}").column("n")[0].as_py()
                for name in (*trace.EVENT_TABLES, trace.QUARANTINE)
            }
        report |= measure(root, orders=args.orders, others=args.others, seed=args.seed)
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
