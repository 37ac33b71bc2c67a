"""Amazon Rekognition as a FaceBackend: detect every face, search each crop against user vectors, enroll, erase.

The traps this module exists for (see docs/services.md): Search*ByImage searches only the
largest face, so each detected face is cropped and searched alone; images must be JPEG/PNG of at
most 5 MB and botocore does not check it; a person's faces are grouped under a user vector whose
id is our own opaque person id, never a name; erasure runs disassociate, delete user, delete faces.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from vision import image_prep
from vision.types import Box, DetectedFace, EnrolledFace, FaceMatch, RecognitionError

logger = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 5 * 1024 * 1024  # Image.Bytes limit of every Rekognition image operation
# ExternalImageId allows [a-zA-Z0-9_.\-:]{1,255} but UserId only 128 of them: a person id must fit both.
PERSON_ID = re.compile(r"[a-zA-Z0-9_.\-:]{1,128}")
QUALITY_FILTERS = ("NONE", "AUTO", "LOW", "MEDIUM", "HIGH")
_RETRYABLE = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "InternalServerError",
        "ServiceUnavailableException",
        "ConflictException",
        "ResourceNotReadyException",
    }
)
_GOOD_FACE_PX = 112  # from this face size up, size no longer lowers quality (enough detail for a person to compare)
_PROFILE_DEGREES = 60.0  # yaw or pitch at which a face counts as unusable for search
# SearchedFace against the face the crop was cut around: the detectors' boxes differ a little for the same face,
# a neighbour's box barely overlaps it.
SAME_FACE_IOU = 0.4


def make_client(
    region: str | None,
    endpoint_url: str | None = None,
    *,
    max_attempts: int = 5,
    retry_mode: str = "standard",
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    session: boto3.Session | None = None,
) -> Any:
    """The Rekognition client for the composition root (AWS_REGION, AWS_ENDPOINT_URL).

    The retry mode is set explicitly because the legacy default retries fewer errors;
    ``max_attempts`` counts the first try (botocore's ``max_attempts`` key would not).

    botocore's timeouts bound each connect and each socket read, not a call: a silent endpoint holds a call at
    most ``max_attempts × (connect_timeout + read_timeout)`` plus back-off (5 × 35 s + under 1 s for timeouts
    with the defaults, about 3 minutes; docs/decisions.md, "Deadlines on outside calls"). ``DeadlineClient``
    bounds a whole call, retries included, which also ends an endpoint that drips bytes within each read timeout.
    """
    config = Config(
        retries={"mode": retry_mode, "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return (session or boto3.Session()).client(
        "rekognition", region_name=region, endpoint_url=endpoint_url, config=config
    )


class DeadlineClient:
    """A boto3 client whose every API call ends within ``deadline_s``, whatever the endpoint does.

    botocore's timeouts bound each socket read, and it offers no hook on its sockets (the ones in
    core/http_deadline.py are ``requests``'): an endpoint that drips bytes within each read timeout would hold a
    worker for ever. So each call runs on a small pool of threads, and past the deadline the caller gets a
    transient ``RecognitionError`` (the step retries later) while the call is abandoned: a queued one is cancelled,
    a running one ends at botocore's own timeouts, or holds one of ``threads`` threads while an endpoint drips.
    An abandoned call may still reach AWS; every step that calls Rekognition is already safe to repeat."""

    def __init__(self, client: Any, *, deadline_s: float, threads: int = 8):
        self.client, self.deadline_s = client, deadline_s
        self._operations = frozenset(client.meta.method_to_api_mapping)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="rekognition-call")

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        return functools.partial(self._call, name, attribute) if name in self._operations else attribute

    def _call(self, operation: str, method: Callable[..., Any], **params: Any) -> Any:
        future = self._pool.submit(method, **params)
        try:
            return future.result(timeout=self.deadline_s)
        except FutureTimeout:
            future.cancel()
            logger.warning("rekognition %s abandoned after its %.0f s deadline", operation, self.deadline_s)
            raise RecognitionError(
                f"Amazon Rekognition did not finish answering within {self.deadline_s:g} s", retry=True
            ) from None


def call(client: Any, operation: str, *, tolerate: Collection[str] = (), **params: Any) -> dict[str, Any] | None:
    """One Rekognition call; error codes in ``tolerate`` give None, other failures a RecognitionError.

    botocore has already retried throttling and timeouts (client config) when an error gets here.
    """
    try:
        return getattr(client, operation)(**params)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        if code in tolerate:
            logger.debug("rekognition %s answered %s (expected, tolerated)", operation, code)
            return None
        logger.warning("rekognition %s failed: %s", operation, code)
        raise RecognitionError(_reason(operation, code), retry=code in _RETRYABLE, code=code) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        logger.warning("rekognition %s unreachable: %s", operation, type(exc).__name__)
        raise RecognitionError(f"Amazon Rekognition could not be reached ({type(exc).__name__})", retry=True) from exc
    except NoCredentialsError as exc:
        raise RecognitionError("no AWS credentials are configured for Amazon Rekognition", retry=False) from exc


def _reason(operation: str, code: str) -> str:
    if code in ("ThrottlingException", "ProvisionedThroughputExceededException"):
        return f"Amazon Rekognition is busy ({code}); trying again later"
    if code == "AccessDeniedException":
        return f"access denied to Rekognition {operation}: check the IAM policy"
    if code == "ResourceNotFoundException":
        return f"Rekognition {operation}: the collection or model does not exist"
    if code == "InvalidParameterException":
        return f"Rekognition {operation} refused the request as invalid (InvalidParameterException)"
    if code in ("ImageTooLargeException", "InvalidImageFormatException"):
        return f"Rekognition refused the picture ({code})"
    return f"Rekognition {operation} failed ({code})"


def sendable(data: bytes, *, max_bytes: int = MAX_IMAGE_BYTES) -> image_prep.PreparedImage:
    """``image_prep.prepare`` with the refusal turned into a non-retryable RecognitionError."""
    try:
        return image_prep.prepare(data, max_bytes=max_bytes)
    except image_prep.ImageRejected as exc:
        raise RecognitionError(str(exc), retry=False) from exc


def check_person_id(person_id: str) -> None:
    """Refuse anything but our opaque ids before it reaches AWS (and never a name)."""
    if not isinstance(person_id, str) or not PERSON_ID.fullmatch(person_id):
        raise RecognitionError("a watchlist person id must be 1-128 of A-Z a-z 0-9 _ . - :", retry=False)


def face_quality(size_px: int, sharpness: float, brightness: float, yaw: float, pitch: float) -> float:
    """0-1 usefulness of a face for search and enrollment: sharpness, size and pose weigh most, light a little."""
    size_f = min(1.0, size_px / _GOOD_FACE_PX)
    pose_f = max(0.0, 1.0 - max(abs(yaw), abs(pitch)) / _PROFILE_DEGREES)
    light_f = max(0.0, 1.0 - abs(brightness - 0.5) * 2)
    return round(0.35 * sharpness + 0.3 * size_f + 0.25 * pose_f + 0.1 * light_f, 3)


class RekognitionFaceBackend:
    """FaceBackend on one Rekognition collection; user ids and ExternalImageIds are our person ids."""

    name = "rekognition"

    def __init__(self, client: Any, collection_id: str, *, quality_filter: str = "HIGH", max_users: int = 50):
        if quality_filter not in QUALITY_FILTERS:
            raise ValueError(f"quality_filter must be one of {QUALITY_FILTERS}")
        self._client, self.collection_id = client, collection_id
        self.quality_filter, self.max_users = quality_filter, max_users

    def ensure_collection(self) -> bool:
        """Create the collection if missing; True when it was created now."""
        created = call(
            self._client,
            "create_collection",
            tolerate={"ResourceAlreadyExistsException"},
            CollectionId=self.collection_id,
        )
        if created is not None:
            logger.info(
                "rekognition collection %s created (face model %s)", self.collection_id, created.get("FaceModelVersion")
            )
        else:
            logger.info("rekognition collection %s exists", self.collection_id)
        return created is not None

    def delete_collection(self) -> None:
        """Delete the collection and every face in it (a scratch collection, such as an evaluation's); gone is gone."""
        call(self._client, "delete_collection", tolerate={"ResourceNotFoundException"}, CollectionId=self.collection_id)
        logger.info("rekognition collection %s deleted", self.collection_id)

    def prepare(self) -> str:
        """At start: make sure the collection exists; the state word for /readyz and ``status``.

        A fresh AWS account has no collection, and IndexFaces then refuses every enrollment. An IAM policy
        may allow using a collection but not creating one, so a refused create asks whether it exists."""
        try:
            self.ensure_collection()
            return "ready"
        except RecognitionError as exc:
            if exc.code != "AccessDeniedException":
                return f"collection {self.collection_id} missing: {exc.reason}"
        try:
            call(self._client, "describe_collection", CollectionId=self.collection_id)
        except RecognitionError as exc:
            if exc.code == "ResourceNotFoundException":
                return (
                    f"collection {self.collection_id} missing: access denied to CreateCollection (check the IAM policy)"
                )
            return f"collection {self.collection_id} unknown: {exc.reason}"
        logger.info("rekognition collection %s exists (this role may not create collections)", self.collection_id)
        return "ready"

    def detect(self, image: bytes) -> list[DetectedFace]:
        """Every face Rekognition finds (up to its 100 largest), each with a crop cut from the full-size picture."""
        prepared = sendable(image)
        response = call(self._client, "detect_faces", Image={"Bytes": prepared.data}, Attributes=["DEFAULT"]) or {}
        details = response.get("FaceDetails", [])
        boxes = [_box(detail) for detail in details]
        faces = [
            self._face(prepared, detail, box, boxes[:i] + boxes[i + 1 :])
            for i, (detail, box) in enumerate(zip(details, boxes, strict=False))
        ]
        logger.info("rekognition detect: %d face(s)", len(faces))
        return faces

    def _face(
        self, prepared: image_prep.PreparedImage, detail: dict[str, Any], box: Box, others: list[Box]
    ) -> DetectedFace:
        size_px = image_prep.box_size_px(prepared.image, box)
        quality, pose = detail.get("Quality", {}), detail.get("Pose", {})
        sharpness = _fraction(quality.get("Sharpness", 0.0))
        score = face_quality(
            size_px, sharpness, _fraction(quality.get("Brightness", 50.0)), pose.get("Yaw", 0.0), pose.get("Pitch", 0.0)
        )
        region = image_prep.crop_region(prepared.image, box)
        near = [b for b in others if _overlaps(b, region, prepared.image.size)]
        # Search*ByImage searches the largest face of the crop: neighbours inside the margin are painted over.
        crop = image_prep.crop_face(prepared.image, box, max_bytes=MAX_IMAGE_BYTES, hide=near)
        handle = FaceCrop(crop, image_prep.box_in_region(prepared.image, box, region))
        return DetectedFace(box=box, quality=score, size_px=size_px, sharpness=sharpness, crop=crop, handle=handle)

    def search(
        self, face: DetectedFace, *, person_ids: Collection[str] | None, min_similarity: float
    ) -> list[FaceMatch]:
        """Search this face's crop alone (a whole picture would search only its largest face)."""
        if not 0 <= min_similarity <= 100:
            raise ValueError("min_similarity is 0-100")
        if person_ids is not None and not person_ids:
            return []  # an empty watchlist cannot match: no call
        # No face in the crop is an empty UserMatches; InvalidParameterException is a real error and propagates.
        response = (
            call(
                self._client,
                "search_users_by_image",
                CollectionId=self.collection_id,
                Image={"Bytes": self._crop_of(face)},
                UserMatchThreshold=float(min_similarity),
                MaxUsers=self.max_users,
            )
            or {}
        )
        if not self._searched_this_face(face, response):
            return []
        allowed = set(person_ids) if person_ids is not None else None
        matches = [
            FaceMatch(person_id=m["User"]["UserId"], similarity=float(m["Similarity"]))
            for m in response.get("UserMatches", [])
            if m.get("User", {}).get("UserId")
            and m.get("Similarity") is not None
            and float(m["Similarity"]) >= min_similarity
            and (allowed is None or m["User"]["UserId"] in allowed)
        ]
        return sorted(matches, key=lambda m: m.similarity, reverse=True)

    def enroll(self, person_id: str, face: DetectedFace) -> EnrolledFace:
        """Index the crop, then attach it to the person's user vector (created on first enrollment)."""
        check_person_id(person_id)
        crop = self._crop_of(face)
        try:
            face_id = self._index(person_id, crop)
        except RecognitionError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
            # The collection was deleted (or never created: start-up could not): create it and try once more.
            self.ensure_collection()
            face_id = self._index(person_id, crop)
        try:
            # ConflictException: the user exists already (a second photo of the same person).
            call(
                self._client,
                "create_user",
                tolerate={"ConflictException"},
                CollectionId=self.collection_id,
                UserId=person_id,
            )
            self._associate(person_id, face_id)
        except Exception:
            # A face in no user vector never matches a user search yet would stay in the collection.
            self._delete_quietly(face_id)
            raise
        logger.info("rekognition enrolled face %s for person %s", face_id, person_id)
        return EnrolledFace(backend_face_id=face_id, descriptor=None)

    def forget(self, person_id: str, backend_face_ids: Collection[str]) -> None:
        """Erase in the documented order; anything already gone counts as erased."""
        check_person_id(person_id)
        face_ids = sorted(set(backend_face_ids))
        for chunk in _chunks(face_ids, 100):  # AssociateFaces/DisassociateFaces take at most 100 ids
            call(
                self._client,
                "disassociate_faces",
                tolerate={"ResourceNotFoundException"},
                CollectionId=self.collection_id,
                UserId=person_id,
                FaceIds=chunk,
            )
        call(
            self._client,
            "delete_user",
            tolerate={"ResourceNotFoundException"},
            CollectionId=self.collection_id,
            UserId=person_id,
        )
        for chunk in _chunks(face_ids, 4096):
            response = (
                call(
                    self._client,
                    "delete_faces",
                    tolerate={"ResourceNotFoundException"},
                    CollectionId=self.collection_id,
                    FaceIds=chunk,
                )
                or {}
            )
            stuck = [
                u for u in response.get("UnsuccessfulFaceDeletions", []) if "FACE_NOT_FOUND" not in u.get("Reasons", [])
            ]
            if stuck:
                reasons = sorted({r for u in stuck for r in u.get("Reasons", [])})
                raise RecognitionError(
                    f"erasure incomplete: {len(stuck)} face(s) not deleted ({', '.join(reasons)})", retry=True
                )
        logger.info("rekognition erased person %s (%d face id(s))", person_id, len(face_ids))

    def _index(self, person_id: str, crop: bytes) -> str:
        response = (
            call(
                self._client,
                "index_faces",
                CollectionId=self.collection_id,
                Image={"Bytes": crop},
                ExternalImageId=person_id,
                MaxFaces=1,
                QualityFilter=self.quality_filter,
            )
            or {}
        )
        records = response.get("FaceRecords", [])
        if not records:
            reasons = sorted({r for u in response.get("UnindexedFaces", []) for r in u.get("Reasons", [])})
            raise RecognitionError(
                "no face could be enrolled from this picture ("
                + (", ".join(reasons) or "no face found")
                + "); choose a larger, sharper, frontal face",
                retry=False,
            )
        return str(records[0]["Face"]["FaceId"])

    def _associate(self, person_id: str, face_id: str) -> None:
        # AssociateFaces compares the face with the user's faces (UserMatchThreshold, default 75)
        # and refuses one that does not look like them: a useful check against enrolling a wrong face.
        response = (
            call(self._client, "associate_faces", CollectionId=self.collection_id, UserId=person_id, FaceIds=[face_id])
            or {}
        )
        if face_id in {f.get("FaceId") for f in response.get("AssociatedFaces", [])}:
            return
        reasons = sorted({r for u in response.get("UnsuccessfulFaceAssociations", []) for r in u.get("Reasons", [])})
        raise RecognitionError(
            "this face could not be added to the person ("
            + (", ".join(reasons) or "unknown")
            + "); it may not look like the faces already enrolled",
            retry=False,
        )

    def _delete_quietly(self, face_id: str) -> None:
        try:
            call(
                self._client,
                "delete_faces",
                tolerate={"ResourceNotFoundException"},
                CollectionId=self.collection_id,
                FaceIds=[face_id],
            )
        except RecognitionError:
            logger.error("rekognition face %s left unassociated in %s: delete it by hand", face_id, self.collection_id)

    def _searched_this_face(self, face: DetectedFace, response: dict[str, Any]) -> bool:
        """Whether the face Rekognition searched (``SearchedFace``) is the one this crop was cut around."""
        expected = face.handle.face_box if isinstance(face.handle, FaceCrop) else None
        raw = response.get("SearchedFace", {}).get("FaceDetail", {}).get("BoundingBox")
        if expected is None or not raw:
            return True  # a stored crop (geometry unknown) or no face searched at all (no matches either)
        searched = image_prep.clamp_box(
            raw.get("Left", 0.0), raw.get("Top", 0.0), raw.get("Width", 0.0), raw.get("Height", 0.0)
        )
        if _iou(expected, searched) >= SAME_FACE_IOU:
            return True
        logger.warning(
            "rekognition searched another face than the one cropped (overlap %.2f): its matches are "
            "not this face's and are dropped",
            _iou(expected, searched),
        )
        return False

    @staticmethod
    def _crop_of(face: DetectedFace) -> bytes:
        # Our own detect puts the crop in ``handle``; a face from elsewhere (stored, other backend) has only ``crop``.
        data: bytes | bytearray
        if isinstance(face.handle, FaceCrop):
            data = face.handle.data
        else:
            data = face.handle if isinstance(face.handle, (bytes, bytearray)) else face.crop
        try:
            return image_prep.prepare_crop(bytes(data), max_bytes=MAX_IMAGE_BYTES)
        except image_prep.ImageRejected as exc:
            raise RecognitionError(f"face crop unusable: {exc}", retry=False) from exc


@dataclass(frozen=True)
class FaceCrop:
    """What ``detect`` keeps in memory for ``search``: the crop sent, and where in it the detected face is."""

    data: bytes
    face_box: Box


def _box(detail: dict[str, Any]) -> Box:
    raw = detail.get("BoundingBox", {})
    return image_prep.clamp_box(
        raw.get("Left", 0.0), raw.get("Top", 0.0), raw.get("Width", 0.0), raw.get("Height", 0.0)
    )


def _overlaps(box: Box, region: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    left, top, right, bottom = region
    return box[0] * size[0] < right and box[2] * size[0] > left and box[1] * size[1] < bottom and box[3] * size[1] > top


def _iou(a: Box, b: Box) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _fraction(percent: float) -> float:
    return round(min(100.0, max(0.0, float(percent))) / 100.0, 3)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
