"""Rekognition backend and product counter against a real boto3 client wrapped in botocore's Stubber.

The Stubber validates every request and response against Rekognition's service model, and
``expected_params`` pins what each call sends; no network is used (the endpoint is a .test host).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from PIL import Image, ImageDraw

from tests.real_parts import require_or_skip
from vision.rekognition import MAX_IMAGE_BYTES, RecognitionError, RekognitionFaceBackend, make_client
from vision.rekognition_labels import MAX_CUSTOM_LABELS_IMAGE_BYTES, RekognitionProductCounter
from vision.types import DetectedFace, EnrolledFace, FaceMatch, ProductCount

COLLECTION = "flp-watchlist"
ENDPOINT = "https://rekognition.test"
FACE_1 = "11111111-1111-4111-8111-111111111111"
FACE_2 = "22222222-2222-4222-8222-222222222222"
MODEL_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/shelf/version/shelf.2026-01-01/1700000000000"


# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_session() -> boto3.Session:
    """Dummy credentials, never the machine's; one session so the service model is loaded once."""
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")


@pytest.fixture
def rek(aws_session: boto3.Session) -> Any:
    return make_client("us-east-1", ENDPOINT, max_attempts=4, connect_timeout=2, read_timeout=7, session=aws_session)


@pytest.fixture
def stub(rek: Any) -> Iterator[Stubber]:
    with Stubber(rek) as stubber:
        yield stubber


@pytest.fixture
def calls(rek: Any) -> list[str]:
    """Operation names in the order the code called them (the Stubber answers each)."""
    seen: list[str] = []
    # before-call is answered by the Stubber (first response wins), so listen one step earlier.
    rek.meta.events.register("before-parameter-build.rekognition", lambda model, **_: seen.append(model.name))
    return seen


@pytest.fixture
def backend(rek: Any) -> RekognitionFaceBackend:
    return RekognitionFaceBackend(rek, COLLECTION)


def encode(image: Image.Image, fmt: str = "JPEG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def checkout_picture() -> bytes:
    """640x480 with two differently drawn 'faces': left at x 80-200, right at x 420-540."""
    image = Image.new("RGB", (640, 480), (90, 110, 90))
    draw = ImageDraw.Draw(image)
    draw.ellipse((80, 120, 200, 280), fill=(230, 190, 160))
    draw.ellipse((110, 170, 130, 185), fill="black")
    draw.ellipse((420, 100, 540, 260), fill=(120, 80, 60))
    draw.rectangle((450, 200, 510, 215), fill="red")
    return encode(image)


def detail(
    left: float,
    top: float,
    width: float,
    height: float,
    *,
    sharpness: float = 80.0,
    brightness: float = 55.0,
    yaw: float = 0.0,
    pitch: float = 0.0,
) -> dict[str, Any]:
    return {
        "BoundingBox": {"Left": left, "Top": top, "Width": width, "Height": height},
        "Confidence": 99.9,
        "Pose": {"Roll": 0.0, "Yaw": yaw, "Pitch": pitch},
        "Quality": {"Brightness": brightness, "Sharpness": sharpness},
    }


def user_match(user_id: str, similarity: float) -> dict[str, Any]:
    return {"Similarity": similarity, "User": {"UserId": user_id, "UserStatus": "ACTIVE"}}


def stored_face() -> DetectedFace:
    """A face as stored after detection: the crop survives, the in-memory handle does not."""
    image = Image.new("RGB", (160, 200), (200, 170, 150))
    ImageDraw.Draw(image).ellipse((30, 30, 130, 170), fill=(230, 190, 160))
    return DetectedFace(box=(0.1, 0.1, 0.4, 0.5), quality=0.9, size_px=120, sharpness=0.8, crop=encode(image))


class SendableImage:
    """Matches Image.Bytes that decode as JPEG/PNG within ``max_bytes``; keeps what it saw for later checks."""

    def __init__(self, max_bytes: int = MAX_IMAGE_BYTES):
        self.max_bytes, self.seen = max_bytes, []

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, bytes):
            return False
        self.seen.append(other)
        image = Image.open(io.BytesIO(other))
        return len(other) <= self.max_bytes and image.format in ("JPEG", "PNG")

    def image(self) -> Image.Image:
        return Image.open(io.BytesIO(self.seen[-1]))


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --- detect and search -----------------------------------------------------------------------------


