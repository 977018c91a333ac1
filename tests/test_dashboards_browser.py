"""The served app in a real headless Chromium (Debian's package, driven by Playwright).

Missing Chromium is a setup error, so this test fails (never skips) and says how to fix it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

from tests.test_query import build_sample_lake

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"streamlit did not become healthy within {seconds:g} s")


@pytest.fixture
def served_app(tmp_path: Path) -> Iterator[str]:
    lake = build_sample_lake(tmp_path / "lake", tmp_path / "state")
    yield from _serve(lake, tmp_path)


@pytest.fixture
def served_planning(tmp_path: Path) -> Iterator[str]:
    from tests.test_planning import build_planning_lake

    build_planning_lake(str(tmp_path / "lake"), with_planning_tables=True).close()
    yield from _serve(tmp_path / "lake", tmp_path)


@pytest.fixture
def served_trace(tmp_path: Path) -> Iterator[str]:
    from tests.test_trace import build_trace_lake

    yield from _serve(build_trace_lake(tmp_path / "lake"), tmp_path)


def _serve(lake: Path, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "SCM_LAKE": str(lake), "SCM_STATE": str(tmp_path / "state")}
    env.pop("SCM_SETTINGS_FILE", None)
    log = (tmp_path / "streamlit.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboards" / "streamlit_app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server, 60)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _chromium() -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail(
            "chromium is not installed: run the setup (apt-get install -y chromium) so the"
            " browser test can run"
        )
    return chromium


def _render(
    url: str,
    waits: list[str],
    screenshot: Path,
    then: Callable[[Page], None] | None = None,
) -> str:
    """Open ``url`` in headless Chromium, wait for each text and a drawn chart, do ``then``
    (clicks and their waits), screenshot the whole page; the page's text. Streamlit renders
    progressively, hence the waits."""
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            for text in waits:
                page.get_by_text(text).first.wait_for(timeout=60_000)
            page.locator("canvas, svg.marks").first.wait_for(timeout=60_000)
            if then is not None:
                then(page)
            body = page.inner_text("body")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return body


def test_planning_page_in_headless_chromium(served_planning: str, tmp_path: Path) -> None:
    # Streamlit renders progressively: wait for the pair's selector as well as the tiles.
    waits = ["Need reorder", "Suggested orders (CSV)", "Forecast MAE", "DC-1 / A"]
    text = _render(f"{served_planning}/planning", waits, tmp_path / "planning.png")
    assert "Planning" in text and "DC-1 / A" in text


def test_scorecard_in_headless_chromium(served_app: str, tmp_path: Path) -> None:
    screenshot = tmp_path / "scorecard.png"
    text = _render(served_app, ["SCOR scorecard", "Order fill rate", "Supplier OTIF"], screenshot)
    assert "Fill rate" in text and "Order fill rate" in text and "Target" in text
    assert screenshot.stat().st_size > 50_000


def test_scorecard_drilldown_in_headless_chromium(served_app: str, tmp_path: Path) -> None:
    def open_order_fill_records(page: Page) -> None:
        page.get_by_role("button", name="Records").first.click()  # the order fill rate tile
        page.get_by_text("counting against the KPI").first.wait_for(timeout=60_000)
        page.get_by_text("Download CSV").first.wait_for(timeout=60_000)

    screenshot = tmp_path / "drilldown.png"
    text = _render(served_app, ["Supplier OTIF"], screenshot, open_order_fill_records)
    assert "Records behind the numbers" in text
    assert "Order fill rate, 04 Mar – 10 Mar 2026: 30 order lines, 5 counting against" in text


def test_order_timeline_in_headless_chromium(served_trace: str, tmp_path: Path) -> None:
    # A link from a KPI record opens the order's history; the timeline is a drawn chart.
    screenshot = tmp_path / "timeline.png"
    waits = ["Order O-1", "events in time order", "Quarantined messages that mention it"]
    text = _render(f"{served_trace}/trace?order_id=O-1", waits, screenshot)
    assert "1 of them a duplicate copy" in text
