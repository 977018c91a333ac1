"""``scm simulate``: write the master data, then produce the history (and the live stream)."""

from __future__ import annotations

import sys
import time
from collections import Counter

from scm.contracts import TOPICS
from scm.lake import Lake
from scm.settings import Settings
from simulator.history import History, run_history
from simulator.options import SimulationOptions
from simulator.output import write_json_lines
from simulator.progress import Progress
from simulator.world import build_world, write_master_data


def _summary(
    options: SimulationOptions, history: History | None, destination: str, seconds: float
) -> str:
    if history is None:
        return f"wrote master data; no history (--days 0) in {seconds:.1f} s"
    per_topic = Counter(record.topic for record in history.records)
    topics = ", ".join(f"{topic} {per_topic[topic]:,}" for topic in TOPICS)
    feed = history.feed
    return (
        f"simulated {options.days} days from {history.first_day} (seed {options.seed},"
        f" {history.chain.orders_placed:,} orders): {len(history.records):,} messages ({topics});"
        f" {feed.retries.retries:,} retries, {feed.malformed.malformed:,} malformed;"
        f" {destination} in {seconds:.1f} s"
    )


def simulate(settings: Settings, options: SimulationOptions) -> int:
    """Run ``scm simulate``; returns the exit code. User-fixable problems raise ScmError."""
    options.validate()
    started = time.monotonic()
    progress = Progress(options.progress)
    producer = None
    if options.output is None:
        from scm.kafka import check_reachable, ensure_topics
        from scm.kafka import producer as kafka_producer

        check_reachable(settings)  # before minutes of work, not after
        ensure_topics(settings)
        producer = kafka_producer(settings)

    history = None
    if options.days > 0:
        history = run_history(options, on_day=lambda d, n: progress.count("simulating day", d, n))
    world = history.world if history is not None else build_world(options.seed)
    write_master_data(world, Lake.at(settings.lake).landing)
    records = history.records if history else []
    if options.output is not None:
        write_json_lines(records, options.output)
        destination = "wrote stdout" if options.output == "-" else f"wrote {options.output}"
    else:
        from scm.kafka import produce_all

        assert producer is not None
        produce_all(
            producer,
            records,
            bootstrap=settings.kafka_bootstrap,
            on_progress=lambda d, n: progress.count("producing", d, n),
        )
        destination = f"produced to Kafka at {settings.kafka_bootstrap}"
    progress.clear()
    summary_stream = sys.stderr if options.output == "-" else sys.stdout
    summary = _summary(options, history, destination, time.monotonic() - started)
    print(summary, file=summary_stream, flush=True)

    if options.live:
        from simulator.live import run_live

        assert producer is not None  # validate() refused --live with --output
        live = run_live(
            options, history, producer, bootstrap=settings.kafka_bootstrap, progress=progress
        )
        print(
            f"live: produced {live.messages:,} messages in {live.seconds:.0f} s"
            f" ({live.messages / max(live.seconds, 1e-9):.1f}/s); stopped",
            flush=True,
        )
    return 0
