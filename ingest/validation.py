"""Event validation for the bronze sink: a screen in Spark, the reference validator for the rest.

Nearly every message is a valid event, so the check is split in two:

* **The screen** (:func:`screen`): Spark column expressions derived from the field
  declarations in ``scm/contracts.py``, built from whole-value and whole-array functions
  over Spark's VARIANT (no Python UDFs, no per-line lambdas). It is a *sufficient* condition:
  it accepts only events that are valid, and leaves anything unusual (a malformed message,
  but also a valid event written in a rare form, like a price in exponent notation) to:
* **The reference** (:func:`scm.contracts.validate_event`): the contract's own validator,
  run in Python on the driver for the few rows the screen did not accept. It decides
  valid or not and words the reason, with the parser's position for broken JSON.

One validator decides every verdict, and the plan Spark ships to each task stays small.
Malformed messages are the exception in a healthy stream; a stream of nothing but garbage
is judged at the reference validator's rate (tens of thousands of messages a second).

Usage, inside a micro-batch::

    with Screening.of(batch.where(batch.topic == "scm.orders"), "scm.orders") as screening:
        screening.bronze()                 # -> bronze/orders: rows the screen proved valid
        tally = screening.tally(ran=True)  # the topic's rows and suspects, counted on the way
        verdict = screening.judge() if tally.suspects else NO_SUSPECTS
        verdict.accepted                   # -> bronze/orders too (None when none)
        quarantine_rows(spark, verdict.rejected)   # -> bronze/quarantine (when any)
"""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from scm.contracts import (
    CURRENCY_PATTERN,
    DATE_PATTERN,
    EVENT_TYPES,
    INT32_MAX,
    INT32_MIN,
    MONEY_PRECISION,
    MONEY_SCALE,
    TIMESTAMP_PATTERN,
    TOPICS,
    EventType,
    Field,
    Topic,
    bronze_fields,
    spark_type,
    validate_event,
)

PARSED_COLUMN = "parsed_value"
# The micro-batch's ingest time, a column of the rows to check (``_ingested_at`` in bronze).
# It is added where the batch is cached, not as a literal of the bronze projection: Spark
# compiles a timestamp literal into the generated code, so each batch would compile every
# topic's bronze projection anew (and the JVM's JIT compile it again), where a column keeps
# that code the same from batch to batch and Spark's code cache serves it.
INGESTED_AT_COLUMN = "ingested_at"
SCREENED_COLUMN = "screened"
# Every declared member of the event, pulled out of the variant once per row.
_MEMBERS_COLUMN = "_members"
_SUSPECT_SCHEMA = "topic string, partition int, offset bigint, key binary, value binary"
_JUDGED_SCHEMA = f"{_SUSPECT_SCHEMA}, error string"

_MONEY = f"decimal({MONEY_PRECISION},{MONEY_SCALE})"
_JSON_SPACE = "[ \t\n\r]"
# A JSON string literal (possessive, so long strings cannot overflow Java's regex stack).
_STRING_LITERAL = r'"(?:[^"\\]++|\\.)*+"'
_NON_BRACKETS = r"[^\[\]{}]*+"
# Nesting the screen's one-container regex handles; deeper documents go to the reference.
_REGEX_DEPTH = 6
# Line-field kinds whose rule whole-array functions can check (no per-line regex or cast).
_WHOLE_ARRAY_KINDS = ("string", "enum", "int", "money", "boolean")
# JSON types (as schema_of_variant names them) that a valid value of each kind has.
_JSON_TYPES: dict[str, str] = {
    **{kind: "STRING" for kind in ("string", "enum", "currency", "date", "timestamp")},
    "int": "BIGINT",
    "boolean": "BOOLEAN",
    "money": f"(?:BIGINT|DECIMAL\\([0-9]+,[0-{MONEY_SCALE}]\\))",
}


# --- public API ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """A topic's rows in a batch, and how many of them the screen did not prove valid."""

    rows: int
    suspects: int


@dataclass(frozen=True)
class Verdict:
    """The reference validator's verdicts on a topic's suspects: the rejected messages
    (topic, partition, offset, key, value, error) and the accepted ones as bronze rows."""

    rejected: list[tuple[Any, ...]]
    accepted: DataFrame | None  # None: no suspect was valid
    accepted_rows: int = 0


NO_SUSPECTS = Verdict([], None)


