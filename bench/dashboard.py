"""Dashboard render time: each page cold (a fresh process, empty caches) and warm (reruns),
through the Streamlit router with ``streamlit.testing.v1.AppTest`` over the size's lake.

``python -m bench.dashboard PAGE OUT`` is the worker run once per page, so every cold
render starts from nothing; the parent samples its memory.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.context import REPO, SizeContext
from bench.memory import MemorySampler

ROUTER = REPO / "dashboards" / "streamlit_app.py"
PAGES = REPO / "dashboards" / "app_pages"
WARM_RUNS = 3
PAGE_TIMEOUT_S = 120.0


def page_names() -> list[str]:
    """``app_pages/<name>.py`` of every page, relative to the router."""
    return sorted(
        f"app_pages/{path.name}" for path in PAGES.glob("*.py") if not path.name.startswith("_")
    )


def _errors(app: Any) -> list[str]:
    return [str(getattr(item, "message", item))[:300] for item in app.exception]


def render_page(page: str) -> dict[str, Any]:
    """Cold then warm render seconds of one page (run in a fresh process)."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROUTER), default_timeout=PAGE_TIMEOUT_S)
    app.switch_page(page)
    started = time.perf_counter()
    app.run()
    cold = time.perf_counter() - started
    errors = _errors(app)
    warm: list[float] = []
    for _ in range(WARM_RUNS):
        started = time.perf_counter()
        app.run()
        warm.append(time.perf_counter() - started)
    errors += _errors(app)
    return {
        "cold_s": round(cold, 3),
        "warm_s": round(statistics.median(warm), 3),
        "warm_runs_s": [round(value, 3) for value in warm],
        "errors": errors,
        "heading": next((str(item.value) for item in [*app.title, *app.header]), None),
        "elements": len(list(app.main)) if hasattr(app, "main") else None,
    }


def measure_dashboard(context: SizeContext, result: dict[str, Any]) -> None:
    """Every page, each in its own worker process, over the size's main lake."""
    pages = page_names()
    if not ROUTER.exists() or not pages:
        raise RuntimeError("dashboards/streamlit_app.py or dashboards/app_pages/*.py is missing")
    out_dir = context.work / "dashboard"
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered: dict[str, Any] = {}
    peak = 0.0
    for page in pages:
        out = out_dir / (Path(page).stem + ".json")
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.dashboard", page, str(out)],
            env=context.subprocess_env("spark"), cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        with MemorySampler([process.pid]) as memory:
            try:
                output, _ = process.communicate(timeout=PAGE_TIMEOUT_S * (WARM_RUNS + 2))
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
        if out.exists():
            rendered[page] = json.loads(out.read_text())
        else:
            tail = output.decode(errors="replace").strip().splitlines()[-3:]
            rendered[page] = {"cold_s": None, "warm_s": None, "errors": tail}
        rendered[page]["peak_rss_mib"] = memory.summary()["peak_total_rss_mib"]
        peak = max(peak, float(rendered[page]["peak_rss_mib"]))
    colds = [p["cold_s"] for p in rendered.values() if p.get("cold_s") is not None]
    warms = [p["warm_s"] for p in rendered.values() if p.get("warm_s") is not None]
    result.update(
        pages=rendered,
        cold_max_s=max(colds) if colds else None,
        warm_max_s=max(warms) if warms else None,
        page_errors=sum(len(p.get("errors") or []) for p in rendered.values()),
        streamlit_peak_rss_mib=peak,
    )


def main(argv: list[str]) -> int:
    page, out = argv
    Path(out).write_text(json.dumps(render_page(page)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
