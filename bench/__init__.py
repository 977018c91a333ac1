"""Benchmarks of the platform, run on demand with ``python -m bench`` (never as timed tests).

Each run measures ingest throughput, freshness, KPI refresh, dashboard render time and
memory at several sizes, side by side on one broker and one set of events per size, and
writes ``bench/results/<timestamp>.json`` beside a printed table (docs/performance.md).
"""

from __future__ import annotations

from bench.report import KEYS, MEASURES
from bench.run import BenchOptions, run_bench
from bench.sizes import SIZES, Size

__all__ = ["KEYS", "MEASURES", "SIZES", "BenchOptions", "Size", "run_bench"]