class Screening:
    """One topic of a micro-batch, screened and cached.

    Nearly every event passes the screen, so the bronze rows it proves valid are written
    first (:meth:`bronze`), and that write counts the topic's rows and the suspects on the
    way (a Spark ``Observation``): a healthy batch needs no job of its own to validate.
    Only when there are suspects does :meth:`judge` collect them (one job) for the
    reference validator.
    """

    def __init__(self, topic: str, cached: DataFrame) -> None:
        self.topic = topic
        self._cached = cached
        self._observation = Observation(f"screened_{uuid.uuid4().hex}")

    @classmethod
    def of(cls, rows: DataFrame, topic: str) -> Screening:
        """Screen one topic's Kafka-source rows (key, value, topic, partition, offset,
        timestamp) stamped with their :data:`INGESTED_AT_COLUMN`; the result is cached."""
        return cls(topic, screen(rows, topic).persist(StorageLevel.MEMORY_AND_DISK))

    def bronze(self, *, observed: bool = True) -> DataFrame:
        """The rows the screen proved valid, as bronze rows. ``observed``: the first action
        on this frame counts the topic's rows and suspects for :meth:`tally`."""
        rows = self._cached
        if observed:
            rows = rows.observe(self._observation, *_counts())
        return to_bronze_rows(rows.where(F.col(SCREENED_COLUMN)), self.topic)

    def tally(self, *, ran: bool) -> Tally:
        """The counts; ``ran``: an action on the observed :meth:`bronze` finished (else a
        job counts them, e.g. when a replayed batch skipped its write)."""
        if ran:
            counted = self._observation.get
        else:
            row = self._cached.agg(*_counts()).first()
            counted = row.asDict() if row is not None else {}
        return Tally(int(counted.get("rows") or 0), int(counted.get("suspects") or 0))

    def judge(self) -> Verdict:
        """The reference validator's verdicts on the rows the screen left (one job)."""
        unscreened = self._cached.where(~F.col(SCREENED_COLUMN))
        suspects = unscreened.select("partition", "offset", "key", "value").collect()
        rejected, accepted = _judge(self.topic, suspects)
        if not accepted:
            return Verdict(rejected, None)
        keys = self._cached.sparkSession.createDataFrame(accepted, "partition int, offset bigint")
        rows = unscreened.join(F.broadcast(keys), ["partition", "offset"], "left_semi")
        return Verdict(rejected, to_bronze_rows(rows, self.topic), len(accepted))

    def unpersist(self) -> None:
        self._cached.unpersist()

    def __enter__(self) -> Screening:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unpersist()


def _counts() -> tuple[Column, Column]:
    """A topic's rows in a batch, and those the screen did not prove valid."""
    return (
        F.count(F.lit(1)).alias("rows"),
        F.count_if(~F.col(SCREENED_COLUMN)).alias("suspects"),
    )


def quarantine_rows(spark: SparkSession, rejected: Sequence[tuple[Any, ...]]) -> DataFrame:
    """Rejected messages as :attr:`Verdict.rejected` lists them, as quarantine rows."""
    return to_quarantine_rows(spark.createDataFrame(list(rejected), _JUDGED_SCHEMA))


def screen(raw: DataFrame, topic: str) -> DataFrame:
    """Kafka-source rows plus ``parsed_value`` (variant) and ``screened`` (true: valid for sure).

    A false ``screened`` means "not proven valid": :meth:`Screening.judge` asks the reference.
    """
    expressions = _expressions(raw.sparkSession, topic)
    # Values several checks read get projections of their own: Spark does not collapse a
    # costly expression into a projection that reads it more than once.
    parsed = raw.withColumn(PARSED_COLUMN, F.try_parse_json(F.col("value").cast("string")))
    members = parsed.withColumn(_MEMBERS_COLUMN, expressions.members)
    prepared = members.select("*", *expressions.line_helpers)
    checked = prepared.withColumn(SCREENED_COLUMN, F.coalesce(expressions.screened, F.lit(False)))
    return checked.drop(*(name for name in checked.columns if name.startswith("_")))


def to_bronze_rows(screened: DataFrame, topic: str) -> DataFrame:
    """Screened rows as bronze rows: exactly the columns of ``bronze_spark_ddl(topic)``.

    A field counts only for the event types that declare it: an extra field sharing a name
    with another event type's field is ignored like any other extra field.
    """
    expressions = _expressions(screened.sparkSession, topic)
    return screened.select(
        *expressions.bronze,
        F.col("topic").alias("_topic"),
        F.col("partition").cast("int").alias("_partition"),
        F.col("offset").cast("bigint").alias("_offset"),
        F.col("timestamp").alias("_kafka_timestamp"),
        F.col(INGESTED_AT_COLUMN).alias("_ingested_at"),
    )


