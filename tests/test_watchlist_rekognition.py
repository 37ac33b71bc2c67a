"""Enrollment and erasure on the Rekognition backend, every AWS call pinned with botocore's Stubber:
IndexFaces, CreateUser and AssociateFaces to enroll; DisassociateFaces, DeleteUser and DeleteFaces
(in that order) to forget, after which no row, file, descriptor or backend face of the person is left."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from PIL import Image, ImageDraw

from bot.app import build_services
from storage.models import Face, FaceMatch, WatchlistFace, WatchlistPerson, WorkItem
from storage.uow import UnitOfWork
from tests import factories
from tests.learning_fixtures import messenger  # noqa: F401  (a fixture: every card sent must be valid)
from tests.learning_helpers import ROLES, ROOM, Chat, audit, evidence_files
from vision.rekognition import RekognitionFaceBackend, make_client

COLLECTION = "flp-watchlist"
FACE_ID = "11111111-1111-4111-8111-111111111111"


@pytest.fixture
def business(business: dict) -> dict:
    business["stores"][0]["webex_room_id"] = ROOM
    business["people"] = ROLES
    return business


@pytest.fixture
def rek() -> Any:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    return make_client("us-east-1", "https://rekognition.test", max_attempts=1, session=session)


@pytest.fixture
def stub(rek: Any) -> Iterator[Stubber]:
    with Stubber(rek) as stubber:
        yield stubber


@pytest.fixture
def calls(rek: Any) -> list[tuple[str, dict]]:
    seen: list[tuple[str, dict]] = []
    rek.meta.events.register(
        "before-parameter-build.rekognition", lambda model, params, **_: seen.append((model.name, dict(params)))
    )
    return seen


@pytest.fixture
def services(config, clock, rek, messenger):
    built = build_services(
        config,
        clock=clock,
        faces=RekognitionFaceBackend(rek, COLLECTION),
        messenger=messenger,
        camera=None,
        products=None,
    )
    yield built
    built.db.dispose()


def crop() -> bytes:
    image = Image.new("RGB", (240, 240), (200, 170, 150))
    ImageDraw.Draw(image).ellipse((60, 50, 180, 190), fill=(230, 190, 160))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.getvalue()


def checkout_with_a_face(services) -> str:
    """What analysis leaves behind: a transaction, its picture and one customer's face with its crop."""
    now, picture, whole = services.clock(), crop(), crop() + b"the whole checkout picture"
    digest, scene = services.evidence.put(picture, "image/jpeg"), services.evidence.put(whole, "image/jpeg")
    with UnitOfWork(services.db, write=True) as uow:
        uow.snapshots.record_file(digest, kind="crop", content_type="image/jpeg", size_bytes=len(picture), now=now)
        uow.snapshots.record_file(scene, kind="snapshot", content_type="image/jpeg", size_bytes=len(whole), now=now)
        uow.session.add(factories.transaction(at=now))
        uow.session.add(factories.snapshot(at=now, evidence_sha256=scene, ready_at=now, analyzed_at=now))
        uow.session.add(factories.face(box=[0.1, 0.1, 0.4, 0.5], crop_sha256=digest))
        uow.commit()
    return digest


