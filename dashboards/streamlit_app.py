"""Supply-chain KPI dashboards: the router. Each page lives in ``app_pages/``.

Run: ``streamlit run dashboards/streamlit_app.py`` (reads the lake at ``SCM_LAKE``). Every
page opens with the freshness line: how long ago events landed and the KPIs were refreshed.
"""

from __future__ import annotations

import streamlit as st

from dashboards import connection, freshness

st.set_page_config(
    page_title="Supply chain KPIs", page_icon=":material/local_shipping:", layout="wide"
)

navigation = st.navigation(
    {
        "KPIs": [
            st.Page(
                "app_pages/scorecard.py",
                title="SCOR scorecard",
                icon=":material/scoreboard:",
                default=True,
            ),
            st.Page("app_pages/fill_rate.py", title="Fill rate", icon=":material/inventory:"),
            st.Page(
                "app_pages/perfect_order.py",
                title="Perfect order & cycle time",
                icon=":material/verified:",
            ),
            st.Page("app_pages/inventory.py", title="Inventory", icon=":material/warehouse:"),
            st.Page("app_pages/returns.py", title="Returns", icon=":material/assignment_return:"),
            st.Page("app_pages/suppliers.py", title="Suppliers", icon=":material/factory:"),
            st.Page("app_pages/trace.py", title="Track & trace", icon=":material/route:"),
        ],
        "Planning": [
            st.Page("app_pages/planning.py", title="Planning", icon=":material/event_upcoming:"),
            st.Page("app_pages/alerts.py", title="Alerts", icon=":material/notifications_active:"),
        ],
        "Platform": [
            st.Page(
                "app_pages/pipeline_health.py",
                title="Pipeline health",
                icon=":material/monitor_heart:",
            ),
            st.Page("app_pages/sql.py", title="SQL", icon=":material/terminal:"),
        ],
    }
)

with st.sidebar:
    st.caption(f"Lake: `{connection.settings().lake}`")
    st.caption(f"Results refresh every {connection.RESULT_TTL_SECONDS} s.")
    if st.button("Refresh now", icon=":material/refresh:"):
        st.cache_data.clear()

freshness.render(connection.settings())
navigation.run()
