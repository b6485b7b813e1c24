"""SmartTrace dashboard: find a person by photo or description, then follow them across cameras.

Run with `smarttrace dashboard --config CONFIG` (binds 127.0.0.1), or `streamlit run dashboards/app.py`
with `SMARTTRACE_CONFIG` set (default `configs/demo.yaml`).

Why the page lives in the URL (`?person=17&tracklet=pets/7`): a person page can be bookmarked or
sent to a colleague, and the browser's back button works. The search results stay in the session
state, so coming back from a person shows the same results without searching again.

Why every user-facing failure is caught here: a traceback in a browser tells the user nothing
they can act on; `SmartTraceError` messages say what to do (run the pipeline, upload a smaller
image, describe a colour).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import streamlit as st

from dashboards.lineage_view import lineage_page
from dashboards.views import person_page, search_page
from search import SearchEngine, load_engine
from smarttrace.errors import SmartTraceError

log = logging.getLogger("smarttrace.dashboard")
CONFIG_ENV = "SMARTTRACE_CONFIG"
DEFAULT_CONFIG = "configs/demo.yaml"


def config_path() -> Path:
    """The config named by SMARTTRACE_CONFIG, else configs/demo.yaml (cwd first, then the repository)."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named).resolve()
    local = Path(DEFAULT_CONFIG)
    if local.is_file():
        return local.resolve()
    return (Path(__file__).resolve().parent.parent / DEFAULT_CONFIG).resolve()


@st.cache_resource(show_spinner=False)
def _engine(path: str, mtime_ns: int) -> SearchEngine:
    """One engine per config file version per server: its models load once, for every session."""
    return load_engine(path)


def main() -> None:
    st.set_page_config(page_title="SmartTrace", page_icon=":mag:", layout="wide")
    path = config_path()
    try:
        if not path.is_file():
            raise SmartTraceError(f"config file not found: {path} (set {CONFIG_ENV} or pass --config)")
        engine = _engine(str(path), path.stat().st_mtime_ns)
        person = st.query_params.get("person")
        page = st.sidebar.radio("Page", ["Search", "Lineage"], horizontal=True) if person is None else "Search"
        if page == "Lineage":
            lineage_page(engine.run_dir)
        elif person is not None:
            person_page(engine, person, st.query_params.get("tracklet"))
        else:
            search_page(engine)
    except SmartTraceError as exc:
        st.error(str(exc))
    except Exception as exc:  # a bug must still not show the user a traceback
        log.exception("dashboard error")
        st.error(f"Something went wrong ({type(exc).__name__}: {exc}). Details are in the server log.")


main()
