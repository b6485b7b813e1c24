"""The dashboard's two pages, drawn with Streamlit from `search` results.

Kept apart from `app.py` (routing, config, caching) so each page reads top to bottom as what the
user sees. All search logic lives in the `search` package; nothing here scores anything.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from search import (
    MAX_IMAGE_BYTES,
    IndexSummary,
    NoIndexError,
    PersonResult,
    SearchEngine,
    SearchInputError,
    SearchResults,
    TrackletHit,
)
from smarttrace.errors import SmartTraceError

log = logging.getLogger("smarttrace.dashboard")
GRID_COLUMNS = 5
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"]
RESULTS_KEY = "search_results"
QUERY_KEY = "search_query"


def _fmt(moment: datetime | None, with_date: bool = True) -> str:
    if moment is None:
        return "?"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def _span(start: datetime | None, end: datetime | None) -> str:
    same_day = start is not None and end is not None and start.date() == end.date()
    return f"{_fmt(start)} – {_fmt(end, with_date=not same_day)} UTC"


def _no_index(exc: NoIndexError) -> None:
    st.info("**No index yet.** Nothing has been processed for this configuration, so there is nobody to search.")
    st.markdown(f"{exc}")
    st.code("smarttrace process CONFIG", language="bash")


def _request_search() -> None:
    st.session_state["run_search"] = True


def _open_person(global_id: int, tracklet: str | None) -> None:
    """Go to a person's page, showing the tracklet that matched first."""
    st.query_params.clear()
    st.query_params["person"] = str(global_id)
    if tracklet:
        st.query_params["tracklet"] = tracklet


def _time_filter(summary: IndexSummary) -> tuple[datetime, datetime] | None:
    """A time-range slider over the index's span; None while it covers everything."""
    first, last = summary.first_seen, summary.last_seen
    if first is None or last is None or last - first < timedelta(seconds=2):
        return None
    low, high = first.replace(tzinfo=None, microsecond=0), (last + timedelta(seconds=1)).replace(
        tzinfo=None, microsecond=0
    )
    step = timedelta(seconds=1) if high - low <= timedelta(hours=2) else timedelta(minutes=1)
    chosen = st.slider(
        "Time (UTC)", min_value=low, max_value=high, value=(low, high), step=step, format="YYYY-MM-DD HH:mm:ss",
        key="time_range",
    )
    if chosen == (low, high):
        return None
    return chosen[0].replace(tzinfo=UTC), chosen[1].replace(tzinfo=UTC)


@st.cache_data(ttl=10, show_spinner=False)
def _summary(_engine: SearchEngine, index_path: str) -> IndexSummary:
    """The index summary, recomputed at most every 10 s: it reads every payload (~0.1 s at 50k)."""
    return _engine.summary()


def search_page(engine: SearchEngine) -> None:
    """Upload or describe, filter, search; a grid of people with a button each to open them."""
    st.title("SmartTrace person search")
    try:
        summary = _summary(engine, str(engine.index.path))
    except NoIndexError as exc:
        _no_index(exc)
        return
    if summary.points == 0:
        st.info("The index is empty: the pipeline ran but found nobody. Process more video first.")
        return
    st.caption(
        f"{summary.identities} people in {summary.points} tracklets from {len(summary.cameras)} camera(s), "
        f"{_span(summary.first_seen, summary.last_seen)}"
    )
    if engine.clip_note:
        st.info(f"{engine.clip_note[0].upper()}{engine.clip_note[1:]}.")

    left, right = st.columns([1, 1])
    with left:
        upload = st.file_uploader(
            "Photo of the person (optional)", type=UPLOAD_TYPES, key="query_image",
            max_upload_size=MAX_IMAGE_BYTES // 2**20,
            help=f"A photo or a crop, at most {MAX_IMAGE_BYTES // 2**20} MB. It stays in memory, never on disk.",
        )
    with right:
        text = st.text_input(
            "Description (optional)", key="query_text",
            placeholder="e.g. woman in a red jacket and blue jeans, with a backpack, no hat",
            on_change=_request_search,
            help="People (woman, old man, kid), clothes and their colours, hair, shoes, bags, hats; "
            "'no' / 'without' deny. Words the search does not understand are listed with the results.",
        )
        filters = _attribute_filters()
        cameras = st.multiselect("Cameras", summary.cameras, default=[], key="cameras", placeholder="All cameras")
        time_range = _time_filter(summary)
        limit = st.number_input("Results", min_value=1, max_value=50, value=10, step=1, key="limit")
    clicked = st.button("Search", type="primary", key="search")
    if clicked or st.session_state.pop("run_search", False):
        _run_search(engine, upload, text, cameras or None, time_range, int(limit), filters)
    results: SearchResults | None = st.session_state.get(RESULTS_KEY)
    if results is not None:
        _show_results(results, st.session_state.get(QUERY_KEY, ""), hidden_note=engine.clip_note)