def test_two_faces_each_searched_with_its_own_crop(
    backend: RekognitionFaceBackend, stub: Stubber, calls: list[str]
) -> None:
    picture = checkout_picture()
    stub.add_response(
        "detect_faces",
        {"FaceDetails": [detail(0.125, 0.25, 0.1875, 0.3333), detail(0.65625, 0.2083, 0.1875, 0.3333)]},
        {"Image": {"Bytes": picture}, "Attributes": ["DEFAULT"]},
    )
    faces = backend.detect(picture)

    assert [f.box for f in faces] == [
        pytest.approx((0.125, 0.25, 0.3125, 0.5833)),
        pytest.approx((0.65625, 0.2083, 0.84375, 0.5416)),
    ]
    assert faces[0].crop != faces[1].crop
    for face in faces:
        crop = decoded(face.crop)
        assert crop.format == "JPEG" and min(crop.size) >= 80
        assert face.handle.data == face.crop and face.size_px == 120 and face.sharpness == 0.8 and 0 < face.quality <= 1
    # The left face (120x160 px in a crop with an 80 px margin each way) sits in the middle of its crop.
    assert faces[0].handle.face_box == pytest.approx((80 / 280, 80 / 320, 200 / 280, 240 / 320), abs=0.01)
    stub.add_response(
        "search_users_by_image",
        {"UserMatches": [user_match("P-7", 97.4)]},
        {"CollectionId": COLLECTION, "Image": {"Bytes": faces[0].crop}, "UserMatchThreshold": 80.0, "MaxUsers": 50},
    )
    stub.add_response(
        "search_users_by_image",
        {"UserMatches": []},
        {"CollectionId": COLLECTION, "Image": {"Bytes": faces[1].crop}, "UserMatchThreshold": 80.0, "MaxUsers": 50},
    )
    results = [backend.search(face, person_ids=None, min_similarity=80) for face in faces]

    assert results == [[FaceMatch("P-7", 97.4)], []]
    assert calls == ["DetectFaces", "SearchUsersByImage", "SearchUsersByImage"]
    stub.assert_no_pending_responses()


def test_no_face_means_no_search(backend: RekognitionFaceBackend, stub: Stubber, calls: list[str]) -> None:
    picture = checkout_picture()
    stub.add_response("detect_faces", {"FaceDetails": []}, {"Image": {"Bytes": picture}, "Attributes": ["DEFAULT"]})
    assert backend.detect(picture) == []
    assert calls == ["DetectFaces"]
    stub.assert_no_pending_responses()


def test_search_with_empty_answer_is_no_match(backend: RekognitionFaceBackend, stub: Stubber) -> None:
    face = stored_face()
    stub.add_response(
        "search_users_by_image",
        {"UserMatches": [], "FaceModelVersion": "7.0"},
        {"CollectionId": COLLECTION, "Image": {"Bytes": face.crop}, "UserMatchThreshold": 90.0, "MaxUsers": 50},
    )
    assert backend.search(face, person_ids=None, min_similarity=90) == []
    stub.assert_no_pending_responses()


def test_invalid_parameter_is_an_error_not_a_silent_no_match(backend: RekognitionFaceBackend, stub: Stubber) -> None:
    # SearchUsersByImage answers "no face" with an empty list; InvalidParameterException means the request was wrong.
    face = stored_face()
    stub.add_client_error(
        "search_users_by_image",
        service_error_code="InvalidParameterException",
        service_message="Request has invalid parameters",
        http_status_code=400,
        expected_params={
            "CollectionId": COLLECTION,
            "Image": {"Bytes": face.crop},
            "UserMatchThreshold": 90.0,
            "MaxUsers": 50,
        },
    )
    with pytest.raises(RecognitionError, match="InvalidParameterException") as refused:
        backend.search(face, person_ids=None, min_similarity=90)
    assert refused.value.retry is False and refused.value.code == "InvalidParameterException"
    stub.assert_no_pending_responses()


def searched_face(left: float, top: float, width: float, height: float) -> dict[str, Any]:
    return {"FaceDetail": {"BoundingBox": {"Left": left, "Top": top, "Width": width, "Height": height}}}


