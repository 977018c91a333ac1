"""One benchmark run: for each size, one broker and one set of events, every selected measure
side by side; then goals, scaling, the JSON document and the table.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.context import REPO, SizeContext, SparkHolder, empty_settings_file
from bench.memory import cpu_busy_ticks, machine_load
from bench.report import MEASURES, blank, evaluate_goals, scaling, table
from bench.sizes import Size
from scm.settings import load_settings

RESULTS_DIR = REPO / "bench" / "results"


@dataclass(frozen=True)
class BenchOptions:
    """What to run and where to put it."""

    sizes: Sequence[Size]
    only: Sequence[str] = MEASURES
    results_dir: Path = RESULTS_DIR
    work_dir: Path | None = None
    keep_work: bool = False
    spark_master: str = "local[2]"
    # An external Kafka (e.g. `scm cluster up`'s three brokers) instead of one embedded broker
    # per size; its topics keep what earlier sizes produced, so run one size against it.
    kafka_bootstrap: str | None = None
    # Where the lakes go (e.g. `s3://bucket/bench` in `scm cluster up`'s object store, with
    # SCM_S3_* set); None: folders in the work folder.
    lake_root: str | None = None
    demo_size: str | None = "small"  # scm demo runs once, at this size (None: never)
    until: dt.datetime | None = None  # no measure starts after this time
    # Extra Spark settings for every Spark process of the run (an experiment's "after").
    spark_conf: dict[str, str] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"bench {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    """The machine and software the numbers were taken on."""
    memory_kib = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    cpu_model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    versions = {}
    for package in ("pyspark", "delta", "deltalake", "duckdb", "pyarrow", "confluent_kafka",
                    "streamlit", "dagster"):  # fmt: skip
        try:
            module = __import__(package)
            versions[package] = str(getattr(module, "__version__", "?"))
        except ImportError:
            versions[package] = "missing"
    return {
        "hostname": socket.gethostname(),
        "cores": os.cpu_count(),
        "cpu": cpu_model,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": (java.stderr.splitlines() or [""])[0],
        "versions": versions,
    }


def _measure(
    name: str, size: Size, results: dict[str, Any], work: Path, body: Callable[[dict], None]
) -> dict[str, Any]:
    """Run one measure, never letting it stop the run; record load and outcome; save."""
    result = results["measures"][name].setdefault(size.name, blank(name))
    # The memory step of a size only collects what ingest and refresh sampled: always run it.
    if _past_deadline(results) and not (name == "memory" and result["status"] == "not run"):
        result.update(status="not measured", reason="not started: the run's --until time passed")
        say(f"[{size.name}] {name} skipped: --until time passed")
        return result
    result["load_before"] = machine_load()
    cpu_before = cpu_busy_ticks()
    started = time.perf_counter()
    say(f"[{size.name}] {name} ...")
    try:
        body(result)
        result["status"] = "ok"
    except ImportError as error:
        result.update(status="not measured", reason=f"component not available: {error}")
    except Exception as error:
        detail = traceback.format_exc()
        (work / f"{name}-error.log").write_text(detail)
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        result.update(status="failed", reason=f"{type(error).__name__}: {first}"[:400])
        result["traceback_tail"] = detail.strip().splitlines()[-6:]
    cpu_after = cpu_busy_ticks()
    total = cpu_after[1] - cpu_before[1]
    result.update(
        elapsed_s=round(time.perf_counter() - started, 1),
        load_after=machine_load(),
        uptime_after=_uptime(),
        machine_cpu_busy=round((cpu_after[0] - cpu_before[0]) / total, 3) if total else None,
    )
    say(f"[{size.name}] {name} {result['status']} in {result['elapsed_s']} s"
        + (f": {result['reason']}" if result.get("reason") else ""))  # fmt: skip
    save(results)
    return result


def _past_deadline(results: dict[str, Any]) -> bool:
    deadline = results.get("deadline_epoch")
    return deadline is not None and time.time() > deadline


def save(results: dict[str, Any]) -> Path:
    """Write the results so far (after every measure, so a cut-short run still leaves them)."""
    results["goals"] = evaluate_goals(results)
    results["scaling"] = scaling(results)
    path = Path(results["results_file"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _prepare(context: SizeContext, result: dict[str, Any]) -> None:
    """Simulate, create topics, produce the history once, drop master data in landing/."""
    from bench.workload import build_workload, produce, write_master_data
    from scm.kafka import ensure_topics

    context.workload = workload = build_workload(context.size)
    settings = context.settings("spark")
    ensure_topics(settings)
    produce_s = produce(settings, workload.history)
    write_master_data(settings)
    result.update(
        events=workload.events,
        next_day_events=len(workload.next_day),
        event_bytes=workload.bytes,
        generate_s=round(workload.generate_s, 2),
        produce_s=produce_s,
        produce_eps=round(workload.events / produce_s, 1) if produce_s else None,
    )


def _memory_from_measures(results: dict[str, Any], size: Size, memory: dict[str, Any]) -> None:
    """The memory measure's ingest and refresh figures, taken while those measures ran."""
    ingest = results["measures"].get("ingest", {}).get(size.name) or {}
    refresh = results["measures"].get("refresh", {}).get(size.name) or {}
    cli = ingest.get("cli_memory") or {}
    inprocess = ingest.get("spark_inprocess_memory") or {}
    refresh_memories = [
        (refresh.get("full") or {}).get("memory") or {},
        (refresh.get("incremental") or {}).get("memory") or {},
    ]
    by_role: dict[str, float] = {}
    for summary in refresh_memories:
        for role, value in (summary.get("peak_rss_mib_by_role") or {}).items():
            by_role[role] = max(by_role.get(role, 0.0), value)
    broker = [
        (summary.get("peak_rss_mib_by_role") or {}).get("broker JVM")
        for summary in [inprocess, *refresh_memories]
    ]
    memory.update(
        ingest_cli_peak_mib=cli.get("peak_total_rss_mib"),
        ingest_cli_by_role=cli.get("peak_rss_mib_by_role"),
        ingest_inprocess_by_role=inprocess.get("peak_rss_mib_by_role"),
        refresh_peak_mib=refresh.get("peak_rss_mib"),
        refresh_by_role=by_role or None,
        broker_peak_mib=max((value for value in broker if value), default=None),
    )


