"""Shared by the learning-loop and governance tests: a conversation driving Webex events through the
stored-event step (presses on the actual messages the bot sent), and a few lookups."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta, timezone
from typing import Any

from bot.runner import Runner
from bot.steps import STEPS
from storage import inbound
from storage.models import AuditEntry, EvidenceFile, WatchlistFace, WatchlistPerson
from storage.uow import UnitOfWork
from tests.card_schema import card_validator
from tests.conftest import transaction_body
from tests.fakes import FakeFaceBackend
from vision.types import DetectedFace

ROOM = "ROOM-STORE-1"
PEOPLE = {
    "P-ana": "ana@example.com",
    "P-bruno": "bruno@example.com",
    "P-carla": "carla@example.com",
    "P-dora": "dora@example.com",
}
ROLES = [
    {"email": "ana@example.com", "role": "manager", "stores": ["store-001"]},
    {"email": "bruno@example.com", "role": "staff", "stores": ["store-001"]},
    {"email": "carla@example.com", "role": "security", "stores": ["*"]},
    {"email": "dora@example.com", "role": "security", "stores": ["store-001"]},
]


class Chat:
    """Messages and presses as Webex would deliver them; every call runs the queue until idle."""

    def __init__(self, services: Any, messenger: Any, clock: Any):
        self.services, self.messenger, self.clock, self.n = services, messenger, clock, 0

    def run(self) -> list[Any]:
        before = len(self.messenger.sent)
        Runner(
            db=self.services.db, steps=STEPS, dependencies=self.services.dependencies(), clock=self.clock
        ).run_until_idle()
        return self.messenger.sent[before:]

    def say(self, person: str, text: str) -> list[Any]:
        self.n += 1
        event_id = f"MSG-{self.n}"
        self.messenger.messages[event_id] = {
            "id": event_id,
            "roomId": ROOM,
            "roomType": "group",
            "personId": person,
            "personEmail": PEOPLE[person],
            "text": f"Loss Bot {text}",
        }
        return self._deliver(event_id, "webex_message")

    def press(self, person: str, inputs: dict, *, on: str = "CARD-MSG") -> list[Any]:
        """A press on the message whose Webex id is ``on`` (see ``message_id``)."""
        self.n += 1
        event_id = f"ACT-{self.n}"
        self.messenger.actions[event_id] = {
            "id": event_id,
            "personId": person,
            "roomId": ROOM,
            "messageId": on,
            "inputs": inputs,
        }
        return self._deliver(event_id, "webex_action")

    def message_id(self, message: Any) -> str:
        """The Webex id FakeMessenger gave a sent message."""
        return f"M-{next(i for i, m in enumerate(self.messenger.sent) if m is message) + 1}"

    def _deliver(self, event_id: str, source: str) -> list[Any]:
        now = self.clock()
        with UnitOfWork(self.services.db, write=True) as uow:
            if inbound.record_event(uow.session, event_id=event_id, source=source, payload={}, now=now):
                uow.work.enqueue(kind="handle_event", key=event_id, ref_id=event_id, run_at=now, now=now)
            uow.commit()
        return self.run()


def card_texts(element: Any) -> list[str]:
    """Every TextBlock's text in a card, depth first (rows nest in column sets and containers)."""
    if isinstance(element, dict):
        own = [element["text"]] if element.get("type") == "TextBlock" else []
        return own + [
            t for key in ("body", "items", "columns") for child in element.get(key, []) for t in card_texts(child)
        ]
    return []


def cards_titled(messages: list[Any], title: str) -> list[Any]:
    return [
        m
        for m in messages
        if m.card is not None
        and any(b.get("text") == title for b in m.card.get("body", []) if b.get("type") == "TextBlock")
    ]


def assert_cards_valid(messages: list[Any]) -> None:
    for message in messages:
        if message.card is not None:
            errors = sorted(card_validator().iter_errors(message.card), key=str)
            assert errors == [], (message.markdown, errors[0].message if errors else "")


def enroll_inputs(
    card: dict, *, face: str = "1", reason: str = "chargeback on a cloned card", days: int | None = 90
) -> dict:
    """What Webex sends for the proposal card's Enroll button: its data merged with the inputs."""
    (button,) = [a for a in card["actions"] if a["data"]["action"] == "enroll"]
    return {**button["data"], "face": face, "reason": reason, **({"expiry_days": str(days)} if days else {})}


def body_at(clock: Any, transaction_id: str, register_id: str = "reg-1", **changes: Any) -> dict:
    local = clock().astimezone(timezone(timedelta(hours=-3))).isoformat()
    return transaction_body(transaction_id=transaction_id, register_id=register_id, occurred_at=local, **changes)


def people(services: Any) -> list[WatchlistPerson]:
    with UnitOfWork(services.db) as uow:
        found = uow.session.query(WatchlistPerson).order_by(WatchlistPerson.enrolled_at).all()
        for person in found:
            person.faces  # noqa: B018  (load before the session closes)
        return found


def enrolled_faces(services: Any) -> list[WatchlistFace]:
    with UnitOfWork(services.db) as uow:
        return uow.session.query(WatchlistFace).all()


def audit(services: Any) -> list[tuple]:
    with UnitOfWork(services.db) as uow:
        return [(e.actor, e.action, e.subject_id, e.reason_code, e.outcome) for e in uow.session.query(AuditEntry)]


def evidence_files(services: Any) -> dict[str, str]:
    with UnitOfWork(services.db) as uow:
        return {f.sha256: f.kind for f in uow.session.query(EvidenceFile)}


class CropFaces(FakeFaceBackend):
    """The fake backend, but a stored crop shows only the face it was cut for (as a real backend would)."""

    forgotten: list

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.forgotten = []

    def detect(self, image: bytes) -> list[DetectedFace]:
        own = [f for f in self.faces if f.crop == image]
        return own or list(self.faces)

    def forget(self, person_id: str, backend_face_ids: Collection[str]) -> None:
        self.forgotten.append((person_id, tuple(backend_face_ids)))
        super().forget(person_id, backend_face_ids)