def test_matches_of_a_neighbour_searched_instead_of_the_crop_face_are_dropped(
    backend: RekognitionFaceBackend, stub: Stubber
) -> None:
    picture = checkout_picture()
    stub.add_response(
        "detect_faces",
        {"FaceDetails": [detail(0.125, 0.25, 0.1875, 0.3333)]},
        {"Image": {"Bytes": picture}, "Attributes": ["DEFAULT"]},
    )
    [face] = backend.detect(picture)
    expected = {"CollectionId": COLLECTION, "Image": {"Bytes": face.crop}, "UserMatchThreshold": 80.0, "MaxUsers": 50}
    x0, y0, x1, y1 = face.handle.face_box
    # Rekognition reports the face it searched, in the crop's coordinates: first ours (a slightly different box),
    # then one in the crop's corner (a bigger neighbour in the margin).
    stub.add_response(
        "search_users_by_image",
        {
            "UserMatches": [user_match("P-7", 97.4)],
            "SearchedFace": searched_face(x0 + 0.02, y0, x1 - x0, y1 - y0 - 0.03),
        },
        expected,
    )
    stub.add_response(
        "search_users_by_image",
        {"UserMatches": [user_match("P-9", 99.0)], "SearchedFace": searched_face(0.0, 0.0, 0.3, 0.3)},
        expected,
    )

    assert backend.search(face, person_ids=None, min_similarity=80) == [FaceMatch("P-7", 97.4)]
    assert backend.search(face, person_ids=None, min_similarity=80) == []
    stub.assert_no_pending_responses()


