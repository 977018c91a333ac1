"""Altair charts used across pages, so every page draws trends and breakdowns alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import altair as alt
import pandas as pd

_RATE_FORMAT = ".0%"


def trend(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str | list[str],
    title: str,
    rate: bool = False,
    y_title: str = "",
) -> alt.Chart:
    """A line per measure over time (``y`` may name several columns)."""
    measures = [y] if isinstance(y, str) else y
    long = frame.melt(id_vars=[x], value_vars=measures, var_name="measure", value_name="value")
    long["measure"] = long["measure"].str.replace("_", " ")
    axis = alt.Axis(format=_RATE_FORMAT) if rate else alt.Axis()
    return (
        alt.Chart(long, title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X(f"{x}:T", title=None),
            y=alt.Y("value:Q", title=y_title, axis=axis, scale=alt.Scale(zero=False)),
            color=alt.Color("measure:N", title=None, legend=alt.Legend(orient="bottom")),
            tooltip=[
                alt.Tooltip(f"{x}:T"),
                "measure:N",
                alt.Tooltip("value:Q", format=_RATE_FORMAT if rate else ",.2f"),
            ],
        )
        .properties(height=280)
    )


def bars(
    frame: pd.DataFrame,
    *,
    category: str,
    value: str,
    title: str,
    rate: bool = False,
    color: str | None = None,
) -> alt.Chart:
    """Horizontal bars, largest problems easy to spot."""
    axis = alt.Axis(format=_RATE_FORMAT) if rate else alt.Axis()
    encoding: dict[str, object] = {
        "y": alt.Y(f"{category}:N", title=None, sort="-x"),
        "x": alt.X(f"{value}:Q", title=value.replace("_", " "), axis=axis),
        "tooltip": [
            f"{category}:N",
            alt.Tooltip(f"{value}:Q", format=_RATE_FORMAT if rate else ",.2f"),
        ],
    }
    if color:
        encoding["color"] = alt.Color(f"{color}:N", title=None)
    return alt.Chart(frame, title=title).mark_bar().encode(**encoding).properties(height=240)


def grouped_bars(frame: pd.DataFrame, *, category: str, values: list[str], title: str) -> alt.Chart:
    """Several money measures side by side per category (e.g. cost and refunds per reason)."""
    long = frame.melt(
        id_vars=[category], value_vars=values, var_name="measure", value_name="amount"
    )
    long["measure"] = long["measure"].str.replace("_", " ")
    return (
        alt.Chart(long, title=title)
        .mark_bar()
        .encode(
            y=alt.Y(f"{category}:N", title=None),
            x=alt.X("amount:Q", title=None),
            yOffset="measure:N",
            color=alt.Color("measure:N", title=None, legend=alt.Legend(orient="bottom")),
            tooltip=[f"{category}:N", "measure:N", alt.Tooltip("amount:Q", format=",.2f")],
        )
        .properties(height=260)
    )


POINT = "point"  # the selection a clickable trend reports (``selection.point``)


def sparkline(frame: pd.DataFrame, *, color: str) -> alt.Chart:
    """A tiny axis-less trend for a scorecard tile; a click on a day selects it.

    One chart with a point overlay, not a layer: a layered chart costs Altair three times
    as long to build and validate, and a scorecard draws nine of them per rerun.
    """
    return (
        alt.Chart(frame)
        .mark_line(
            color=color,
            strokeWidth=2,
            point=alt.OverlayMarkDef(color=color, size=40, opacity=0.35),
        )
        .encode(
            x=alt.X("day:T", axis=None),
            y=alt.Y("value:Q", axis=None, scale=alt.Scale(zero=False)),
            tooltip=[alt.Tooltip("day:T"), alt.Tooltip("value:Q", format=",.3f")],
        )
        .add_params(alt.selection_point(name=POINT, fields=["day"], on="click", nearest=True))
        .properties(height=50)
        .configure_view(strokeWidth=0)
    )


def clickable(chart: alt.Chart, *fields: str) -> alt.Chart:
    """``chart`` with a click selecting one mark's ``fields`` (read them with :func:`picked`)."""
    return chart.add_params(
        alt.selection_point(name=POINT, fields=list(fields), on="click", nearest=True)
    )


def picked(event: object, field: str) -> object | None:
    """The value of ``field`` a click selected on a clickable chart, None without a click."""
    selection = event.get("selection") if isinstance(event, Mapping) else None
    points = (selection or {}).get(POINT) or []
    return points[0].get(field) if points else None


def picked_day(event: object, field: str = "day") -> dt.date | None:
    """The day a click selected on a clickable time axis (Vega reports epoch milliseconds)."""
    value = picked(event, field)
    if value is None:
        return None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC).date()
    return pd.Timestamp(str(value)).date()


def heatmap(frame: pd.DataFrame, *, x: str, y: str, value: str, title: str) -> alt.Chart:
    """Month × location grid (inventory turns, days of supply)."""
    return (
        alt.Chart(frame, title=title)
        .mark_rect()
        .encode(
            x=alt.X(f"{x}:O", title=None),
            y=alt.Y(f"{y}:N", title=None),
            color=alt.Color(f"{value}:Q", title=value.replace("_", " ")),
            tooltip=[f"{x}:O", f"{y}:N", alt.Tooltip(f"{value}:Q", format=",.1f")],
        )
        .properties(height=200)
    )
