"""The demo's day, in order: the checkouts, the manager's decisions, the chargeback, the enrollment, the return.

The POS and the manager act only from outside, over HTTP (the POS webhook and the review
console); the story reads the database only to wait until the service has finished its work.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from bot.app import Services
from bot.narration import Say
from bot.steps import STEPS
from simulation.manager import ConsoleError, ConsoleManager, has_action
from simulation.pos import Checkout, PosStandIn, Rung, demo_day
from storage.models import WatchlistPerson, WorkItem
from storage.uow import UnitOfWork

GAP_S = 1.2  # between checkouts (the POS also keeps each register free for its live-picture window)
SETTLE_TIMEOUT_S = 120
CHARGEBACK = "chargeback: the cardholder did not recognise the purchase"
ENROLL_REASON = "chargeback on a card typed in by hand"


class Story:
    def __init__(
        self, services: Services, pos: PosStandIn, base_url: str, manager_token: str, say: Say, stop: threading.Event
    ):
        self.services, self.pos, self.say, self.stop = services, pos, say, stop
        self.base_url, self.manager_token = base_url, manager_token
        self.day, self.return_visit, self.charged_back_key = demo_day()
        pos.on_rung = self._narrate_rung

    def play_auto(self) -> bool:
        """The whole story with the manager played through the console; True when every part happened."""
        self.play_day()
        if not self.settle():
            return False
        manager = ConsoleManager(self.base_url, self.manager_token).sign_in()
        self.say("story", "the manager (ana) signs in to the console and decides the open alerts")
        self.decide(manager)
        self.say("story", "days later, the bank charges one payment back")
        charged = self.chargeback()
        self.say("story", "ana enrolls the charged-back shopper's face from that alert's card")
        enrolled = self.enroll(manager, charged)
        self.say("story", "weeks later: the charged-back shopper comes back, at the other register")
        self.ring(self.return_visit)
        if not self.settle():
            return False
        self.decide(manager)
        return self.settle() and (enrolled or not self._can_enroll())

    def play_interactive(self) -> bool:
        """The day and the chargeback; the return visit comes once someone has enrolled a face."""
        self.play_day()
        self.settle()
        self.chargeback()
        self.say(
            "story", "your turn: decide the alerts in the console; Enroll a face on the charged-back checkout's alert"
        )
        threading.Thread(target=self._return_after_enrollment, name="return-visit", daemon=True).start()
        return True

    def play_day(self) -> None:
        self.say("story", f"the store opens: {len(self.day)} checkouts at two registers")
        for checkout in self.day:
            if self.stop.is_set():
                return
            self.ring(checkout)
            self.stop.wait(GAP_S)

    def ring(self, checkout: Checkout) -> Rung:
        return self.pos.ring(checkout)

    def settle(self, timeout_s: float = SETTLE_TIMEOUT_S) -> bool:
        """Wait until no step this process can run is waiting or running (delayed pictures included)."""
        deadline = time.monotonic() + timeout_s
        while not self.stop.is_set():
            if self._busy() == 0:
                return True
            if time.monotonic() > deadline:
                self.say("story", f"the service still had work after {timeout_s:.0f} s; going on")
                return False
            self.services.wake_runner()
            self.stop.wait(0.3)
        return False

    def decide(self, manager: ConsoleManager) -> None:
        """Decide every open alert of this run's transactions as the script says a manager would."""
        decisions = {rung.transaction_id: rung.checkout.decision for rung in self.pos.rung}
        for item in manager.timeline():
            decision = decisions.get(item.get("transaction_id") or "")
            if item["status"] != "open" or decision is None:
                continue
            verb, reason = decision
            if verb == "confirm":
                manager.confirm(item)
            else:
                manager.dismiss(item, reason or "other", "the bank confirmed the cardholder by phone")

    def chargeback(self) -> Rung | None:
        rung = next((r for r in self.pos.rung if r.checkout.key == self.charged_back_key), None)
        if rung is None:
            return None
        status = self.pos.report_fraud(rung.transaction_id, CHARGEBACK)
        self.say("POS", f"chargeback for {rung.transaction_id} posted to the fraud-report webhook -> {status}")
        return rung

    def enroll(self, manager: ConsoleManager, charged: Rung | None) -> bool:
        if charged is None:
            return False
        if not self._can_enroll():
            self.say(
                "story",
                "this build has no enrollment handlers yet (enroll_proposal / enroll): "
                "nobody is enrolled, so the return visit will not be recognised",
            )
            return False
        item = next((i for i in manager.timeline() if i.get("transaction_id") == charged.transaction_id), None)
        if item is None or not has_action(item["card"], "enroll_proposal"):
            self.say("story", f"no alert of {charged.transaction_id} offers a face to enroll")
            return False
        try:
            manager.enroll(item, ENROLL_REASON, 180)
        except ConsoleError as exc:
            self.say("story", f"enrollment did not happen: {exc}")
            return False
        deadline = time.monotonic() + SETTLE_TIMEOUT_S  # the enrollment step runs in the background
        while not self._enrolled() and time.monotonic() < deadline and not self.stop.wait(0.3):
            self.services.wake_runner()
        return self._enrolled() > 0

    def _can_enroll(self) -> bool:
        actions = self.services.dependencies()["router"].actions
        return "enroll_proposal" in actions and "enroll" in actions

    def _return_after_enrollment(self) -> None:
        while not self.stop.wait(1.0):
            if self._enrolled():
                self.stop.wait(3.0)
                self.say("story", "weeks later: the charged-back shopper comes back, at the other register")
                self.ring(self.return_visit)
                return

    def _enrolled(self) -> int:
        with UnitOfWork(self.services.db) as uow:
            return (
                uow.session.scalar(
                    select(func.count()).select_from(WatchlistPerson).where(WatchlistPerson.status == "active")
                )
                or 0
            )

    def _busy(self) -> int:
        with UnitOfWork(self.services.db) as uow:
            query = (
                select(func.count())
                .select_from(WorkItem)
                .where(WorkItem.status.in_(("pending", "running")), WorkItem.kind.in_(tuple(STEPS)))
            )
            return uow.session.scalar(query) or 0

    def _narrate_rung(self, rung: Rung) -> None:
        checkout = rung.checkout
        items = ", ".join(f"{q} x {name}" for (_, name, _), q in checkout.items)
        about = f"  [{checkout.key}{': ' + checkout.note if checkout.note else ''}]" if checkout.key != "clean" else ""
        kind = "" if checkout.kind == "sale" else f"{checkout.kind.upper()} "
        self.say(
            "POS",
            f"{kind}{rung.transaction_id} {checkout.register_id} {checkout.total()} BRL by {checkout.entry_mode} "
            f"(risk {checkout.risk_score}): {items} -> {rung.status}{about}",
        )