def test_a_neighbour_inside_the_margin_is_painted_over_in_the_crop(
    backend: RekognitionFaceBackend, stub: Stubber
) -> None:
    # Two faces side by side: the right one (bigger) reaches into the left one's margin.
    image = Image.new("RGB", (640, 480), (90, 110, 90))
    draw = ImageDraw.Draw(image)
    draw.ellipse((100, 150, 180, 250), fill=(230, 190, 160))
    draw.rectangle((200, 100, 360, 300), fill=(250, 20, 20))
    picture = encode(image)
    stub.add_response(
        "detect_faces",
        {
            "FaceDetails": [
                detail(100 / 640, 150 / 480, 80 / 640, 100 / 480),
                detail(200 / 640, 100 / 480, 160 / 640, 200 / 480),
            ]
        },
        {"Image": {"Bytes": picture}, "Attributes": ["DEFAULT"]},
    )
    small, big = backend.detect(picture)

    crop = decoded(small.crop).convert("RGB")
    x0, y0, x1, y1 = small.handle.face_box
    neighbour_x = int((x1 + (1 - x1) * 0.7) * crop.width)  # in the margin right of the face, inside the red box
    red, green, blue = crop.getpixel((neighbour_x, crop.height // 2))
    assert abs(red - 128) < 20 and abs(green - 128) < 20 and abs(blue - 128) < 20  # painted grey, no longer red
    centre = crop.getpixel((int((x0 + x1) / 2 * crop.width), int((y0 + y1) / 2 * crop.height)))
    assert centre[0] > 200 and centre[1] > 160  # the face itself is untouched
    big_crop = decoded(big.crop).convert("RGB")
    assert big_crop.getpixel((big_crop.width // 2, big_crop.height // 2))[0] > 200  # the neighbour's own crop keeps it
    stub.assert_no_pending_responses()


def test_person_ids_restrict_matches_and_an_empty_watchlist_makes_no_call(
    backend: RekognitionFaceBackend, stub: Stubber, calls: list[str]
) -> None:
    face = stored_face()
    stub.add_response(
        "search_users_by_image",
        {"UserMatches": [user_match("P-9", 99.5), user_match("P-7", 96.0), user_match("P-3", 91.0)]},
        {"CollectionId": COLLECTION, "Image": {"Bytes": face.crop}, "UserMatchThreshold": 90.0, "MaxUsers": 50},
    )
    assert backend.search(face, person_ids={"P-3", "P-7"}, min_similarity=90) == [
        FaceMatch("P-7", 96.0),
        FaceMatch("P-3", 91.0),
    ]
    assert backend.search(face, person_ids=[], min_similarity=90) == []
    assert calls == ["SearchUsersByImage"]
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("similarity", [0.0, 80.0, 99.25, 100.0])
def test_similarity_and_threshold_pass_through_on_the_0_to_100_scale(
    backend: RekognitionFaceBackend, stub: Stubber, similarity: float
) -> None:
    face = stored_face()
    stub.add_response(
        "search_users_by_image",
        {"UserMatches": [user_match("P-1", similarity)]},
        {"CollectionId": COLLECTION, "Image": {"Bytes": face.crop}, "UserMatchThreshold": similarity, "MaxUsers": 50},
    )
    assert backend.search(face, person_ids=None, min_similarity=similarity) == [FaceMatch("P-1", similarity)]
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("threshold", [-1, 100.5])
def test_search_refuses_a_threshold_off_the_scale(
    backend: RekognitionFaceBackend, stub: Stubber, threshold: float
) -> None:
    with pytest.raises(ValueError):
        backend.search(stored_face(), person_ids=None, min_similarity=threshold)
    stub.assert_no_pending_responses()


def test_picture_over_5_mb_is_downscaled_before_the_call(backend: RekognitionFaceBackend, stub: Stubber) -> None:
    noise = np.random.default_rng(7).integers(0, 256, (2400, 3200, 3), dtype=np.uint8)
    picture = encode(Image.fromarray(noise), quality=95)
    assert len(picture) > MAX_IMAGE_BYTES
    sent = SendableImage()
    stub.add_response(
        "detect_faces",
        {"FaceDetails": [detail(0.5, 0.5, 0.02, 0.03)]},
        {"Image": {"Bytes": sent}, "Attributes": ["DEFAULT"]},
    )
    [face] = backend.detect(picture)

    assert len(sent.seen[-1]) <= MAX_IMAGE_BYTES and sent.image().format == "JPEG"
    assert sent.image().width < 3200 and sent.image().width / sent.image().height == pytest.approx(4 / 3, rel=0.01)
    # The box is normalised, so the crop comes from the full-resolution picture: a 64 px face side.
    assert face.size_px == 64 and min(decoded(face.crop).size) >= 80
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7 not a picture", b"\xff\xd8\xff\xe0 truncated jpeg"])
def test_non_image_is_refused_without_any_call(
    backend: RekognitionFaceBackend, stub: Stubber, calls: list[str], data: bytes
) -> None:
    with pytest.raises(RecognitionError) as refused:
        backend.detect(data)
    assert refused.value.retry is False and "picture" in refused.value.reason
    assert calls == []
    stub.assert_no_pending_responses()


def test_other_formats_and_exif_rotation_are_sent_as_upright_jpeg(
    backend: RekognitionFaceBackend, stub: Stubber
) -> None:
    image = Image.new("RGB", (300, 200), (90, 110, 90))
    exif = image.getexif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    sent = SendableImage()
    stub.add_response("detect_faces", {"FaceDetails": []}, {"Image": {"Bytes": sent}, "Attributes": ["DEFAULT"]})
    stub.add_response("detect_faces", {"FaceDetails": []}, {"Image": {"Bytes": sent}, "Attributes": ["DEFAULT"]})

    backend.detect(encode(image, exif=exif))
    assert sent.image().size == (200, 300) and sent.image().getexif().get(0x0112) in (None, 1)
    backend.detect(encode(image, "WEBP"))
    assert sent.image().format == "JPEG" and sent.image().size == (300, 200)
    stub.assert_no_pending_responses()


def test_faces_cut_by_the_edge_are_clamped_and_small_crops_upscaled(
    backend: RekognitionFaceBackend, stub: Stubber
) -> None:
    picture = checkout_picture()
    stub.add_response(
        "detect_faces",
        {"FaceDetails": [detail(-0.02, 0.9, 0.05, 0.2, yaw=80.0)]},
        {"Image": {"Bytes": picture}, "Attributes": ["DEFAULT"]},
    )
    [face] = backend.detect(picture)
    assert face.box == pytest.approx((0.0, 0.9, 0.03, 1.0))
    assert face.size_px == 19 and min(decoded(face.crop).size) >= 80
    assert face.quality < 0.5  # tiny and in profile
    stub.assert_no_pending_responses()


def test_real_photo_crop_keeps_the_face(backend: RekognitionFaceBackend, stub: Stubber) -> None:
    try:
        from matplotlib import cbook
    except ImportError:
        require_or_skip("matplotlib is missing: its sample photo is the real face (requirements.txt)")
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        picture = f.read()
    stub.add_response(
        "detect_faces",
        {"FaceDetails": [detail(0.3, 0.17, 0.42, 0.4)]},
        {"Image": {"Bytes": picture}, "Attributes": ["DEFAULT"]},
    )
    [face] = backend.detect(picture)
    crop = decoded(face.crop)
    assert crop.format == "JPEG" and crop.size[0] < decoded(picture).size[0]
    stub.assert_no_pending_responses()


# --- enroll and forget -----------------------------------------------------------------------------


def index_params(crop: bytes, person_id: str = "P-7") -> dict[str, Any]:
    return {
        "CollectionId": COLLECTION,
        "Image": {"Bytes": crop},
        "ExternalImageId": person_id,
        "MaxFaces": 1,
        "QualityFilter": "HIGH",
    }


def indexed(face_id: str) -> dict[str, Any]:
    return {
        "FaceRecords": [
            {
                "Face": {"FaceId": face_id, "ExternalImageId": "P-7", "Confidence": 99.9},
                "FaceDetail": {"Confidence": 99.9},
            }
        ],
        "FaceModelVersion": "7.0",
    }


def test_enroll_indexes_creates_the_user_and_associates(
    backend: RekognitionFaceBackend, stub: Stubber, calls: list[str]
) -> None:
    face = stored_face()
    stub.add_response("index_faces", indexed(FACE_1), index_params(face.crop))
    stub.add_response("create_user", {}, {"CollectionId": COLLECTION, "UserId": "P-7"})
    stub.add_response(
        "associate_faces",
        {"AssociatedFaces": [{"FaceId": FACE_1}], "UserStatus": "UPDATING"},
        {"CollectionId": COLLECTION, "UserId": "P-7", "FaceIds": [FACE_1]},
    )
    assert backend.enroll("P-7", face) == EnrolledFace(backend_face_id=FACE_1, descriptor=None)
    assert calls == ["IndexFaces", "CreateUser", "AssociateFaces"]
    stub.assert_no_pending_responses()


def test_enroll_a_second_face_when_the_user_exists(backend: RekognitionFaceBackend, stub: Stubber) -> None:
    face = stored_face()
    stub.add_response("index_faces", indexed(FACE_2), index_params(face.crop))
    stub.add_client_error(
        "create_user",
        service_error_code="ConflictException",
        http_status_code=400,
        expected_params={"CollectionId": COLLECTION, "UserId": "P-7"},
    )
    stub.add_response(
        "associate_faces",
        {"AssociatedFaces": [{"FaceId": FACE_2}], "UserStatus": "ACTIVE"},
        {"CollectionId": COLLECTION, "UserId": "P-7", "FaceIds": [FACE_2]},
    )
    assert backend.enroll("P-7", face).backend_face_id == FACE_2
    stub.assert_no_pending_responses()


def test_enroll_refused_when_no_face_is_indexed(
    backend: RekognitionFaceBackend, stub: Stubber, calls: list[str]
) -> None:
    face = stored_face()
    stub.add_response(
        "index_faces",
        {
            "FaceRecords": [],
            "UnindexedFaces": [
                {"Reasons": ["LOW_SHARPNESS", "SMALL_BOUNDING_BOX"], "FaceDetail": {"Confidence": 90.0}}
            ],
        },
        index_params(face.crop),
    )
    with pytest.raises(RecognitionError) as refused:
        backend.enroll("P-7", face)
    assert refused.value.retry is False
    assert "LOW_SHARPNESS" in refused.value.reason and "SMALL_BOUNDING_BOX" in refused.value.reason
    assert calls == ["IndexFaces"]  # no user, no association
    stub.assert_no_pending_responses()


def test_enroll_refused_association_removes_the_orphan_face(
    backend: RekognitionFaceBackend, stub: Stubber, calls: list[str]
) -> None:
    face = stored_face()
    stub.add_response("index_faces", indexed(FACE_2), index_params(face.crop))
    stub.add_client_error("create_user", service_error_code="ConflictException", http_status_code=400)
    stub.add_response(
        "associate_faces",
        {
            "AssociatedFaces": [],
            "UnsuccessfulFaceAssociations": [
                {"FaceId": FACE_2, "UserId": "P-7", "Confidence": 41.0, "Reasons": ["LOW_MATCH_CONFIDENCE"]}
            ],
        },
        {"CollectionId": COLLECTION, "UserId": "P-7", "FaceIds": [FACE_2]},
    )
    stub.add_response("delete_faces", {"DeletedFaces": [FACE_2]}, {"CollectionId": COLLECTION, "FaceIds": [FACE_2]})
    with pytest.raises(RecognitionError, match="LOW_MATCH_CONFIDENCE"):
        backend.enroll("P-7", face)
    assert calls == ["IndexFaces", "CreateUser", "AssociateFaces", "DeleteFaces"]
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("person_id", ["Ana Souza", "", "P/7", "x" * 129])
def test_enroll_refuses_anything_but_an_opaque_id(
    backend: RekognitionFaceBackend, stub: Stubber, calls: list[str], person_id: str
) -> None:
    with pytest.raises(RecognitionError):
        backend.enroll(person_id, stored_face())
    assert calls == []
    stub.assert_no_pending_responses()


def test_forget_disassociates_then_deletes_user_then_faces(
    backend: RekognitionFaceBackend, stub: Stubber, calls: list[str]
) -> None:
    stub.add_response(
        "disassociate_faces",
        {"DisassociatedFaces": [{"FaceId": FACE_1}, {"FaceId": FACE_2}]},
        {"CollectionId": COLLECTION, "UserId": "P-7", "FaceIds": [FACE_1, FACE_2]},
    )
    stub.add_response("delete_user", {}, {"CollectionId": COLLECTION, "UserId": "P-7"})
    stub.add_response(
        "delete_faces", {"DeletedFaces": [FACE_1, FACE_2]}, {"CollectionId": COLLECTION, "FaceIds": [FACE_1, FACE_2]}
    )
    backend.forget("P-7", [FACE_2, FACE_1])
    assert calls == ["DisassociateFaces", "DeleteUser", "DeleteFaces"]
    stub.assert_no_pending_responses()


def test_forget_tolerates_what_is_already_gone(backend: RekognitionFaceBackend, stub: Stubber) -> None:
    stub.add_client_error("disassociate_faces", service_error_code="ResourceNotFoundException", http_status_code=400)
    stub.add_client_error("delete_user", service_error_code="ResourceNotFoundException", http_status_code=400)
    stub.add_response(
        "delete_faces",
        {"UnsuccessfulFaceDeletions": [{"FaceId": FACE_1, "Reasons": ["FACE_NOT_FOUND"]}]},
        {"CollectionId": COLLECTION, "FaceIds": [FACE_1]},
    )
    backend.forget("P-7", [FACE_1])
    stub.assert_no_pending_responses()


def test_forget_reports_faces_that_could_not_be_deleted(backend: RekognitionFaceBackend, stub: Stubber) -> None:
    stub.add_response("disassociate_faces", {"DisassociatedFaces": []})
    stub.add_response("delete_user", {})
    stub.add_response(
        "delete_faces",
        {
            "UnsuccessfulFaceDeletions": [
                {"FaceId": FACE_1, "UserId": "P-7", "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]}
            ]
        },
    )
    with pytest.raises(RecognitionError, match="ASSOCIATED_TO_AN_EXISTING_USER") as incomplete:
        backend.forget("P-7", [FACE_1])
    assert incomplete.value.retry is True
    stub.assert_no_pending_responses()


def test_ensure_collection_creates_once(backend: RekognitionFaceBackend, stub: Stubber) -> None:
    stub.add_response("create_collection", {"StatusCode": 200, "FaceModelVersion": "7.0"}, {"CollectionId": COLLECTION})
    stub.add_client_error(
        "create_collection",
        service_error_code="ResourceAlreadyExistsException",
        http_status_code=400,
        expected_params={"CollectionId": COLLECTION},
    )
    assert backend.ensure_collection() is True
    assert backend.ensure_collection() is False
    stub.assert_no_pending_responses()


def test_delete_collection_deletes_it_and_a_missing_one_counts_as_deleted(
    backend: RekognitionFaceBackend, stub: Stubber
) -> None:
    stub.add_response("delete_collection", {"StatusCode": 200}, {"CollectionId": COLLECTION})
    stub.add_client_error(
        "delete_collection",
        service_error_code="ResourceNotFoundException",
        expected_params={"CollectionId": COLLECTION},
    )
    stub.add_client_error(
        "delete_collection", service_error_code="AccessDeniedException", expected_params={"CollectionId": COLLECTION}
    )
    backend.delete_collection()
    backend.delete_collection()
    with pytest.raises(RecognitionError) as refused:
        backend.delete_collection()
    assert refused.value.code == "AccessDeniedException"
    stub.assert_no_pending_responses()


def test_prepare_creates_the_collection_of_a_fresh_account(backend: RekognitionFaceBackend, stub: Stubber) -> None:
    stub.add_response("create_collection", {"StatusCode": 200, "FaceModelVersion": "7.0"}, {"CollectionId": COLLECTION})
    stub.add_client_error(
        "create_collection",
        service_error_code="ResourceAlreadyExistsException",
        http_status_code=400,
        expected_params={"CollectionId": COLLECTION},
    )
    assert backend.prepare() == "ready"
    assert backend.prepare() == "ready"  # the next start finds it
    stub.assert_no_pending_responses()


def test_prepare_when_the_role_may_not_create_collections(backend: RekognitionFaceBackend, stub: Stubber) -> None:
    for exists in (True, False):
        stub.add_client_error(
            "create_collection",
            service_error_code="AccessDeniedException",
            http_status_code=400,
            expected_params={"CollectionId": COLLECTION},
        )
        if exists:
            stub.add_response(
                "describe_collection", {"FaceCount": 3, "FaceModelVersion": "7.0"}, {"CollectionId": COLLECTION}
            )
        else:
            stub.add_client_error(
                "describe_collection",
                service_error_code="ResourceNotFoundException",
                http_status_code=400,
                expected_params={"CollectionId": COLLECTION},
            )
    assert backend.prepare() == "ready"
    assert (
        backend.prepare()
        == f"collection {COLLECTION} missing: access denied to CreateCollection (check the IAM policy)"
    )
    stub.assert_no_pending_responses()


def test_prepare_reports_an_unreachable_service(backend: RekognitionFaceBackend, stub: Stubber) -> None:
    stub.add_client_error(
        "create_collection",
        service_error_code="ThrottlingException",
        http_status_code=400,
        expected_params={"CollectionId": COLLECTION},
    )
    assert backend.prepare().startswith(f"collection {COLLECTION} missing: Amazon Rekognition is busy")
    stub.assert_no_pending_responses()


def test_enroll_into_a_deleted_collection_creates_it_and_indexes_again(
    backend: RekognitionFaceBackend, stub: Stubber, calls: list[str]
) -> None:
    face = stored_face()
    index = {
        "CollectionId": COLLECTION,
        "Image": {"Bytes": face.crop},
        "ExternalImageId": "P-7",
        "MaxFaces": 1,
        "QualityFilter": "HIGH",
    }
    stub.add_client_error(
        "index_faces", service_error_code="ResourceNotFoundException", http_status_code=400, expected_params=index
    )
    stub.add_response("create_collection", {"StatusCode": 200}, {"CollectionId": COLLECTION})
    stub.add_response("index_faces", {"FaceRecords": [{"Face": {"FaceId": FACE_1}}]}, index)
    stub.add_response("create_user", {}, {"CollectionId": COLLECTION, "UserId": "P-7"})
    stub.add_response(
        "associate_faces",
        {"AssociatedFaces": [{"FaceId": FACE_1}]},
        {"CollectionId": COLLECTION, "UserId": "P-7", "FaceIds": [FACE_1]},
    )
    assert backend.enroll("P-7", face) == EnrolledFace(backend_face_id=FACE_1, descriptor=None)
    assert calls == ["IndexFaces", "CreateCollection", "IndexFaces", "CreateUser", "AssociateFaces"]
    stub.assert_no_pending_responses()


# --- products --------------------------------------------------------------------------------------


def instance(confidence: float = 95.0) -> dict[str, Any]:
    return {"BoundingBox": {"Left": 0.1, "Top": 0.1, "Width": 0.1, "Height": 0.2}, "Confidence": confidence}


def test_detect_labels_counts_the_chosen_label_only(rek: Any, stub: Stubber) -> None:
    picture = checkout_picture()
    stub.add_response(
        "detect_labels",
        {
            "Labels": [
                {
                    "Name": "Bottle",
                    "Confidence": 98.0,
                    "Instances": [instance(), instance(), instance(64.0)],
                    "Parents": [{"Name": "Beverage"}],
                },
                {"Name": "Beverage", "Confidence": 98.0, "Instances": [], "Parents": [{"Name": "Food"}]},
                {
                    "Name": "Wine",
                    "Confidence": 80.0,
                    "Instances": [],
                    "Parents": [{"Name": "Alcohol"}, {"Name": "Beverage"}],
                },
            ]
        },
        {"Image": {"Bytes": picture}, "MinConfidence": 70.0, "Features": ["GENERAL_LABELS"]},
    )
    counter = RekognitionProductCounter(rek, countable_labels=["Bottle", "Can"])

    counts = counter.count(picture, ["Bottle", "Beverage", "Wine", "Can", "Whisky 1L", "Bottle"])
    assert counts == [
        ProductCount("Bottle", 2, 98.0),
        ProductCount("Beverage", None, 98.0),
        ProductCount("Wine", None, 80.0),
        ProductCount("Can", 0),
        ProductCount("Whisky 1L", None),
    ]
    stub.assert_no_pending_responses()


def test_custom_labels_count_boxes_by_name_within_4_mb(rek: Any, stub: Stubber) -> None:
    picture = checkout_picture()
    sent = SendableImage(MAX_CUSTOM_LABELS_IMAGE_BYTES)
    box = {"BoundingBox": {"Left": 0.2, "Top": 0.2, "Width": 0.1, "Height": 0.1}}
    stub.add_response(
        "detect_custom_labels",
        {
            "CustomLabels": [
                {"Name": "whisky-1l", "Confidence": 91.0, "Geometry": box},
                {"Name": "whisky-1l", "Confidence": 88.0, "Geometry": box},
                {"Name": "gift-box", "Confidence": 75.0},
            ]
        },
        {"ProjectVersionArn": MODEL_ARN, "Image": {"Bytes": sent}, "MinConfidence": 60.0},
    )
    counter = RekognitionProductCounter(rek, min_confidence=60, custom_model_arn=MODEL_ARN)

    assert counter.count(picture, ["whisky-1l", "gift-box", "razor"]) == [
        ProductCount("whisky-1l", 2, 88.0),
        ProductCount("gift-box", None),
        ProductCount("razor", 0),
    ]
    assert sent.seen == [picture]
    stub.assert_no_pending_responses()


def test_no_labels_asked_makes_no_call(rek: Any, stub: Stubber) -> None:
    assert RekognitionProductCounter(rek).count(checkout_picture(), []) == []
    stub.assert_no_pending_responses()


# --- throttling and client configuration ------------------------------------------------------------


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException"])
def test_throttling_that_outlasts_botocore_retries_is_a_retryable_error(
    backend: RekognitionFaceBackend, stub: Stubber, code: str
) -> None:
    stub.add_client_error("search_users_by_image", service_error_code=code, http_status_code=400)
    with pytest.raises(RecognitionError) as busy:
        backend.search(stored_face(), person_ids=None, min_similarity=90)
    assert busy.value.retry is True and code in busy.value.reason
    stub.assert_no_pending_responses()


def test_client_sets_standard_retries_timeouts_region_and_endpoint(rek: Any) -> None:
    config = rek.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert (config.connect_timeout, config.read_timeout) == (2, 7)
    assert rek.meta.region_name == "us-east-1" and rek.meta.endpoint_url == ENDPOINT


class _Body:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def test_throttled_call_is_retried_by_the_client(
    rek: Any, backend: RekognitionFaceBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the Stubber: answers at the HTTP layer, so botocore's own retry handler runs."""
    answers = [
        (400, {"__type": "ThrottlingException", "message": "Rate exceeded"}),
        (400, {"__type": "ProvisionedThroughputExceededException", "message": "slow down"}),
        (200, {"FaceDetails": []}),
    ]
    sent: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.url)
        status, body = answers.pop(0)
        return AWSResponse(
            request.url, status, {"Content-Type": "application/x-amz-json-1.1"}, _Body(json.dumps(body).encode())
        )

    sleeps: list[float] = []
    monkeypatch.setattr("botocore.endpoint.time.sleep", sleeps.append)
    rek.meta.events.register("before-send.rekognition.DetectFaces", answer)
    assert backend.detect(checkout_picture()) == []
    assert sent == [ENDPOINT + "/"] * 3 and len(sleeps) == 2


def test_a_small_stored_crop_is_upscaled_before_search(backend: RekognitionFaceBackend, stub: Stubber) -> None:
    tiny = DetectedFace(
        box=(0.1, 0.1, 0.2, 0.2),
        quality=0.5,
        size_px=30,
        sharpness=0.6,
        crop=encode(Image.new("RGB", (40, 50), (230, 190, 160)), "PNG"),
    )
    sent = SendableImage()
    stub.add_response(
        "search_users_by_image",
        {"UserMatches": []},
        {"CollectionId": COLLECTION, "Image": {"Bytes": sent}, "UserMatchThreshold": 90.0, "MaxUsers": 50},
    )
    assert backend.search(tiny, person_ids=None, min_similarity=90) == []
    assert min(sent.image().size) >= 80
    stub.assert_no_pending_responses()
