"""A conversation with the bot through the stored-event step, as Webex delivers it: messages and card presses
in store-001's space by people of every role, and the messenger that validates every card the bot sends."""

from __future__ import annotations

import pytest

from bot.runner import Runner
from bot.steps import STEPS
from storage import inbound
from storage.uow import UnitOfWork
from tests.card_schema import card_validator
from tests.fakes import FakeMessenger

ROOM = "ROOM-STORE-1"
PEOPLE = {
    "P-ana": "ana@example.com",
    "P-bruno": "bruno@example.com",
    "P-carla": "carla@example.com",
    "P-dave": "dave@example.com",
}


@pytest.fixture
def messenger() -> FakeMessenger:
    """After each test, every card the bot sent must be a valid Adaptive Card 1.3."""
    fake = FakeMessenger(emails=dict(PEOPLE))
    yield fake
    for message in fake.sent:
        if message.card is not None:
            assert list(card_validator().iter_errors(message.card)) == [], message.markdown


class Conversation:
    """Says and presses as a person in ROOM; each returns the markdown of the answers posted in ROOM."""

    def __init__(self, services, messenger, clock):
        self.services, self.messenger, self.clock, self.n = services, messenger, clock, 0

    def _deliver(self, event_id: str, source: str) -> None:
        with UnitOfWork(self.services.db, write=True) as uow:
            if inbound.record_event(uow.session, event_id=event_id, source=source, payload={}, now=self.clock()):
                uow.work.enqueue(
                    kind="handle_event", key=event_id, ref_id=event_id, run_at=self.clock(), now=self.clock()
                )
            uow.commit()
        Runner(
            db=self.services.db, steps=STEPS, dependencies=self.services.dependencies(), clock=self.clock
        ).run_until_idle()

    def say(self, person: str, text: str, *, event_id: str | None = None) -> list[str]:
        self.n += 1
        event_id = event_id or f"MSG-{self.n}"
        self.messenger.messages[event_id] = {
            "id": event_id,
            "roomId": ROOM,
            "roomType": "group",
            "personId": person,
            "personEmail": PEOPLE[person],
            "text": f"Loss Bot {text}",
        }
        return self._answers(lambda: self._deliver(event_id, "webex_message"))

    def press(self, person: str, inputs: dict, *, event_id: str | None = None, on: str = "CARD-MSG") -> list[str]:
        self.n += 1
        event_id = event_id or f"ACT-{self.n}"
        self.messenger.actions[event_id] = {
            "id": event_id,
            "personId": person,
            "roomId": ROOM,
            "messageId": on,
            "inputs": inputs,
        }
        return self._answers(lambda: self._deliver(event_id, "webex_action"))

    def _answers(self, act) -> list[str]:
        before = len(self.messenger.sent)
        act()
        return [m.markdown for m in self.messenger.sent[before:] if m.room_id == ROOM]  # the answers in this space


@pytest.fixture
def chat(services, messenger, clock) -> Conversation:
    return Conversation(services, messenger, clock)
