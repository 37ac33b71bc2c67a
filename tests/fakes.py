"""Fakes of the outside-service Protocols (vision.types) that record their calls."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from core.messenger import WebexError
from core.waiting import Waits, at_once
from vision.types import CameraError, DetectedFace, EnrolledFace, FaceMatch, Picture, ProductCount

JPEG = b"\xff\xd8\xff\xe0" + b"fake-jpeg"


@dataclass
class FakeCamera:
    """Answers each snapshot with the next scripted result: a Picture, or a CameraError to raise."""

    script: list[Picture | CameraError] = field(default_factory=list)
    calls: list[tuple[str, str, datetime | None]] = field(default_factory=list)

    def snapshot(self, serial: str, *, org_id: str, at: datetime | None) -> Picture:
        self.calls.append((serial, org_id, at))
        result = self.script.pop(0) if self.script else Picture(JPEG + str(len(self.calls)).encode(), "image/jpeg")
        if isinstance(result, CameraError):
            raise result
        return result

    def snapshot_waits(self, serial: str, *, org_id: str, at: datetime | None) -> Waits[Picture]:
        return at_once(self.snapshot(serial, org_id=org_id, at=at))

    def video_link(self, serial: str, *, org_id: str, at: datetime) -> str | None:
        return f"https://dashboard.test/footage/{serial}?t={int(at.timestamp())}"


def face(
    box: tuple[float, float, float, float], *, name: str = "", size_px: int = 120, quality: float = 0.9
) -> DetectedFace:
    return DetectedFace(
        box=box, quality=quality, size_px=size_px, sharpness=0.8, crop=JPEG + name.encode(), handle=name
    )


@dataclass
class FakeFaceBackend:
    """Detects the faces scripted for any image; a face's ``handle`` names who it is."""

    name: str = "fake"
    faces: list[DetectedFace] = field(default_factory=list)
    similarity: dict[tuple[str, str], float] = field(default_factory=dict)  # (face handle, person id) -> 0-100
    searches: list[tuple[str, tuple[str, ...] | None, float]] = field(default_factory=list)
    enrolled: dict[str, list[str]] = field(default_factory=dict)
    state: str = "ready"

    def prepare(self) -> str:
        return self.state

    def detect(self, image: bytes) -> list[DetectedFace]:
        return list(self.faces)

    def search(
        self, face: DetectedFace, *, person_ids: Collection[str] | None, min_similarity: float
    ) -> list[FaceMatch]:
        self.searches.append(
            (face.handle, tuple(sorted(person_ids)) if person_ids is not None else None, min_similarity)
        )
        found = [
            FaceMatch(person, s)
            for (handle, person), s in self.similarity.items()
            if handle == face.handle and s >= min_similarity and (person_ids is None or person in person_ids)
        ]
        return sorted(found, key=lambda m: -m.similarity)

    def enroll(self, person_id: str, face: DetectedFace) -> EnrolledFace:
        self.enrolled.setdefault(person_id, []).append(face.handle)
        return EnrolledFace(backend_face_id=None, descriptor=b"\x00" * 512)

    def forget(self, person_id: str, backend_face_ids: Collection[str]) -> None:
        self.enrolled.pop(person_id, None)


@dataclass
class FakeProductCounter:
    seen: dict[str, int | None] = field(default_factory=dict)

    def count(self, image: bytes, labels: Collection[str]) -> list[ProductCount]:
        return [
            ProductCount(label, self.seen.get(label), 0.9 if self.seen.get(label) is not None else None)
            for label in labels
        ]


@dataclass
class FakeMessenger:
    """Records sent messages; ``failures`` are raised by the next sends, in order."""

    sent: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    messages: dict = field(default_factory=dict)  # message id -> GET /messages/{id} body
    actions: dict = field(default_factory=dict)  # action id -> GET /attachment/actions/{id} body
    emails: dict = field(default_factory=dict)  # person id -> email
    parents: dict = field(default_factory=dict)  # id of a message sent -> its parentId (None for a root)
    bot: dict = field(
        default_factory=lambda: {"id": "BOT", "displayName": "Loss Bot", "emails": ["loss-bot@webex.bot"]}
    )

    def send(self, message):
        if len(message.markdown.encode("utf-8")) > 7439:  # what Webex answers, checked apart from the client's own
            raise WebexError("send a message: Webex answered 400 (text too long)", retry=False, status=400)
        if self.failures:
            raise self.failures.pop(0)
        if message.parent_id is not None and self._parent_of(message.parent_id):
            # Webex: "parentId must be the thread's root"; a reply to a reply is refused.
            raise WebexError("send a message: Webex answered 400 (Cannot reply to a reply)", retry=False, status=400)
        self.sent.append(message)
        self.parents[f"M-{len(self.sent)}"] = message.parent_id
        return f"M-{len(self.sent)}"

    def _parent_of(self, message_id: str) -> str | None:
        if message_id in self.parents:
            return self.parents[message_id]
        return (self.messages.get(message_id) or {}).get("parentId")

    def message(self, message_id: str) -> dict:
        if message_id not in self.messages:
            raise WebexError("read a message: Webex answered 404 (not found)", retry=False, status=404)
        return self.messages[message_id]

    def attachment_action(self, action_id: str) -> dict:
        if action_id not in self.actions:
            raise WebexError("read a card action: Webex answered 404 (not found)", retry=False, status=404)
        return self.actions[action_id]

    def person_email(self, person_id: str) -> str | None:
        return self.emails.get(person_id)

    def me(self) -> dict:
        return self.bot