GENDER_CHOICES = {"Anyone": None, "Only women": "female", "Only men": "male"}
CARRIED_FILTERS = (("filter_bag", "With a bag", "bag"), ("filter_backpack", "With a backpack", "backpack"),
                   ("filter_hat", "With a hat", "hat"))  # fmt: skip


def _attribute_filters() -> dict[str, bool]:
    """Gender and carried-thing controls -> attribute filters (`tasks.attribute_scoring.ATTRIBUTE_FILTERS`).

    They keep tracklets whose attribute probability reaches the filter threshold; tracklets indexed
    without the attribute model never pass them.
    """
    gender = st.radio("People", list(GENDER_CHOICES), horizontal=True, key="filter_gender")
    filters: dict[str, bool] = {}
    if GENDER_CHOICES[gender]:
        filters[GENDER_CHOICES[gender]] = True
    for column, (key, label, name) in zip(st.columns(len(CARRIED_FILTERS)), CARRIED_FILTERS, strict=True):
        with column:
            if st.checkbox(label, key=key):
                filters[name] = True
    return filters


def _run_search(
    engine: SearchEngine,
    upload: object | None,
    text: str,
    cameras: list[str] | None,
    time_range: tuple[datetime, datetime] | None,
    limit: int,
    filters: dict[str, bool] | None = None,
) -> None:
    st.session_state.pop(RESULTS_KEY, None)
    image = upload.getvalue() if upload is not None else None  # bytes in memory
    if image is None and not (text or "").strip() and not filters:
        st.warning("Upload a photo of the person, type a description or choose a filter first.")
        return
    try:
        with st.spinner("Searching…"):
            results = engine.search(image=image, text=text or None, camera_ids=cameras, time_range=time_range,
                                    limit=limit, attribute_filters=filters or None)
    except NoIndexError as exc:
        _no_index(exc)
        return
    except SmartTraceError as exc:
        st.error(str(exc))
        return
    labels = [label for key, label, _name in CARRIED_FILTERS if st.session_state.get(key)]
    gender = st.session_state.get("filter_gender", "Anyone")
    parts = (upload.name if upload is not None else "", (text or "").strip(),
             ", ".join(([gender.lower()] if gender != "Anyone" else []) + [label.lower() for label in labels]))
    query = " + ".join(part for part in parts if part)
    st.session_state[RESULTS_KEY] = results
    st.session_state[QUERY_KEY] = query


def _show_results(results: SearchResults, query: str, hidden_note: str | None = None) -> None:
    """Notes (except the CLIP one, shown above the form already), then a grid of person cards."""
    if results.query_crop is not None:
        with st.expander("Person searched for", expanded=False):
            st.image(results.query_crop, channels="BGR", width=120)
    for note in results.notes:
        if note != hidden_note:
            st.caption(f"Note: {note}")
    if not results:
        st.warning(f"No matching person for “{query}”. Try other words, fewer filters, or another photo.")
        return
    st.subheader(f"{len(results)} people for “{query}”")
    for row_start in range(0, len(results), GRID_COLUMNS):
        columns = st.columns(GRID_COLUMNS)
        for column, (rank, result) in zip(
            columns, enumerate(results[row_start : row_start + GRID_COLUMNS], row_start + 1), strict=False
        ):
            with column:
                _card(rank, result)


def _card(rank: int, result: PersonResult) -> None:
    with st.container(border=True):
        if result.thumbnail is not None:
            st.image(str(result.thumbnail), width=110)
        else:
            st.caption("(no thumbnail)")
        st.markdown(f"**#{rank} · Person {result.global_id}** · score {result.score:.2f}")
        st.caption(result.explanation)
        st.caption(f"Cameras: {', '.join(result.cameras)}  \nSeen: {_span(result.first_seen, result.last_seen)}")
        best = result.tracklets[0] if result.tracklets else None
        st.button(
            "Open person", key=f"open-{result.global_id}-{rank}", on_click=_open_person,
            args=(result.global_id, f"{best.camera_id}/{best.tracklet_id}" if best else None),
        )


# ---------------------------------------------------------------------------- person page


