"""Event validation as Spark column expressions, derived from ``scm.contracts``.

The rules, their order and the wording of every reason come from the field declarations in
``scm/contracts.py``; this module only translates each field kind into expressions over Spark's
VARIANT (no Python UDFs, nothing per row in Python). For the same bytes it reports the same
reason as :func:`scm.contracts.validate_event`, except that unparseable JSON is reported as
plain ``invalid JSON`` (Spark's parser gives no position).

Two paths share the declarations: a fast one, built from whole-array functions only, accepts
the events that are clearly valid; whatever it does not accept goes through the exact checks,
rule by rule and line by line, which find the first broken rule and word the reason. The fast
path is a sufficient condition only, so it never accepts what the exact checks reject.

Usage, inside a micro-batch::

    validated = with_validation(raw.where(raw.topic == "scm.orders"), "scm.orders").persist()
    to_bronze_rows(validated, "scm.orders")      # -> bronze/orders
    to_quarantine_rows(validated, "scm.orders")  # -> bronze/quarantine
"""

from __future__ import annotations

import functools
import operator
import string
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from scm.contracts import (
    CURRENCY_PATTERN,
    DATE_PATTERN,
    ENVELOPE,
    EVENT_TYPES,
    INT32_MAX,
    INT32_MIN,
    MONEY_LIMIT,
    MONEY_PRECISION,
    MONEY_SCALE,
    SHOWN_CHARACTERS,
    TIMESTAMP_PATTERN,
    TOPICS,
    EventType,
    Field,
    Reason,
    Topic,
    bronze_fields,
    spark_type,
)

PARSED_COLUMN = "parsed_value"
ERROR_COLUMN = "error"
# Every declared member of the event, pulled out of the variant once per row.
_MEMBERS_COLUMN = "_members"
# The first broken rule as struct(head, got, tail), or null; the error column words it.
_REASON_COLUMN = "_reason"

_MONEY = f"decimal({MONEY_PRECISION},{MONEY_SCALE})"
_JSON_SPACE = "[ \t\n\r]"
# A JSON string literal (possessive, so long strings cannot overflow Java's regex stack).
_STRING_LITERAL = r'"(?:[^"\\]++|\\.)*+"'
_NON_BRACKETS = r"[^\[\]{}]*+"
# Nesting the trailing-content regex handles; deeper documents take the slower walk.
_REGEX_DEPTH = 6
_STRING_KINDS = ("string", "enum", "currency", "date", "timestamp", "event_type")
# Line-field kinds whose rule whole-array functions can check (no per-line regex or cast).
_WHOLE_ARRAY_KINDS = ("string", "enum", "int", "money", "boolean")
# JSON types (as schema_of_variant names them) that a valid value of each kind has.
_JSON_TYPES: dict[str, str] = {
    **{kind: "STRING" for kind in _STRING_KINDS},
    "int": "BIGINT",
    "boolean": "BOOLEAN",
    "money": f"(?:BIGINT|DECIMAL\\([0-9]+,[0-{MONEY_SCALE}]\\))",
}


# --- public API ---------------------------------------------------------------------------------


def with_validation(raw: DataFrame, topic: str) -> DataFrame:
    """Kafka-source rows plus ``parsed_value`` (variant) and ``error`` (null when valid).

    ``raw`` has the Kafka source's columns (key, value, topic, partition, offset, timestamp).
    Both outputs below read the frame; persist it when it feeds both.
    """
    expressions = _expressions(raw.sparkSession, topic)
    # Values several rules read get projections of their own: Spark does not collapse a costly
    # expression into a projection that reads it more than once, whereas inside one projection
    # it evaluates it again for every use in AND/CASE branches.
    parsed = raw.withColumn(PARSED_COLUMN, F.try_parse_json(F.col("value").cast("string")))
    members = parsed.withColumn(_MEMBERS_COLUMN, expressions.members)
    prepared = members.select("*", *expressions.line_helpers)
    reasons = prepared.withColumn(_REASON_COLUMN, expressions.reason)
    helpers = [name for name in reasons.columns if name.startswith("_")]
    return reasons.withColumn(ERROR_COLUMN, _text(F.col(_REASON_COLUMN))).drop(*helpers)


def to_bronze_rows(validated: DataFrame, topic: str) -> DataFrame:
    """The valid events as bronze rows: exactly the columns of ``bronze_spark_ddl(topic)``.

    A field counts only for the event types that declare it: an extra field that happens to
    share a name with another event type's field is ignored like any other extra field.
    """
    expressions = _expressions(validated.sparkSession, topic)
    return validated.where(F.col(ERROR_COLUMN).isNull()).select(
        *expressions.bronze,
        F.col("topic").alias("_topic"),
        F.col("partition").cast("int").alias("_partition"),
        F.col("offset").cast("bigint").alias("_offset"),
        F.col("timestamp").alias("_kafka_timestamp"),
        F.current_timestamp().alias("_ingested_at"),
    )