def _run_size(options: BenchOptions, size: Size, results: dict[str, Any], spark: SparkHolder,
              work: Path) -> None:  # fmt: skip
    from bench.dashboard import measure_dashboard
    from bench.freshness import measure_freshness
    from bench.ingest import ingest_in_process, measure_ingest
    from bench.refresh import measure_refresh
    from scm.broker import EmbeddedBroker

    only = set(options.only)
    if _past_deadline(results):
        for name in MEASURES:
            if name in only:
                skipped = results["measures"][name].setdefault(size.name, blank(name))
                skipped.update(status="not measured", reason="not started: --until time passed")
        return
    work.mkdir(parents=True, exist_ok=True)
    bootstrap = options.kafka_bootstrap or f"127.0.0.1:{_free_port()}"
    broker_settings = load_settings(
        {"SCM_STATE": str(work / "broker"), "SCM_KAFKA_BOOTSTRAP": bootstrap,
         "SCM_SETTINGS_FILE": str(empty_settings_file(work))}
    )  # fmt: skip
    context = SizeContext(
        size=size, work=work, bootstrap=bootstrap, spark=spark, lake_root=options.lake_root
    )
    needs_lake = only & {"ingest", "freshness", "refresh", "dashboard", "memory"}
    broker = nullcontext() if options.kafka_bootstrap else EmbeddedBroker(broker_settings)
    with broker:
        say(f"[{size.name}] Kafka at {bootstrap}; simulating {size.days} days")
        setup = results.setdefault("setup", {}).setdefault(size.name, {})
        if needs_lake:
            try:
                _prepare(context, setup)
            except Exception as error:
                setup["error"] = f"{type(error).__name__}: {error}"[:400]
                setup["missing_component"] = isinstance(error, ImportError)
                say(f"[{size.name}] set-up failed: {setup['error']}")
        workload = context.workload
        ready = workload is not None
        results["work_by_size"][size.name] = {
            "days": size.days, "events": workload.events if workload else None,
        }  # fmt: skip

        def needs(measure: str) -> Callable[[dict], None]:
            def body(result: dict[str, Any]) -> None:
                if not ready:
                    failure = ImportError if setup.get("missing_component") else RuntimeError
                    raise failure(f"no events: {setup.get('error')}")
                {
                    "ingest": lambda: measure_ingest(context, result),
                    "refresh": lambda: measure_refresh(context, result),
                    "dashboard": lambda: measure_dashboard(context, result),
                    "freshness": lambda: measure_freshness(context, result),
                }[measure]()

            return body

        if "ingest" in only:
            ingest = _measure("ingest", size, results, work, needs("ingest"))
            ingest.update({k: setup.get(k) for k in ("produce_s", "produce_eps", "event_bytes")})
        later = only & {"refresh", "dashboard", "freshness"}
        if ready and not context.main_lake_ready and later and not _past_deadline(results):
            say(f"[{size.name}] ingesting into the main lake (untimed preparation)")
            ingest_in_process(context)
            context.main_lake_ready = True
        if "refresh" in only:
            _measure("refresh", size, results, work, needs("refresh"))
        if ready and not context.gold_ready and "dashboard" in only and not _past_deadline(results):
            from transforms.refresh import refresh

            say(f"[{size.name}] full refresh for the dashboards (untimed preparation)")
            settings = context.settings("spark")
            refresh(spark.get(settings), settings, full=True)
            context.gold_ready = True
        if "dashboard" in only:
            _measure("dashboard", size, results, work, needs("dashboard"))
        if "freshness" in only:
            _measure("freshness", size, results, work, needs("freshness"))
    if "memory" in only:

        def memory_body(result: dict[str, Any]) -> None:
            _memory_from_measures(results, size, result)
            if options.demo_size != size.name:
                result["notes"].append(f"scm demo runs once, at size {options.demo_size}")

        _measure("memory", size, results, work, memory_body)


