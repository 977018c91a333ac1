"""``scm ingest``: the command-line wrapper around :func:`ingest.job.start_ingest`.

Fails fast, before paying for a Spark start-up, when the lake is already being ingested or
Kafka does not answer. SIGINT/SIGTERM stop a continuous ingest gracefully (exit 0).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from types import FrameType

from ingest.job import start_ingest
from ingest.lock import IngestLock
from scm.settings import Settings

log = logging.getLogger("scm.ingest")


def _configure_logging() -> None:
    logger = logging.getLogger("scm")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    # py4j logs every exception raised in foreachBatch with a traceback; the failure is
    # reported once, as one line, from the query's own exception.
    logging.getLogger("py4j").setLevel(logging.CRITICAL)


def run_ingest(settings: Settings, *, once: bool = False) -> int:
    """Run the ingest until caught up (``once``) or until SIGINT/SIGTERM; return the exit code."""
    from scm.contracts import ALERTS_TOPIC, TOPICS
    from scm.kafka import check_reachable, ensure_topics
    from scm.spark import spark_session

    _configure_logging()
    lock = IngestLock.for_settings(settings).acquire()
    stop_requested = threading.Event()
    previous = {}

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    try:
        check_reachable(settings)  # one line, before paying for a Spark start-up
        ensure_topics(settings, (*TOPICS, ALERTS_TOPIC))
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
        started = time.monotonic()
        # Validation spills to disk when a catch-up outgrows memory, and the JVM grows its
        # heap to the limit before collecting: 1 GiB keeps the process under 2 GiB resident.
        spark = spark_session(settings, app_name="scm-ingest", driver_memory="1g")
        # PySpark's context replaced the SIGINT handler (it cancels jobs and raises
        # KeyboardInterrupt mid-batch): ours again, so Ctrl-C stops gracefully too.
        signal.signal(signal.SIGINT, request_stop)
        with start_ingest(spark, settings, once=once, lock=lock) as run:
            mode = "until caught up" if once else "until interrupted (Ctrl-C stops)"
            print(f"ingesting {settings.kafka_bootstrap} into {settings.lake} {mode}", flush=True)
            while not stop_requested.is_set():
                if run.await_completion(timeout=0.5):
                    break
            if stop_requested.is_set():
                # One line: the running batch finishes (its sinks are idempotent, so a
                # batch cut short by the grace period is replayed on the next start).
                print("stopping ingest gracefully...", end="", flush=True)
                run.stop()
                print(" stopped", flush=True)
                if once:  # not caught up: a script must not go on as if it were
                    print("scm: interrupted before catching up", file=sys.stderr)
                    return 130
                return 0
        elapsed = time.monotonic() - started
        print(f"ingest caught up in {elapsed:.1f} s", flush=True)
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        lock.release()