def to_quarantine_rows(judged: DataFrame) -> DataFrame:
    """Rejected messages (topic, partition, offset, key, value, error) as quarantine rows.

    ``raw_value`` is the value as text with invalid UTF-8 replaced (U+FFFD); ``raw_bytes``
    keeps the exact bytes.
    """
    return judged.select(
        F.col("topic"),
        F.col("partition").cast("int").alias("partition"),
        F.col("offset").cast("bigint").alias("offset"),
        F.make_valid_utf8(F.col("key").cast("string")).alias("key"),
        F.make_valid_utf8(F.col("value").cast("string")).alias("raw_value"),
        F.col("error"),
        F.current_timestamp().alias("quarantined_at"),
        F.col("value").alias("raw_bytes"),
    )


# --- the reference validator, for what the screen left ------------------------------------------


def _judge(
    topic: str, suspects: Sequence[Any]
) -> tuple[list[tuple[Any, ...]], list[tuple[int, int]]]:
    """(rejected rows with their reason, accepted (partition, offset) pairs) of one topic."""
    rejected: list[tuple[Any, ...]] = []
    accepted: list[tuple[int, int]] = []
    for partition, offset, key, value in suspects:
        error = validate_event(topic, None if value is None else bytes(value))
        if error is None:
            accepted.append((partition, offset))
        else:
            rejected.append((topic, partition, offset, key, value, error))
    return rejected, accepted


# --- the expressions of a topic, built once per Spark application --------------------------------


@dataclass(frozen=True)
class _TopicExpressions:
    members: Column
    line_helpers: list[Column]
    screened: Column
    bronze: list[Column]


_BUILT: dict[tuple[str, str], _TopicExpressions] = {}


def _expressions(spark: SparkSession, topic: str) -> _TopicExpressions:
    """A topic's expressions; building them costs py4j calls, so every micro-batch reuses
    them (they name columns only, so they fit any frame of the application)."""
    key = (spark.sparkContext.applicationId, topic)
    if key not in _BUILT:
        known = _topic(topic)
        members = F.col(_MEMBERS_COLUMN)
        _BUILT[key] = _TopicExpressions(
            members=F.try_variant_get(
                F.col(PARSED_COLUMN), "$", _members_type(bronze_fields(topic))
            ),
            line_helpers=_line_helpers(known, members),
            screened=_screened(F.col("value").cast("string"), members, known),
            bronze=_bronze_columns(known),
        )
    return _BUILT[key]


# --- shared helpers -----------------------------------------------------------------------------


def _topic(topic: str) -> Topic:
    try:
        return TOPICS[topic]
    except KeyError:
        raise ValueError(f"unknown topic {topic!r}: expected one of {', '.join(TOPICS)}") from None


def _members_type(fields: tuple[Field, ...]) -> str:
    """A struct of one variant per field: objects cast to it keep just those members."""
    return "struct<" + ", ".join(f"{field.name}: variant" for field in fields) + ">"


def _whole(pattern: str) -> str:
    """Java regex matching the whole value (Java's ``$`` would allow a trailing newline)."""
    return f"^(?:{pattern})\\z"


def _all(checks: list[Column]) -> Column:
    return functools.reduce(operator.and_, checks) if checks else F.lit(True)


def _int_rule(field: Field, number: Column) -> Column:
    if field.rule is None:
        return F.lit(True)
    op, bound = field.rule
    comparisons: dict[str, Callable[[Column], Column]] = {
        ">=": lambda n: n >= bound,
        ">": lambda n: n > bound,
        "!=": lambda n: n != bound,
        "==": lambda n: n == bound,
    }
    return comparisons[op](number)


def _string_rule(field: Field, text: Column) -> Column:
    """Whether a string satisfies a string-kind field's rule."""
    kind = field.kind
    if kind == "string":
        return F.char_length(text) > 0
    if kind == "enum":
        return text.isin(*field.values)
    if kind == "currency":
        return text.rlike(_whole(CURRENCY_PATTERN))
    if kind == "date":
        return text.rlike(_whole(DATE_PATTERN)) & text.try_cast("date").isNotNull()
    if kind == "timestamp":
        # Spark's cast checks the calendar and the offset range; it wants T and Z upper-case.
        return (
            text.rlike(_whole(TIMESTAMP_PATTERN)) & F.upper(text).try_cast("timestamp").isNotNull()
        )
    raise ValueError(f"field {field.name!r}: {kind!r} is not a string kind")


