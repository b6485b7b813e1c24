"""The Streamlit dashboard under Streamlit's `AppTest`: the real app script, the real index.

The index is the one the real pipeline builds for tests/test_search.py (shared run folder).
AppTest drives `st.file_uploader` directly (`set_value`), so the image path is exercised through
the real widget, not by injecting session state.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest
from test_search import REPO_ROOT, build_search_run, person_crop, upload_attribute_index, write_search_config

from search import load_engine
from smarttrace.config import load_config
from storage.artifacts import read_artifact
from storage.index import IndexConfig, upload_tracklets
from storage.index_settings import reid_dim

APP = REPO_ROOT / "dashboards" / "app.py"
TIMEOUT_S = 90  # the first image query loads the detector and OSNet


@pytest.fixture(scope="module")
def search_config(prefect_harness) -> Path:
    return build_search_run()


@pytest.fixture(scope="module")
def followed_config(search_config, tmp_path_factory) -> tuple[Path, int, int]:
    """(config, global id, tracklets): the real run's artifacts, indexed with one identity re-assigned
    to span two PETS tracklets and one campus tracklet.

    The short test clips hold nobody seen twice, and the person page is about showing an identity's
    several appearances; this tests the page, not the matching.
    """
    run_dir = load_config(search_config).storage.run_dir
    tracklets = pa.concat_tables(
        [read_artifact(run_dir / "tracklets" / f"{camera}.parquet", "tracklets") for camera in ("pets", "campus")]
    )
    identities = read_artifact(run_dir / "identities.parquet", "identities").to_pandas()
    pets = identities.loc[identities["camera_id"] == "pets"].sort_values("start_timestamp")
    campus = identities.loc[identities["camera_id"] == "campus"].sort_values("start_timestamp")
    merged = [pets.index[0], pets.index[-1], campus.index[0]]
    global_id = int(identities.loc[merged[0], "global_id"])
    identities.loc[merged, "global_id"] = global_id
    folder = tmp_path_factory.mktemp("followed")
    upload_tracklets(IndexConfig(path=folder / "qdrant", reid_dim=reid_dim(load_config(search_config).embed)),
                     tracklets, identities)
    return write_search_config(folder, run_dir=run_dir, index_path=folder / "qdrant"), global_id, len(merged)


def _app(monkeypatch, config: Path) -> AppTest:
    monkeypatch.setenv("SMARTTRACE_CONFIG", str(config))
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)


def _no_failure(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _cards(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if "· Person " in m.value]


def test_text_query_renders_results(monkeypatch, search_config):
    at = _app(monkeypatch, search_config)
    at.run()
    _no_failure(at)
    assert any("attributes only" in i.value for i in at.info)  # CLIP unavailable: said once, up front
    at.text_input(key="query_text").input("black top and blue jeans").run()  # Enter searches
    _no_failure(at)
    cards = _cards(at)
    assert cards and cards[0].startswith("**#1 · Person ")
    assert any("upper black" in c.value and "lower blue" in c.value for c in at.caption)
    assert any(s.value.endswith("for “black top and blue jeans”") for s in at.subheader)
    assert len(at.get("image")) >= len(cards)  # one thumbnail per card


def test_camera_filter_and_no_results(monkeypatch, search_config):
    at = _app(monkeypatch, search_config)
    at.run()
    at.multiselect(key="cameras").set_value(["campus"])
    at.text_input(key="query_text").input("black top")
    at.button(key="search").click().run()
    _no_failure(at)
    assert _cards(at)
    assert all("campus" in c.value for c in at.caption if c.value.startswith("Cameras:"))
    at.text_input(key="query_text").input("purple skirt").run()
    _no_failure(at)
    assert not _cards(at)
    assert any("No matching person" in w.value for w in at.warning)


def test_image_upload_renders_results(monkeypatch, search_config):
    engine = load_engine(search_config)
    crop, _tracklet, global_id = person_crop(search_config, engine)
    ok, png = cv2.imencode(".png", crop)
    assert ok
    at = _app(monkeypatch, search_config)
    at.run()
    at.file_uploader(key="query_image").set_value(("person.png", png.tobytes(), "image/png"))
    at.button(key="search").click().run()
    _no_failure(at)
    cards = _cards(at)
    assert cards and any(f"Person {global_id}**" in c for c in cards[:3])
    assert any("appearance" in c.value for c in at.caption)


def test_bad_inputs_show_a_message_not_a_traceback(monkeypatch, search_config):
    at = _app(monkeypatch, search_config)
    at.run()
    at.file_uploader(key="query_image").set_value(("photo.png", b"this is not a picture", "image/png"))
    at.button(key="search").click().run()
    assert not at.exception
    assert any("not an image" in e.value for e in at.error)
    at.file_uploader(key="query_image").set_value(None)
    at.text_input(key="query_text").input("someone walking").run()
    assert not at.exception
    assert any("not understood: walking" in e.value for e in at.error)
    at.query_params["person"] = "not-a-number"
    at.run()
    assert not at.exception and any("not a person id" in e.value for e in at.error)


def test_navigation_to_the_person_page(monkeypatch, followed_config):
    config, global_id, appearances = followed_config
    at = _app(monkeypatch, config)
    at.run()
    at.text_input(key="query_text").input("black top and blue jeans").run()
    buttons = [b for b in at.button if b.key and b.key.startswith("open-")]
    assert buttons
    target = next((b for b in buttons if b.key.startswith(f"open-{global_id}-")), buttons[0])
    target.click().run()
    _no_failure(at)
    assert at.query_params["person"] == target.key.split("-")[1]
    assert at.title[0].value == f"Person {target.key.split('-')[1]}"
    # Straight to the followed identity, as from a bookmarked link.
    at.query_params.clear()
    at.query_params["person"] = str(global_id)
    at.run()
    _no_failure(at)
    assert at.title[0].value == f"Person {global_id}"
    assert any(f"{appearances} appearance(s) in 2 camera(s)" in c.value for c in at.caption)
    chart = at.get("vega_lite_chart")
    assert len(chart) == 1 and '"camera"' in chart[0].proto.spec  # cameras x time
    assert len(at.get("video")) == 1
    assert any(s.value == f"Other appearances ({appearances - 1})" for s in at.subheader)
    play = [b for b in at.button if b.key and b.key.startswith("play-")]
    assert len(play) == appearances - 1
    play[0].click().run()
    _no_failure(at)
    assert at.query_params["tracklet"] == play[0].key.removeprefix("play-")
    at.button(key="back").click().run()
    _no_failure(at)
    assert at.title[0].value == "SmartTrace person search"


def test_empty_state_without_an_index(monkeypatch, tmp_path):
    at = _app(monkeypatch, write_search_config(tmp_path, run_dir=tmp_path / "never-processed"))
    at.run()
    assert not at.exception and not at.error
    assert any("No index yet" in i.value for i in at.info)
    assert any("smarttrace process" in c.value for c in at.code)


def test_missing_config_is_a_clear_error(monkeypatch, tmp_path):
    at = _app(monkeypatch, tmp_path / "nowhere.yaml")
    at.run()
    assert not at.exception
    assert any("config file not found" in e.value for e in at.error)


def test_dashboard_command_refuses_a_bad_config(tmp_path, capsys):
    from smarttrace.cli import main

    assert main(["dashboard", "--config", str(tmp_path / "nowhere.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_lineage_page_shows_the_artifact_tree_down_to_the_video(monkeypatch, search_config):
    at = _app(monkeypatch, search_config)
    at.run()
    at.sidebar.radio[0].set_value("Lineage").run()
    _no_failure(at)
    assert any(h.value == "Artifact lineage" for h in at.header)
    at.selectbox[0].set_value(next(o for o in at.selectbox[0].options if o.endswith("identities.parquet"))).run()
    labels = [e.label for e in at.expander]
    assert any("identities.parquet · match_cross_camera" in label for label in labels)
    assert any("· embed ·" in label for label in labels) and any("· track ·" in label for label in labels)
    assert any(label.split(" · ")[0].endswith((".avi", ".mp4")) for label in labels)  # the source videos


def test_attribute_filters_show_only_the_chosen_people(monkeypatch, search_config, tmp_path):
    women = upload_attribute_index(search_config, tmp_path / "qdrant")
    run_dir = load_config(search_config).storage.run_dir
    config = write_search_config(tmp_path, run_dir=run_dir, index_path=tmp_path / "qdrant")
    at = _app(monkeypatch, config)
    at.run()
    at.radio(key="filter_gender").set_value("Only women")
    at.checkbox(key="filter_backpack").check()
    at.button(key="search").click().run()  # filters alone are a query
    _no_failure(at)
    cards = _cards(at)
    assert cards and all(any(f"Person {gid}**" in c for gid in women.values()) for c in cards)
    assert any("filters: woman, backpack" in c.value for c in at.caption)
    at.radio(key="filter_gender").set_value("Only men")
    at.text_input(key="query_text").input("woman in a red top").run()  # men with a backpack: nobody
    _no_failure(at)
    assert not _cards(at)
    at.radio(key="filter_gender").set_value("Anyone")
    at.checkbox(key="filter_backpack").uncheck()
    at.text_input(key="query_text").input("woman in a red top, zorblax").run()
    _no_failure(at)
    assert _cards(at) and any("woman 0.95" in c.value for c in at.caption)
    assert any("not understood: zorblax" in c.value for c in at.caption)