def _back() -> None:
    st.query_params.clear()


def _select(key: str) -> None:
    st.query_params["tracklet"] = key


def timeline_chart(tracklets: list[TrackletHit]) -> alt.Chart:
    """Cameras x time: one bar per appearance (tracklet), hover for details."""
    frame = pd.DataFrame(
        [
            {
                "camera": t.camera_id,
                "start": t.start_time,
                "end": t.end_time if t.end_time and t.start_time and t.end_time > t.start_time
                else (t.start_time + timedelta(seconds=0.5) if t.start_time else None),
                "tracklet": f"{t.camera_id} #{t.tracklet_id}",
                "location": t.location,
                "frames": f"{t.start_frame}–{t.end_frame}",
            }
            for t in tracklets
            if t.start_time is not None
        ]
    )
    return (
        alt.Chart(frame)
        .mark_bar(height=18, cornerRadius=3)
        .encode(
            x=alt.X("start:T", title="time (UTC)", axis=alt.Axis(format="%H:%M:%S")),
            x2="end:T",
            y=alt.Y("camera:N", title="camera"),
            color=alt.Color("camera:N", legend=None),
            tooltip=["tracklet", "camera", "location", "frames",
                     alt.Tooltip("start:T", format="%Y-%m-%d %H:%M:%S"), alt.Tooltip("end:T", format="%H:%M:%S")],
        )
        .properties(height=60 + 40 * frame["camera"].nunique() if len(frame) else 80)
    )


def person_page(engine: SearchEngine, person: str, tracklet: str | None) -> None:
    """Everything known about one global identity: timeline, a clip of one appearance, the others."""
    st.button("← Back to search", on_click=_back, key="back")
    try:
        global_id = int(person)
    except ValueError:
        st.error(f"'{person[:40]}' is not a person id")
        return
    try:
        appearances = engine.person_timeline(global_id)
    except NoIndexError as exc:
        _no_index(exc)
        return
    except SearchInputError as exc:
        st.error(str(exc))
        return
    cameras = sorted({t.camera_id for t in appearances})
    starts = [t.start_time for t in appearances if t.start_time]
    ends = [t.end_time for t in appearances if t.end_time]
    st.title(f"Person {global_id}")
    st.caption(
        f"{len(appearances)} appearance(s) in {len(cameras)} camera(s): {', '.join(cameras)} · "
        f"{_span(min(starts) if starts else None, max(ends) if ends else None)}"
    )
    st.subheader("Timeline")
    st.altair_chart(timeline_chart(appearances), width="stretch")

    keys = [f"{t.camera_id}/{t.tracklet_id}" for t in appearances]
    selected_key = tracklet if tracklet in keys else keys[0]
    selected = appearances[keys.index(selected_key)]
    st.subheader(f"Appearance: {selected.camera_id} #{selected.tracklet_id}")
    video, details = st.columns([3, 2])
    with details:
        if selected.thumbnail is not None:
            st.image(str(selected.thumbnail), width=90)
        st.markdown(
            f"**Camera** {selected.camera_id}  \n**Location** {selected.location or '—'}  \n"
            f"**Time** {_span(selected.start_time, selected.end_time)}  \n"
            f"**Frames** {selected.start_frame}–{selected.end_frame}  \n"
            f"**Clothes** upper {selected.upper_color or '?'}, lower {selected.lower_color or '?'}  \n"
            f"**Video** `{selected.video_path}`"
        )
    with video:
        try:
            with st.spinner("Rendering the clip (once per appearance)…"):
                clip = engine.render_clip(selected)
            st.video(str(clip))
        except SmartTraceError as exc:
            st.warning(f"No clip for this appearance: {exc}")

    others = [t for t in appearances if t is not selected]
    st.subheader(f"Other appearances ({len(others)})")
    if not others:
        st.caption("This person was seen only once.")
        return
    for row_start in range(0, len(others), GRID_COLUMNS):
        columns = st.columns(GRID_COLUMNS)
        for column, other in zip(columns, others[row_start : row_start + GRID_COLUMNS], strict=False):
            with column, st.container(border=True):
                if other.thumbnail is not None:
                    st.image(str(other.thumbnail), width=80)
                st.markdown(f"**{other.camera_id} #{other.tracklet_id}**")
                st.caption(f"{other.location or '—'}  \n{_span(other.start_time, other.end_time)}")
                key = f"{other.camera_id}/{other.tracklet_id}"
                st.button("Play", key=f"play-{key}", on_click=_select, args=(key,))