# --- the fast path: a sufficient condition for validity, without per-line lambdas ---------------


def _screened(text: Column, members: Column, topic: Topic) -> Column:
    """True only for valid events of ``topic`` (null or false: not proven valid)."""
    event_type = F.try_variant_get(members["event_type"], "$", "string")
    by_type = F.lit(False)
    for name in reversed(topic.event_types):
        fast = _clearly_valid(EVENT_TYPES[name], members)
        if fast is not None:
            by_type = F.when(event_type == name, fast).otherwise(by_type)
    parsed = F.col(PARSED_COLUMN).isNotNull()
    return F.is_valid_utf8(text) & parsed & _one_json_container(text) & by_type


def _line_helpers(topic: Topic, members: Column) -> list[Column]:
    """Per lines field: the lines typed (union of the topic's line fields) and, per event type,
    the JSON types of every line's members at once (schema_of_variant merges the elements'
    schemas, widening to VARIANT when two disagree; nulls merge away)."""
    event_type = F.try_variant_get(members["event_type"], "$", "string")
    helpers = []
    for column in bronze_fields(topic.name):
        if column.kind != "lines":
            continue
        typed = ", ".join(f"{f.name}: {_fast_type(f)}" for f in column.line_fields)
        helpers.append(
            F.try_variant_get(members[column.name], "$", f"array<struct<{typed}>>").alias(
                f"_typed_{column.name}"
            )
        )
        merged = F.lit(None).cast("string")
        for name in reversed(topic.event_types):
            declared = {f.name: f for f in EVENT_TYPES[name].fields}.get(column.name)
            if declared is not None:
                projected = F.try_variant_get(
                    members[column.name], "$", f"array<{_members_type(declared.line_fields)}>"
                )
                own = F.schema_of_variant(F.to_variant_object(projected))
                merged = F.when(event_type == name, own).otherwise(merged)
        helpers.append(merged.alias(f"_json_types_{column.name}"))
    return helpers


def _clearly_valid(event_type: EventType, members: Column) -> Column | None:
    """True only for valid events of ``event_type`` (None: no fast check for this type)."""
    checks = []
    for field in event_type.all_fields:
        if field.kind == "event_type":
            continue  # the caller already matched event_type
        check = _clearly_valid_field(field, members[field.name])
        if check is None:
            return None
        checks.append(check)
    return _all(checks)


def _clearly_valid_field(field: Field, value: Column) -> Column | None:
    if field.kind == "lines":
        return _clearly_valid_lines(field)
    json_type = F.schema_of_variant(value)
    kind = field.kind
    if kind == "int":
        number = F.try_variant_get(value, "$", "bigint")
        rule = _int_rule(field, number) & number.between(INT32_MIN, INT32_MAX)
    elif kind == "money":
        rule = F.try_variant_get(value, "$", _MONEY) >= 0  # null (too large) is not >= 0
    elif kind == "boolean":
        rule = F.lit(True)
    else:
        rule = _string_rule(field, F.try_variant_get(value, "$", "string"))
    valid = json_type.rlike(f"^{_JSON_TYPES[kind]}$") & rule
    if not field.required:
        valid = value.isNull() | F.is_variant_null(value) | valid
    return valid


def _clearly_valid_lines(field: Field) -> Column | None:
    """Lines checked with whole-array functions; None when a line field needs per-line regex."""
    fields = field.line_fields
    if any(f.kind not in _WHOLE_ARRAY_KINDS or not f.required for f in fields):
        return None
    typed = F.col(f"_typed_{field.name}")
    json_types = F.col(f"_json_types_{field.name}")
    members = ", ".join(
        f"{f.name}: {_JSON_TYPES[f.kind]}" for f in sorted(fields, key=operator.attrgetter("name"))
    )
    count = F.size(typed)
    checks = [
        json_types.rlike(f"^ARRAY<OBJECT<{members}>>$"),
        count > 0,
        F.size(F.array_compact(typed)) == count,  # non-objects are null structs
    ]
    for line_field in fields:
        column = typed[line_field.name]
        checks.append(F.size(F.array_compact(column)) == count)  # present and not null
        checks.append(_clearly_valid_column(line_field, column))
        if line_field.unique:
            checks.append(F.size(F.array_distinct(column)) == count)
    return _all(checks)


