"""Dashboard pages on the 90-day lake, cold and warm, and the scorecard's drill-down.

``python -m bench.pages --days 90`` writes the simulated history straight to bronze
(delta-rs, as ``bench.engines`` does), builds silver and gold with one DuckDB refresh, then
renders every page of ``dashboards/app_pages/`` in a fresh process through the router
(``bench.dashboard``: cold = first run, warm = median of three reruns). The drill-down is
timed the same way: the scorecard with a tile's records open, warm after a click. Prints one
JSON document; the goals are cold ≤ 2 s and warm ≤ 200 ms per page.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.context import REPO
from bench.dashboard import ROUTER, page_names, render_page
from bench.engines import simulated_bronze
from scm.lake import Lake
from scm.settings import load_settings

WARM_RUNS = 3


def build_lake(root: Path, days: int, seed: int) -> dict[str, Any]:
    """Bronze of ``days`` simulated days, silver and gold built by the DuckDB engine."""
    from transforms.refresh import refresh
    from transforms.testing import append_bronze

    lake = Lake.at(str(root / "lake"))
    started = time.perf_counter()
    held_back, offsets, events = simulated_bronze(lake, days, seed)
    for entity, rows in held_back.items():
        append_bronze(lake, entity, rows, first_offset=offsets.get(entity, 0))
    settings = load_settings(
        {"SCM_LAKE": str(root / "lake"), "SCM_STATE": str(root / "state"), "SCM_ENGINE": "duckdb"}
    )
    refresh(None, settings, ingest=False)
    return {"bronze_events": events, "prepare_s": round(time.perf_counter() - started, 1)}


def render_drilldown() -> dict[str, Any]:
    """The scorecard, then a tile's records opened (cold click), then warm reruns."""
    from streamlit.testing.v1 import AppTest

    from dashboards.scorecard import KPIS

    app = AppTest.from_file(str(ROUTER), default_timeout=120)
    app.switch_page("app_pages/scorecard.py")
    app.run()
    tile = [kpi.title for kpi in KPIS].index("Line fill rate")
    started = time.perf_counter()
    app.button(key=f"scorecard.records.{tile}").click().run()
    first = time.perf_counter() - started
    warm = []
    for _ in range(WARM_RUNS):
        started = time.perf_counter()
        app.run()
        warm.append(time.perf_counter() - started)
    records = app.dataframe[0].value if app.dataframe else None
    return {
        "records_open_s": round(first, 3),
        "warm_s": round(statistics.median(warm), 3),
        "rows_shown": None if records is None else len(records),
        "errors": [str(getattr(e, "message", e))[:300] for e in app.exception],
    }


def _worker(job: str, out: Path, env: dict[str, str]) -> dict[str, Any]:
    subprocess.run(
        [sys.executable, "-m", "bench.pages", "--worker", job, "--out", str(out)],
        env=env, cwd=REPO, check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    return dict(json.loads(out.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one page (or the drill-down) in this fresh process
        result = render_drilldown() if args.worker == "drilldown" else render_page(args.worker)
        Path(args.out).write_text(json.dumps(result))
        return
    work = Path(tempfile.mkdtemp(prefix="scm-bench-pages-"))
    try:
        report: dict[str, Any] = {"days": args.days, **build_lake(work, args.days, args.seed)}
        env = {**os.environ, "SCM_LAKE": str(work / "lake"), "SCM_STATE": str(work / "state")}
        pages = {}
        for job in [*page_names(), "drilldown"]:
            pages[job] = _worker(job, work / f"{Path(job).stem}.json", env)
            print(json.dumps({job: pages[job]}), flush=True)
        report["pages"] = pages
        colds = [p["cold_s"] for p in pages.values() if p.get("cold_s") is not None]
        report["cold_max_s"] = max(colds)
        report["warm_max_s"] = max(p["warm_s"] for p in pages.values())
        report["errors"] = sum(len(p.get("errors") or []) for p in pages.values())
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