def to_quarantine_rows(validated: DataFrame, topic: str | None = None) -> DataFrame:
    """The rejected messages as ``bronze/quarantine`` rows (``QUARANTINE_COLUMNS``).

    ``raw_value`` is the value as text with invalid UTF-8 replaced (U+FFFD); ``raw_bytes``
    keeps the exact bytes. ``topic`` fills the topic when the frame lacks one.
    """
    topic_name = F.col("topic") if topic is None else F.coalesce(F.col("topic"), F.lit(topic))
    return validated.where(F.col(ERROR_COLUMN).isNotNull()).select(
        topic_name.alias("topic"),
        F.col("partition").cast("int").alias("partition"),
        F.col("offset").cast("bigint").alias("offset"),
        F.make_valid_utf8(F.col("key").cast("string")).alias("key"),
        F.make_valid_utf8(F.col("value").cast("string")).alias("raw_value"),
        F.col(ERROR_COLUMN).alias("error"),
        F.current_timestamp().alias("quarantined_at"),
        F.col("value").alias("raw_bytes"),
    )


# --- the expressions of a topic, built once per Spark application --------------------------------


@dataclass(frozen=True)
class _TopicExpressions:
    members: Column
    line_helpers: list[Column]
    reason: Column
    bronze: list[Column]


_BUILT: dict[tuple[str, str], _TopicExpressions] = {}


