"""The ``scm`` command line (interfaces.md).

Layers are imported lazily inside each command so ``scm --help`` stays instant. Every
failure a user can cause or fix prints one line, ``scm: error: ...``, and exits non-zero.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from scm.errors import ScmError
from scm.settings import Settings, load_settings

Command = Callable[[argparse.Namespace, Settings], int]


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction between 0 and 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _broker(args: argparse.Namespace, settings: Settings) -> int:
    from scm.broker import run_broker

    return run_broker(settings)


def _cluster_up(args: argparse.Namespace, settings: Settings) -> int:
    from scm.cluster import run_cluster

    return run_cluster(settings)


def _cluster_down(args: argparse.Namespace, settings: Settings) -> int:
    from scm.cluster import stop_cluster

    return stop_cluster(settings)


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from simulator import SimulationOptions, simulate

    if args.days == 0 and not args.live:
        raise ScmError("--days 0 makes no history: use --days N, or --live to stream only")
    options = SimulationOptions(
        days=args.days,
        seed=args.seed,
        start=args.start,
        orders_per_day=args.orders_per_day,
        malformed_fraction=args.malformed_fraction,
        live=args.live,
        rate=args.rate,
        output=args.output,
        progress=not args.quiet,
    )
    return simulate(settings, options)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import run_ingest

    return run_ingest(settings, once=args.once)


def _maintain(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.maintenance import run_maintenance

    return run_maintenance(settings, retention_hours=args.retention_hours)


def _refresh(args: argparse.Namespace, settings: Settings) -> int:
    from transforms.refresh import run_refresh

    return run_refresh(settings, full=args.full)


def _sql(args: argparse.Namespace, settings: Settings) -> int:
    from scm.sql import run_sql

    return run_sql(settings, args.query, output_format=args.format, max_rows=args.max_rows)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from scm.demo import run_demo

    return run_demo(settings, days=args.days)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other ``scm`` error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"scm: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="scm",
        description="Supply-chain lakehouse: Kafka events -> Delta -> SCOR KPIs.",
        epilog="Settings come from SCM_* environment variables; see the README.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    broker = commands.add_parser("broker", help="run the embedded Apache Kafka broker")
    broker.set_defaults(run=_broker)

    cluster = commands.add_parser(
        "cluster", help="a three-broker Kafka cluster and a Spark standalone cluster here"
    )
    cluster_commands = cluster.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=_Parser
    )
    cluster_up = cluster_commands.add_parser(
        "up",
        help="run three KRaft brokers (replication 3, min in-sync 2) and a Spark master and"
        " worker until interrupted",
    )
    cluster_up.set_defaults(run=_cluster_up)
    cluster_down = cluster_commands.add_parser(
        "down", help="stop the cluster `scm cluster up` runs from SCM_STATE"
    )
    cluster_down.set_defaults(run=_cluster_down)

    simulate = commands.add_parser("simulate", help="generate a simulated supply chain")
    simulate.add_argument(
        "--days", type=_non_negative_int, default=30, help="days of history (0 only with --live)"
    )
    simulate.add_argument(
        "--seed", type=int, default=7, help="random seed (same seed, same events)"
    )
    simulate.add_argument(
        "--start", type=_date, default=None, help="first day, YYYY-MM-DD (default: days ago)"
    )
    simulate.add_argument(
        "--orders-per-day", type=_positive_int, default=300, help="mean orders per day"
    )
    simulate.add_argument(
        "--malformed-fraction", type=_fraction, default=0.0, help="share of malformed messages"
    )
    simulate.add_argument("--live", action="store_true", help="keep producing in real time")
    simulate.add_argument(
        "--rate", type=_positive_float, default=20.0, help="events per second with --live"
    )
    simulate.add_argument(
        "--output", default=None, help="write JSON lines {topic,key,value} to FILE instead"
    )
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    simulate.set_defaults(run=_simulate)

    ingest = commands.add_parser("ingest", help="stream Kafka topics into bronze Delta tables")
    ingest.add_argument("--once", action="store_true", help="process what is available, then exit")
    ingest.set_defaults(run=_ingest)

    maintain = commands.add_parser("maintain", help="compact, checkpoint and vacuum the lake")
    maintain.add_argument(
        "--retention-hours", type=_non_negative_int, default=168, help="vacuum retention"
    )
    maintain.set_defaults(run=_maintain)

    refresh = commands.add_parser("refresh", help="load landing files, ingest, rebuild KPIs")
    refresh.add_argument("--full", action="store_true", help="rebuild every partition")
    refresh.set_defaults(run=_refresh)

    sql = commands.add_parser("sql", help="query the lake with DuckDB (read-only)")
    sql.add_argument("query", help="SQL over bronze.x, silver.x, gold.x")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sql.add_argument("--max-rows", type=_positive_int, default=10_000)
    sql.set_defaults(run=_sql)

    demo = commands.add_parser("demo", help="the whole platform on this machine")
    demo.add_argument("--days", type=_positive_int, default=60, help="days of simulated history")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        return int(args.run(args, settings))
    except ScmError as error:
        print(f"scm: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