def _fast_type(field: Field) -> str:
    return {"int": "bigint", "money": _MONEY, "boolean": "boolean"}.get(field.kind, "string")


def _clearly_valid_column(field: Field, column: Column) -> Column:
    """Whether every value of a typed array of a line field satisfies the field's rule."""
    if field.kind == "int":
        low, high = F.array_min(column), F.array_max(column)
        in_range = (low >= INT32_MIN) & (high <= INT32_MAX)
        if field.rule is None:
            return in_range
        op, bound = field.rule
        rule = {
            ">=": low >= bound,
            ">": low > bound,
            "!=": ~F.array_contains(column, bound),
            "==": (low == bound) & (high == bound),
        }[op]
        return in_range & rule
    if field.kind == "money":
        return F.array_min(column) >= 0
    if field.kind == "string":
        return ~F.array_contains(column, "")
    if field.kind == "enum":
        allowed = F.array(*(F.lit(value) for value in field.values))
        return F.size(F.array_except(column, allowed)) == 0
    return F.lit(True)  # boolean: the JSON type is the whole rule


# --- JSON text ----------------------------------------------------------------------------------


def _balanced(depth: int) -> str:
    """Regex for bracket-balanced text nested at most ``depth`` deep (brackets only counted)."""
    pattern = _NON_BRACKETS
    for _ in range(depth):
        pattern = f"{_NON_BRACKETS}(?:[\\[{{]{pattern}[\\]}}]{_NON_BRACKETS})*+"
    return pattern


def _one_json_container(text: Column) -> Column:
    """Whether the text is one bracket-balanced container and nothing else (Spark's parser
    silently ignores what follows the first JSON value).

    String literals are blanked out first; the regex handles nesting up to ``_REGEX_DEPTH``.
    Deeper documents are not accepted here: the reference validator decides them.
    """
    space = _JSON_SPACE
    skeleton = F.regexp_replace(text, _STRING_LITERAL, "_")
    return skeleton.rlike(f"^{space}*\\{{{_balanced(_REGEX_DEPTH)}\\}}{space}*\\z")


# --- bronze typing ------------------------------------------------------------------------------


def _bronze_columns(topic: Topic) -> list[Column]:
    parsed = F.col(PARSED_COLUMN)
    event_type = F.try_variant_get(parsed, "$.event_type", "string")
    columns = []
    for column in bronze_fields(topic.name):
        typed = F.lit(None)
        for name in reversed(topic.event_types):
            declared = {f.name: f for f in EVENT_TYPES[name].all_fields}.get(column.name)
            if declared is not None:
                own = _typed(declared, column, parsed)
                typed = F.when(event_type == name, own).otherwise(typed)
        columns.append(typed.cast(spark_type(column)).alias(column.name))
    return columns


def _typed(declared: Field, column: Field, parsed: Column) -> Column:
    """A valid event's field as its bronze column; ``column`` is the topic-wide declaration."""
    path = f"$.{declared.name}"
    if declared.kind == "lines":
        return _typed_lines(declared, column, parsed)
    if declared.kind in ("date", "timestamp"):
        text = F.try_variant_get(parsed, path, "string")
        return (F.upper(text) if declared.kind == "timestamp" else text).try_cast(
            spark_type(declared)
        )
    return F.try_variant_get(parsed, path, spark_type(declared))


def _typed_lines(declared: Field, column: Field, parsed: Column) -> Column:
    """Lines as the topic's line struct; members this event type lacks stay null."""
    own = {f.name for f in declared.line_fields}
    if any(f.kind in ("date", "timestamp") for f in declared.line_fields):
        raise ValueError(f"{declared.name}: date and timestamp line fields are not supported")
    own_type = ", ".join(f"{f.name}: {spark_type(f)}" for f in declared.line_fields)
    lines = F.try_variant_get(parsed, f"$.{declared.name}", f"array<struct<{own_type}>>")
    if own == {f.name for f in column.line_fields}:
        return lines
    return F.transform(
        lines,
        lambda line: F.struct(
            *(
                (line[f.name] if f.name in own else F.lit(None)).cast(spark_type(f)).alias(f.name)
                for f in column.line_fields
            )
        ),
    )
