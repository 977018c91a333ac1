"""SQL: ad-hoc, read-only queries over bronze.x, silver.x and gold.x."""

from __future__ import annotations

import streamlit as st

from dashboards import connection
from scm.errors import ScmError
from scm.query import is_truncated

PAGE = "sql"
TIMEOUT_SECONDS = 30.0
DEFAULT_QUERY = "select *\nfrom gold.fill_rate_daily\norder by order_date desc\nlimit 100"

st.title("SQL")
st.caption(
    "One read-only query at a time (SELECT, WITH, EXPLAIN, DESCRIBE, SHOW) over `bronze.x`,"
    f" `silver.x` and `gold.x`; stopped after {TIMEOUT_SECONDS:g} s."
)

with st.expander("Tables in the lake"):
    tables = connection.lake().tables()
    if tables:
        st.code("\n".join(tables), language=None)
    else:
        connection.require_tables("gold.fill_rate_daily", what="tables")

with st.form(f"{PAGE}.form"):
    sql = st.text_area(
        "Query", value=st.session_state.get(f"{PAGE}.query", DEFAULT_QUERY), height=160
    )
    max_rows = st.number_input("Row limit", min_value=1, max_value=100_000, value=1_000, step=100)
    submitted = st.form_submit_button("Run", icon=":material/play_arrow:", type="primary")

if submitted:
    st.session_state[f"{PAGE}.query"] = sql
    try:
        result = connection.lake().run_user_query(
            sql, max_rows=int(max_rows), timeout_seconds=TIMEOUT_SECONDS
        )
        st.session_state[f"{PAGE}.result"] = (result.to_pandas(), is_truncated(result), None)
    except ScmError as refusal:
        st.session_state[f"{PAGE}.result"] = (None, False, str(refusal))

if f"{PAGE}.result" in st.session_state:
    frame, truncated, message = st.session_state[f"{PAGE}.result"]
    if message:
        st.error(message, icon=":material/block:")
    else:
        st.caption(f"{len(frame):,} rows" + (" (row limit reached)" if truncated else ""))
        if truncated:
            st.warning("More rows matched than the row limit: add a LIMIT or aggregate.")
        st.dataframe(frame, hide_index=True, width="stretch")
        st.download_button(
            "Download CSV",
            frame.to_csv(index=False).encode(),
            "query.csv",
            mime="text/csv",
            icon=":material/download:",
        )