def test_enroll_then_forget_on_rekognition_leaves_nothing_behind(services, stub, calls, clock, messenger):
    digest = checkout_with_a_face(services)
    chat = Chat(services, messenger, clock)
    detail = {
        "BoundingBox": {"Left": 0.25, "Top": 0.2, "Width": 0.5, "Height": 0.58},
        "Confidence": 99.9,
        "Pose": {"Roll": 0.0, "Yaw": 2.0, "Pitch": 1.0},
        "Quality": {"Brightness": 55.0, "Sharpness": 80.0},
    }
    stub.add_response("detect_faces", {"FaceDetails": [detail]}, {"Image": {"Bytes": ANY}, "Attributes": ["DEFAULT"]})
    stub.add_response(
        "index_faces",
        {"FaceRecords": [{"Face": {"FaceId": FACE_ID}}]},
        {
            "CollectionId": COLLECTION,
            "Image": {"Bytes": ANY},
            "ExternalImageId": ANY,
            "MaxFaces": 1,
            "QualityFilter": "HIGH",
        },
    )
    stub.add_response("create_user", {}, {"CollectionId": COLLECTION, "UserId": ANY})
    stub.add_response(
        "associate_faces",
        {"AssociatedFaces": [{"FaceId": FACE_ID}], "UserStatus": "ACTIVE"},
        {"CollectionId": COLLECTION, "UserId": ANY, "FaceIds": [FACE_ID]},
    )
    inputs = {
        "action": "enroll",
        "transaction_id": "T-1",
        "face_ids": {"1": "F-1"},
        "face": "1",
        "reason": "chargeback on a cloned card",
        "expiry_days": "30",
    }
    sent = chat.press("P-ana", inputs)
    with UnitOfWork(services.db) as uow:
        person = uow.session.query(WatchlistPerson).one()
        person_id, status = person.id, person.status
        (enrolled,) = [(f.backend_face_id, f.descriptor, f.enrollment_image_sha256) for f in person.faces]
    assert status == "active" and enrolled == (FACE_ID, None, digest)
    assert f"✅ **{person_id}** is on the watchlist" in sent[-1].markdown
    # Our opaque id, never a name, is the user and the external image id.
    assert [(name, params.get("UserId", params.get("ExternalImageId"))) for name, params in calls[1:]] == [
        ("IndexFaces", person_id),
        ("CreateUser", person_id),
        ("AssociateFaces", person_id),
    ]
    stub.assert_no_pending_responses()

    calls.clear()
    stub.add_response(
        "disassociate_faces",
        {"DisassociatedFaces": [{"FaceId": FACE_ID}], "UserStatus": "ACTIVE"},
        {"CollectionId": COLLECTION, "UserId": person_id, "FaceIds": [FACE_ID]},
    )
    stub.add_response("delete_user", {}, {"CollectionId": COLLECTION, "UserId": person_id})
    stub.add_response("delete_faces", {"DeletedFaces": [FACE_ID]}, {"CollectionId": COLLECTION, "FaceIds": [FACE_ID]})
    sent = chat.say("P-carla", f"forget {person_id}")
    assert [name for name, _ in calls] == ["DisassociateFaces", "DeleteUser", "DeleteFaces"]
    stub.assert_no_pending_responses()
    assert sent[-1].markdown.startswith(f"🧹 **{person_id}** is erased: 1 face(s) removed from recognition")
    assert not services.evidence.path(digest, "image/jpeg").exists() and digest not in evidence_files(services)
    with UnitOfWork(services.db) as uow:
        assert uow.session.query(WatchlistPerson).count() == uow.session.query(WatchlistFace).count() == 0
        assert uow.session.query(FaceMatch).count() == 0 and uow.session.get(Face, "F-1").crop_sha256 is None
    assert ("system", "erasure", person_id, "forget", "ok") in audit(services)


def test_erasure_waits_while_rekognition_is_unreachable(services, stub, clock, messenger):
    digest = checkout_with_a_face(services)
    now = clock()
    with UnitOfWork(services.db, write=True) as uow:
        uow.session.add(factories.watchlist_person(at=now, reason="r", enrolled_by="x@y.z", expires_at=now))
        uow.session.flush()
        uow.session.add(
            factories.watchlist_face(
                at=now, id="WF-1", backend="rekognition", backend_face_id=FACE_ID, enrollment_image_sha256=digest
            )
        )
        uow.commit()
    stub.add_client_error("disassociate_faces", service_error_code="ThrottlingException", http_status_code=400)
    Chat(services, messenger, clock).say("P-carla", "forget P-1")
    # Nothing of ours is deleted before the backend has forgotten the person: the step runs again later.
    with UnitOfWork(services.db) as uow:
        assert uow.session.get(WatchlistPerson, "P-1").status == "removed"
        assert uow.session.query(WatchlistFace).count() == 1
        (item,) = [w for w in uow.session.query(WorkItem) if w.kind == "erase_person"]
        assert item.status == "pending" and "busy" in (item.last_error or "")
    assert services.evidence.path(digest, "image/jpeg").exists()
