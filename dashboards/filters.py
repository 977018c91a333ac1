"""Page filters that survive page switches: each page keeps its own values in session state.

Streamlit forgets a widget's state when its page is not shown, so the chosen value is also
copied to a plain session key (``filters.<page>.<name>``) and restored on the next visit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st


@dataclass(frozen=True)
class Filters:
    """What the user picked on a page; empty lists mean "all"."""

    start_date: dt.date | None = None
    end_date: dt.date | None = None
    locations: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    suppliers: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def params(self) -> dict[str, Any]:
        """Query parameters (values are bound by DuckDB, never written into SQL)."""
        return {
            "start_date": self.start_date,
            "end_date": self.end_date,
            "locations": list(self.locations),
            "channels": list(self.channels),
            "categories": list(self.categories),
            "suppliers": list(self.suppliers),
            "reasons": list(self.reasons),
        }


def _store_key(page: str, name: str) -> str:
    return f"filters.{page}.{name}"


def _widget_key(page: str, name: str) -> str:
    return f"widget.{page}.{name}"


def _restore(page: str, name: str, default: Any) -> str:
    widget = _widget_key(page, name)
    if widget not in st.session_state:
        st.session_state[widget] = st.session_state.get(_store_key(page, name), default)
    return widget


def _remember(page: str, name: str) -> None:
    st.session_state[_store_key(page, name)] = st.session_state[_widget_key(page, name)]


def date_range(
    page: str, *, first: dt.date, last: dt.date, default_days: int = 28, label: str = "Dates"
) -> tuple[dt.date, dt.date]:
    default = (max(first, last - dt.timedelta(days=default_days - 1)), last)
    key = _restore(page, "dates", default)
    picked = st.date_input(
        label, key=key, min_value=first, max_value=last, on_change=_remember, args=(page, "dates")
    )
    _remember(page, "dates")
    if isinstance(picked, tuple) and len(picked) == 2:
        return picked[0], picked[1]
    if isinstance(picked, tuple) and len(picked) == 1:  # mid-selection: one end picked
        return picked[0], picked[0]
    return default


def choose(page: str, name: str, label: str, options: Sequence[str]) -> list[str]:
    """A multiselect where nothing selected means everything."""
    key = _restore(page, name, [])
    st.session_state[key] = [v for v in st.session_state[key] if v in options]
    picked = st.multiselect(
        label, list(options), key=key, placeholder="All", on_change=_remember, args=(page, name)
    )
    _remember(page, name)
    return list(picked)


def pick_one(
    page: str,
    name: str,
    label: str,
    options: Sequence[Any],
    *,
    default: Any,
    format_func: Callable[[Any], str] = str,
) -> Any:
    """One choice among a few (shown as buttons)."""
    key = _restore(page, name, default)
    if st.session_state[key] not in options:
        st.session_state[key] = default
    picked = st.segmented_control(
        label,
        list(options),
        key=key,
        format_func=format_func,
        required=True,
        on_change=_remember,
        args=(page, name),
    )
    _remember(page, name)
    return default if picked is None else picked
