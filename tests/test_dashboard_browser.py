"""The dashboard as a user sees it: `smarttrace dashboard` (which becomes `streamlit run`) serving
on 127.0.0.1, driven by Chromium.

Playwright drives Debian's Chromium (`/usr/bin/chromium`, package `chromium`): Playwright's own
browser download cannot run on our machines. Skipped, with the reason, when either is missing.
Screenshots land in `runs/screenshots/` for a person to look at.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_search import REPO_ROOT, build_search_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = REPO_ROOT / "runs" / "screenshots"
SERVER_START_S = 60
QUERY = "black top and blue jeans"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def playwright_chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"needs Debian's Chromium at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def dashboard_url(prefect_harness, playwright_chromium) -> Iterator[str]:
    """A dashboard server on the real test index, bound to 127.0.0.1 on a free port; stopped afterwards."""
    config = build_search_run()
    port = _free_port()
    log_path = SCREENSHOTS.parent / ".test-cache" / "dashboard-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "smarttrace.cli", "dashboard", "--config", str(config),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + SERVER_START_S
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start on {url}: see {log_path}\n{log_path.read_text()[-2000:]}")
                time.sleep(0.5)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def test_text_search_in_a_real_browser(dashboard_url, playwright_chromium):
    page = playwright_chromium.new_page(viewport={"width": 1400, "height": 1500})
    try:
        page.goto(dashboard_url, wait_until="domcontentloaded")
        description = page.get_by_role("textbox", name="Description (optional)")
        description.wait_for(timeout=60_000)
        assert page.get_by_text("text search uses clothing attributes only", exact=False).first.is_visible()
        description.fill(QUERY)
        description.press("Enter")
        page.get_by_text(f"people for “{QUERY}”").wait_for(timeout=60_000)
        cards = page.get_by_text("· Person ", exact=False)
        cards.first.wait_for(timeout=60_000)  # the header renders before the cards stream in
        assert cards.count() >= 1
        assert page.get_by_text("upper black", exact=False).first.is_visible()
        page.locator("img").first.wait_for(timeout=10_000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "search.png"), full_page=True)
        assert page.get_by_text("Traceback").count() == 0

        page.get_by_role("button", name="Open person").first.click()
        page.get_by_text("Timeline").wait_for(timeout=60_000)
        page.locator("video").first.wait_for(timeout=60_000)
        assert "person=" in page.url
        page.goto(page.url, wait_until="domcontentloaded")  # a bookmarked person link, seen from the top
        page.locator("video").first.wait_for(timeout=60_000)
        page.screenshot(path=str(SCREENSHOTS / "person.png"), full_page=True)
    finally:
        page.close()