def _expressions(spark: SparkSession, topic: str) -> _TopicExpressions:
    """A topic's expressions; building them costs seconds of py4j calls, so every micro-batch
    reuses them (they name columns only, so they fit any frame of the application)."""
    key = (spark.sparkContext.applicationId, topic)
    if key not in _BUILT:
        known = _topic(topic)
        members = F.col(_MEMBERS_COLUMN)
        _BUILT[key] = _TopicExpressions(
            members=F.try_variant_get(
                F.col(PARSED_COLUMN), "$", _members_type(bronze_fields(topic))
            ),
            line_helpers=_line_helpers(known, members),
            reason=_event_reason(F.col("value"), F.col("value").cast("string"), members, known),
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


# --- reasons: the exact checks ------------------------------------------------------------------
#
# A reason is struct(head, got, tail): the offending value (a variant) is rendered once, for the
# first broken rule, instead of once per rule in the expression.


def _reason(template: str, got: Column | None = None, **parts: Column | str | int) -> Column:
    """A :class:`Reason` template as struct(head, got, tail), ``got`` being the variant."""
    head: list[Column] = []
    tail: list[Column] = []
    pieces = head
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append(F.lit(literal))
        if name == "got":
            pieces = tail
        elif name is not None:
            part = parts[name]
            pieces.append(part if isinstance(part, Column) else F.lit(str(part)))
    return F.struct(
        (F.concat(*head) if head else F.lit("")).alias("head"),
        (got if got is not None else F.lit(None).cast("variant")).alias("got"),
        (F.concat(*tail) if tail else F.lit("")).alias("tail"),
    )


def _text(reason: Column) -> Column:
    """A reason struct as its message."""
    return F.when(
        reason.isNotNull(),
        F.concat(reason["head"], F.coalesce(_render(reason["got"]), F.lit("")), reason["tail"]),
    )


def _render(value: Column) -> Column:
    """A variant as reasons show it after "got" (mirrors :func:`scm.contracts.render`)."""
    json_type = F.schema_of_variant(value)
    text = F.try_variant_get(value, "$", "string")
    shown = F.when(
        F.char_length(text) > SHOWN_CHARACTERS,
        F.concat(F.substring(text, 1, SHOWN_CHARACTERS), F.lit("...")),
    ).otherwise(text)
    items = F.try_variant_get(value, "$", "array<variant>")
    # The variant drops a decimal's trailing zeros (3.0 -> 3); '.0' shows it was no integer.
    integral_decimal = json_type.rlike(r"^DECIMAL\([0-9]+,0\)$") & (
        F.try_variant_get(value, "$", "bigint").isNotNull()
    )
    return (
        F.when(json_type == "VOID", F.lit("null"))
        .when(json_type == "STRING", F.concat(F.lit("'"), shown, F.lit("'")))
        .when(json_type.startswith("OBJECT"), F.lit("an object"))
        .when(json_type.startswith("ARRAY"), F.when(F.size(items) == 0, "[]").otherwise("an array"))
        .when(integral_decimal, F.concat(text, F.lit(".0")))
        .otherwise(text)
    )


def _event_reason(value: Column, text: Column, members: Column, topic: Topic) -> Column:
    """The first broken rule of a message as a reason struct; null for a valid event."""
    event_type = F.try_variant_get(members["event_type"], "$", "string")
    clearly_valid = F.lit(False)
    by_type = F.lit(None)
    for name in reversed(topic.event_types):
        fields = EVENT_TYPES[name].fields
        type_error = F.coalesce(*(_field_error(f, members[f.name], "", topic) for f in fields))
        by_type = F.when(event_type == name, type_error).otherwise(by_type)
        fast = _clearly_valid(EVENT_TYPES[name], members)
        if fast is not None:
            clearly_valid = F.when(event_type == name, fast).otherwise(clearly_valid)
    envelope = (_field_error(f, members[f.name], "", topic) for f in ENVELOPE)
    return (
        F.when(value.isNull(), _reason(Reason.NULL_VALUE))
        .when(~F.is_valid_utf8(text), _reason(Reason.NOT_UTF8))
        .when(F.col(PARSED_COLUMN).isNull(), _reason(Reason.INVALID_JSON))
        .when(_has_trailing_content(text), _reason(Reason.INVALID_JSON))
        .when(~text.rlike(f"^{_JSON_SPACE}*\\{{"), _reason(Reason.NOT_OBJECT))
        .when(clearly_valid, F.lit(None))
        .otherwise(F.coalesce(*envelope, by_type))
    )


def _field_error(field: Field, value: Column, where: Column | str, topic: Topic) -> Column:
    """Why a field's value breaks its rule (a reason struct), or null; Python's check order."""
    present = value.isNotNull() & ~F.is_variant_null(value)
    if field.required:
        missing = _reason(Reason.MISSING, name=field.name, where=where)
    else:
        missing = F.lit(None)
    return F.when(~present, missing).otherwise(_value_error(field, value, where, topic))


def _value_error(field: Field, value: Column, where: Column | str, topic: Topic) -> Column:
    json_type = F.schema_of_variant(value)
    kind = field.kind

    def invalid(expected: str) -> Column:
        return _reason(Reason.INVALID, got=value, name=field.name, where=where, expected=expected)

    if kind == "event_type":
        return _event_type_error(value, json_type, topic)
    if kind == "lines":
        return _lines_error(field, value, json_type, topic)
    if kind == "int":
        number = F.try_variant_get(value, "$", "bigint")
        return (
            F.when((json_type != "BIGINT") | ~_int_rule(field, number), invalid(field.expectation))
            .when(number > INT32_MAX, invalid(f"at most {INT32_MAX}"))
            .when(number < INT32_MIN, invalid(f"at least {INT32_MIN}"))
        )
    if kind == "money":
        return _money_error(field, value, json_type, where, invalid)
    if kind == "boolean":
        return F.when(json_type != "BOOLEAN", invalid(field.expectation))
    text = F.try_variant_get(value, "$", "string")
    return F.when((json_type != "STRING") | ~_string_rule(field, text), invalid(field.expectation))


def _money_error(
    field: Field,
    value: Column,
    json_type: Column,
    where: Column | str,
    invalid: Callable[[str], Column],
) -> Column:
    is_decimal = json_type.startswith("DECIMAL")
    is_number = json_type.isin("BIGINT", "DOUBLE") | is_decimal
    as_double = F.try_variant_get(value, "$", "double")
    scale = F.regexp_extract(json_type, r"^DECIMAL\([0-9]+,([0-9]+)\)$", 1).try_cast("int")
    # A double (exponent notation) has few enough decimals when rounding to them changes nothing;
    # doubles too large for decimal(38,4) fail the range check instead.
    rounded = F.try_variant_get(value, "$", f"decimal(38,{MONEY_SCALE})")
    too_many_decimals = (is_decimal & (scale > MONEY_SCALE)) | (
        (json_type == "DOUBLE") & rounded.isNotNull() & (rounded.cast("double") != as_double)
    )
    return (
        F.when(~is_number | (as_double < 0), invalid(field.expectation))
        .when(
            too_many_decimals,
            _reason(
                Reason.TOO_MANY_DECIMALS, got=value, name=field.name, where=where, scale=MONEY_SCALE
            ),
        )
        .when(F.try_variant_get(value, "$", _MONEY).isNull(), invalid(f"less than {MONEY_LIMIT}"))
    )


def _event_type_error(value: Column, json_type: Column, topic: Topic) -> Column:
    text = F.try_variant_get(value, "$", "string")
    is_string = json_type == "STRING"
    elsewhere = {name: e.topic for name, e in EVENT_TYPES.items() if e.topic != topic.name}
    owners = F.create_map(*(F.lit(part) for pair in elsewhere.items() for part in pair))
    owner = F.try_element_at(owners, text)
    return (
        F.when(is_string & text.isin(*topic.event_types), F.lit(None))
        .when(
            is_string & owner.isNotNull(),
            _reason(Reason.OTHER_TOPIC, event_type=text, owner=owner, topic=topic.name),
        )
        .otherwise(
            _reason(
                Reason.UNKNOWN_EVENT_TYPE,
                got=value,
                topic=topic.name,
                expected=", ".join(topic.event_types),
            )
        )
    )


def _lines_error(field: Field, value: Column, json_type: Column, topic: Topic) -> Column:
    items = F.try_variant_get(value, "$", "array<variant>")
    # Objects become structs of member variants; any other element becomes a null struct.
    lines = F.try_variant_get(value, "$", f"array<{_members_type(field.line_fields)}>")

    def line_error(line: Column, index: Column) -> Column:
        where = F.concat(F.lit(f" in {field.name}["), index.cast("string"), F.lit("]"))
        not_object = _reason(
            Reason.NOT_AN_OBJECT,
            got=F.get(items, index),
            parent=field.name,
            index=index.cast("string"),
        )
        member_errors = (_field_error(f, line[f.name], where, topic) for f in field.line_fields)
        return F.when(line.isNull(), not_object).otherwise(F.coalesce(*member_errors))

    first_line_error = F.get(F.filter(F.transform(lines, line_error), lambda e: e.isNotNull()), 0)
    checks = [first_line_error]
    for line_field in field.line_fields:
        if line_field.unique:
            checks.append(_duplicate_error(field, line_field, lines))
    not_array = _reason(
        Reason.INVALID, got=value, name=field.name, where="", expected=field.expectation
    )
    return F.when(~json_type.startswith("ARRAY") | (F.size(items) == 0), not_array).otherwise(
        F.coalesce(*checks)
    )


def _duplicate_error(field: Field, line_field: Field, lines: Column) -> Column:
    # Unique fields are integers: their text parses back to the same JSON value.
    values = F.transform(
        lines, lambda line: F.try_variant_get(line[line_field.name], "$", "string")
    )
    # array_position is 1-based: a value seen at a lower index is a repeat.
    repeated = F.get(F.filter(values, lambda item, i: F.array_position(values, item) <= i), 0)
    return F.when(
        F.size(F.array_distinct(values)) < F.size(values),
        _reason(
            Reason.DUPLICATE,
            got=F.try_parse_json(repeated),
            name=line_field.name,
            parent=field.name,
        ),
    )


# --- the fast path: a sufficient condition for validity, without per-line lambdas ---------------


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


def _has_trailing_content(text: Column) -> Column:
    """Whether anything follows the first JSON value (Spark's parser silently ignores it).

    Run on text that parsed, with string literals blanked out: a container is the whole text
    when its first bracket closes last. A regex decides that for usual nesting; deeper
    documents walk their brackets.
    """
    space = _JSON_SPACE
    skeleton = F.regexp_replace(text, _STRING_LITERAL, "_")
    one_container = skeleton.rlike(f"^{space}*[\\[{{]{_balanced(_REGEX_DEPTH)}[\\]}}]{space}*\\z")
    brackets = F.split(F.regexp_replace(skeleton, r"[^\[\]{}]", ""), "")

    def step(state: Column, bracket: Column) -> Column:
        depth = state["depth"] + F.when(bracket.isin("{", "["), 1).otherwise(-1)
        closings = state["closings"] + F.when(depth == 0, 1).otherwise(0)
        return F.struct(depth.alias("depth"), closings.alias("closings"))

    start = F.struct(F.lit(0).alias("depth"), F.lit(0).alias("closings"))
    walk = F.aggregate(brackets, start, step)
    walked_one_container = (
        skeleton.rlike(f"[\\]}}]{space}*\\z") & (walk["depth"] == 0) & (walk["closings"] == 1)
    )
    # A scalar is one token: a string (now '_') or a number or literal without spaces.
    one_scalar = skeleton.rlike(f"^{space}*(?:_|[-+.0-9A-Za-z]+){space}*\\z")
    is_container = skeleton.rlike(f"^{space}*[\\[{{]")
    return ~F.when(is_container, one_container | walked_one_container).otherwise(one_scalar)


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