def _run_demo(
    options: BenchOptions, results: dict[str, Any], spark: SparkHolder, root: Path
) -> None:
    """The whole ``scm demo``, once, after every size (the longest and least central run)."""
    from bench.demo import measure_demo

    size = next((s for s in options.sizes if s.name == options.demo_size), None)
    if size is None or "memory" not in options.only:
        return
    context = SizeContext(size=size, work=root / size.name, bootstrap="", spark=spark)
    memory = results["measures"]["memory"].get(size.name) or {}
    measured = {key: memory.get(key) for key in ("status", "elapsed_s", "load_after")}
    _measure("memory", size, results, context.work, lambda result: measure_demo(context, result))
    if measured["status"] == "ok" and memory.get("status") != "ok":
        memory["notes"].append(f"ingest/refresh memory was measured; the demo: {memory['reason']}")


def run_bench(options: BenchOptions) -> tuple[dict[str, Any], Path]:
    """Run every selected measure at every size; write the JSON; return it and its path."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if options.lake_root:  # a prefix of this run's own: no lake of an earlier run is reused
        options = replace(options, lake_root=f"{options.lake_root.rstrip('/')}/{stamp}")
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "machine": machine(),
        "load_at_start": machine_load(),
        "uptime_at_start": _uptime(),
        "spark_master": options.spark_master,
        "kafka_bootstrap": options.kafka_bootstrap or "one embedded broker per size",
        "lake_root": options.lake_root or "folders in the work folder",
        "sizes": [vars(size) for size in options.sizes],
        "measures": {name: {} for name in MEASURES if name in options.only},
        "work_by_size": {},
        "results_file": str(options.results_dir / f"{stamp}.json"),
        "deadline_epoch": options.until.timestamp() if options.until else None,
        "finished_at": None,
    }
    if options.lake_root and options.lake_root.startswith("s3://"):
        # This process's delta-rs and Arrow reach the store as the commands do.
        os.environ.update(
            load_settings({**os.environ, "SCM_LAKE": options.lake_root}).object_store.environment()
        )
    if options.spark_conf:
        # spark-submit reads this in every process that starts a JVM: the bench's own
        # session, `scm ingest`, `scm demo` and its children.
        os.environ["PYSPARK_SUBMIT_ARGS"] = " ".join(
            [
                *(f"--conf {key}={value}" for key, value in options.spark_conf.items()),
                "pyspark-shell",
            ]
        )
    results["spark_conf"] = dict(options.spark_conf)
    root = options.work_dir or Path(tempfile.mkdtemp(prefix="scm-bench-"))
    spark = SparkHolder(options.spark_master)
    try:
        for size in options.sizes:
            _run_size(options, size, results, spark, root / size.name)
        _run_demo(options, results, spark, root)
    finally:
        spark.stop()
        if not options.keep_work and options.work_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    results["spark_startup_s"] = spark.startup_s
    results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results["load_at_end"] = machine_load()
    results["uptime_at_end"] = _uptime()
    results["work_dir"] = str(root) if options.keep_work or options.work_dir else None
    return results, save(results)


def print_table(results: dict[str, Any], path: Path) -> None:
    print(table(results))
    print(f"\nresults: {path}")
    print(f"machine load at start: {results['uptime_at_start']}")
    print(f"machine load at end:   {results['uptime_at_end']}")
