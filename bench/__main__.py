"""``python -m bench [--sizes small,medium,large] [--only ingest,freshness,...]``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.report import MEASURES, markdown, table
from bench.run import RESULTS_DIR, BenchOptions, print_table, run_bench
from bench.sizes import SIZES, parse_sizes


def _measures(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MEASURES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown measure(s) {', '.join(unknown) or '(none)'}: use {', '.join(MEASURES)}"
        )
    return names


def _sizes(text: str) -> list:  # type: ignore[type-arg]
    try:
        return parse_sizes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _until(text: str) -> dt.datetime:
    """``HH:MM`` UTC today (or tomorrow, if that time has passed already)."""
    try:
        hours, minutes = (int(part) for part in text.split(":"))
        now = dt.datetime.now(dt.UTC)
        until = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time: use HH:MM (UTC)") from None
    return until if until > now else until + dt.timedelta(days=1)


def _setting(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key.startswith("spark."):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Spark setting: use spark.x.y=VALUE")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of the platform, side by side; prints a table, writes JSON.",
    )
    parser.add_argument(
        "--sizes", type=_sizes, default=parse_sizes("small,medium,large"),
        help=f"comma-separated sizes ({', '.join(f'{s.name}={s.days}d' for s in SIZES.values())})",
    )  # fmt: skip
    parser.add_argument(
        "--only", type=_measures, default=list(MEASURES),
        help=f"comma-separated measures ({', '.join(MEASURES)})",
    )  # fmt: skip
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where JSON goes")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep lakes and logs here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    parser.add_argument(
        "--demo-size", default="small",
        help="size at which the memory measure runs the whole scm demo once ('none': never)",
    )  # fmt: skip
    parser.add_argument(
        "--until", type=_until, default=None,
        help="HH:MM UTC after which no new measure starts (results so far are kept)",
    )  # fmt: skip
    parser.add_argument(
        "--show", type=Path, default=None, metavar="FILE",
        help="print the table of an earlier results file instead of running",
    )  # fmt: skip
    parser.add_argument("--markdown", action="store_true", help="with --show: as Markdown")
    parser.add_argument(
        "--spark-conf", type=_setting, action="append", default=[], metavar="KEY=VALUE",
        help="extra Spark setting for every Spark process of the run (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--spark-master", default=os.environ.get("SCM_SPARK_MASTER", "local[2]"),
        help="Spark master for every Spark path (default local[2])",
    )  # fmt: skip
    parser.add_argument(
        "--kafka-bootstrap", default=None, metavar="HOST:PORT,...",
        help="an external Kafka (e.g. `scm cluster up`) instead of an embedded broker per size;"
        " run one size against it",
    )  # fmt: skip
    parser.add_argument(
        "--lake-root", default=None, metavar="URI",
        help="put the lakes under this folder or s3:// prefix (with SCM_S3_* set), e.g. the"
        " object store of `scm cluster up`",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.show is not None:
        results = json.loads(args.show.read_text())
        print(markdown(results) if args.markdown else table(results))
        return 0
    options = BenchOptions(
        sizes=args.sizes, only=args.only, results_dir=args.results_dir, work_dir=args.work_dir,
        keep_work=args.keep, spark_master=args.spark_master, kafka_bootstrap=args.kafka_bootstrap,
        lake_root=args.lake_root,
        demo_size=None if args.demo_size == "none" else args.demo_size, until=args.until,
        spark_conf=dict(args.spark_conf),
    )  # fmt: skip
    results, path = run_bench(options)
    print_table(results, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
