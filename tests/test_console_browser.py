"""The review console in a real browser (headless Debian Chromium driven by Playwright), on the demo store.

The service is the real Flask app on a waitress thread with the real local face backend and product
counter; the camera is the Meraki stand-in serving the demo floor, the POS the stand-in posting signed
transactions over HTTP. The cards are drawn by Microsoft's Adaptive Cards renderer in the page, and a
press goes through the console to the same handlers as a Webex press; the read API confirms the outcome.

``FLP_UPDATE_SCREENSHOT=1`` also writes the README's screenshot, docs/console.png.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest
import requests
import yaml

from bot.app import build_services, create_app
from bot.demo import ThreadedServer
from bot.runner import Runner
from bot.steps import STEPS
from core.config import load_config
from simulation.camera_server import CameraStandIn
from simulation.floor import Floor
from simulation.pos import PosStandIn, demo_day
from storage.uow import UnitOfWork
from tests.conftest import API_TOKEN, POS_SECRET, REPO
from tests.real_parts import require_or_skip

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "ana-browser-token-0123456789abcdef"
SERIALS = {"reg-1": "Q2DM-DEMO-0001", "reg-2": "Q2DM-DEMO-0002"}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def playwright_browser():
    if not Path(CHROMIUM).exists():
        require_or_skip(f"{CHROMIUM} is missing: apt-get install chromium (never `playwright install`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_or_skip("pip playwright is missing (requirements-dev.txt)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class DemoStore:
    """The demo's pieces in this process: camera stand-in, service on waitress, POS stand-in, a runner."""

    def __init__(self, tmp_path: Path, sqlite_template: Path):
        database = tmp_path / "flp.db"
        shutil.copy(sqlite_template, database)
        self.floor = Floor(list(SERIALS.values()))
        self.camera = CameraStandIn(self.floor, api_key="camera-key").start()
        business = yaml.safe_load((REPO / "config/demo.yaml").read_text())
        for person in business["people"]:
            if person["email"] == "ana@example.com":
                person["console_token_sha256"] = hashlib.sha256(TOKEN.encode()).hexdigest()
        environ = {
            "DATABASE_URL": f"sqlite:///{database}",
            "DATA_DIR": str(tmp_path / "data"),
            "POS_WEBHOOK_SECRET": POS_SECRET,
            "API_TOKEN": API_TOKEN,
            "MERAKI_DASHBOARD_API_KEY": "camera-key",
            "MERAKI_BASE_URL": self.camera.base_url,
            "MERAKI_PICTURE_HOSTS": self.camera.picture_host,
        }
        config = load_config(environ, yaml.safe_dump(business), source=str(REPO / "config/demo.yaml"))
        self.services = build_services(config)
        self.server = ThreadedServer(create_app(self.services), "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self.server.port}"
        self.pos = PosStandIn(self.base_url, POS_SECRET, self.floor, SERIALS)
        self.day, self.return_visit, _ = demo_day()

    def checkout(self, key: str, *, exact_picture: bool = False) -> str:
        """Ring the script's checkout ``key`` and run the pipeline's due steps (the live picture and its analysis);
        with ``exact_picture`` also wait for the exact-time picture (config/demo.yaml: 5 s after the payment)."""
        rung = self.pos.ring(next(c for c in self.day if c.key == key))
        assert rung.status == 202
        self.run_due_steps()
        deadline = time.monotonic() + 30
        while exact_picture and not self._has_exact(rung.transaction_id) and time.monotonic() < deadline:
            time.sleep(0.5)
            self.run_due_steps()
        return rung.transaction_id

    def _has_exact(self, transaction_id: str) -> bool:
        with UnitOfWork(self.services.db) as uow:
            shot = uow.snapshots.of_transaction(transaction_id, "exact")
            return shot is not None and shot.analyzed_at is not None

    def run_due_steps(self) -> None:
        Runner(
            db=self.services.db, steps=STEPS, dependencies=self.services.dependencies(), clock=self.services.clock
        ).run_until_idle()

    def alert(self, alert_id: str) -> dict:
        response = requests.get(
            f"{self.base_url}/api/v1/alerts/{alert_id}", timeout=10, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert response.status_code == 200
        return response.json()

    def close(self) -> None:
        self.server.stop()
        self.camera.stop()
        self.services.db.dispose()


@pytest.fixture
def store(tmp_path, sqlite_template):
    opened = DemoStore(tmp_path, sqlite_template)
    yield opened
    opened.close()


def sign_in(page, store: DemoStore) -> None:
    page.goto(f"{store.base_url}/console")
    assert "/console/signin" in page.url
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{store.base_url}/console")


def test_confirm_and_dismiss_in_the_browser(playwright_browser, store, tmp_path):
    under_rung = store.checkout("under-rung")
    keyed = store.checkout("keyed card")
    page = playwright_browser.new_page(viewport={"width": 900, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, store)

    first = page.locator('article[data-item="A-1"]')
    first.locator(".ac-adaptiveCard").wait_for()
    assert "product_mismatch" in first.inner_text() and under_rung in first.inner_text()
    assert "Receipt vs camera" in first.inner_text()
    photo = first.locator("img.ac-image").first
    photo.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=photo.element_handle())
    assert photo.evaluate("img => img.naturalWidth") == 1280  # the evidence photo, from our own store

    first.get_by_role("button", name="Confirm").click()
    first.locator(".thread .bot-reply").filter(has_text="A-1 confirmed").wait_for()
    assert "confirmed by ana@example.com" in first.locator(".badge").inner_text()
    assert store.alert("A-1")["status"] == "confirmed"
    assert store.alert("A-1")["decided_by"] == "ana@example.com"

    second = page.locator('article[data-item="A-2"]')
    assert keyed in second.inner_text() and "keyed_card_high_risk" in second.inner_text()
    second.get_by_role("button", name="Dismiss", exact=True).click()  # opens the reason form (Action.ShowCard)
    second.get_by_text("No loss").click()
    second.get_by_role("button", name="Dismiss alert").click()
    second.locator(".thread .bot-reply").filter(has_text="A-2 dismissed").wait_for()
    decided = store.alert("A-2")
    assert (decided["status"], decided["reason"]) == ("dismissed", "no_loss")

    # A second press on the posted card answers who decided; nothing changes.
    first.get_by_role("button", name="Confirm").click()
    first.locator(".thread .bot-reply").filter(has_text="was already confirmed").wait_for()
    assert errors == []
    target = REPO / "docs/console.png" if os.environ.get("FLP_UPDATE_SCREENSHOT") else tmp_path / "console.png"
    page.set_viewport_size({"width": 900, "height": 1100})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(target))
    assert target.stat().st_size > 10_000


def test_alert_page_watchlist_and_stats_pages(playwright_browser, store):
    store.checkout("under-rung")
    page = playwright_browser.new_page()
    sign_in(page, store)
    page.goto(f"{store.base_url}/console/alerts/A-1")
    page.locator('article[data-item="A-1"] .ac-adaptiveCard').wait_for()
    page.get_by_text("Why: the facts the rule saw").click()
    assert "surplus_count" in page.locator("details.facts").inner_text()
    page.goto(f"{store.base_url}/console/watchlist")
    page.get_by_text("Nobody is on the watchlist.").wait_for()
    page.goto(f"{store.base_url}/console/stats")
    page.locator(".ac-adaptiveCard").first.wait_for()
    assert "store-001" in page.locator("#view").inner_text() or "Centro" in page.locator("#view").inner_text()
    # The demo store's face backend was never measured: the stats page says so, with the command to run.
    page.get_by_text("Face matching accuracy").wait_for()
    assert "was never evaluated" in page.locator("#view").inner_text()


def test_enroll_then_the_return_visit_is_recognised(playwright_browser, store):
    actions = store.services.dependencies()["router"].actions
    if "enroll_proposal" not in actions or "enroll" not in actions:
        require_or_skip("the enrollment handlers (enroll_proposal, enroll) are not in this build")
    keyed = store.checkout("keyed card", exact_picture=True)  # before the enrollment, as in a real store's day
    page = playwright_browser.new_page(viewport={"width": 900, "height": 1400})
    sign_in(page, store)
    alert = page.locator('article[data-item="A-1"]')
    assert keyed in alert.inner_text()
    alert.get_by_role("button", name="Enroll a face").click()
    proposal = alert.locator(".thread .bot-reply .ac-adaptiveCard").filter(has_text="Enrollment proposal")
    proposal.wait_for()
    proposal.get_by_role("radio", name="Face 1").check()  # two pictures, two faces: pick one, as a person would
    proposal.locator("textarea").fill("chargeback on a card typed in by hand")
    proposal.get_by_role("button", name="Enroll").click()
    alert.locator(".thread .bot-reply").filter(has_text="Enrolling the face").wait_for()
    store.run_due_steps()  # the enrollment step: the face backend enrolls the chosen crop
    page.goto(f"{store.base_url}/console/watchlist")
    page.get_by_text("chargeback on a card typed in by hand").first.wait_for()

    rung = store.pos.ring(store.return_visit)
    store.run_due_steps()
    page.goto(f"{store.base_url}/console")
    page.locator("article", has_text="watchlist_match").filter(has_text=rung.transaction_id).wait_for()
