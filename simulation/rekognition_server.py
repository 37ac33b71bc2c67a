"""A stand-in for Amazon Rekognition's face collections on 127.0.0.1, seeing with the local dlib models.

It speaks the AWS JSON 1.1 protocol that boto3 uses (``POST /`` with ``X-Amz-Target:
RekognitionService.<Operation>``), so the real client and ``vision/rekognition.py`` are what talk to
it (``AWS_ENDPOINT_URL``). It refuses what Rekognition refuses: an unsigned request, an operation
on a collection that does not exist (``ResourceNotFoundException``: a fresh account has none),
images over 5 MB or that are not JPEG/PNG, a second collection or user of the same id. Like
Rekognition, ``SearchUsersByImage`` searches only the largest face of the image, answers "no face"
with an empty list and names the face it searched (``SearchedFace``). Faces are found and compared
by the local backend's models, so the same person matches across pictures and others do not.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from vision import image_prep
from vision.local_faces import LocalFaceBackend, similarity
from vision.types import DetectedFace

MAX_IMAGE_BYTES = 5 * 1024 * 1024
FACE_MODEL_VERSION = "7.0"


class AwsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class _Collection:
    faces: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)  # face id -> (external id, descriptor)
    users: dict[str, set[str]] = field(default_factory=dict)  # user id -> face ids


class RekognitionStandIn:
    """``start()`` binds a free port; ``endpoint_url`` is what AWS_ENDPOINT_URL should be. ``calls`` lists the
    operations in the order they arrived, for tests."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0):
        self._engine = LocalFaceBackend()
        self._collections: dict[str, _Collection] = {}
        self._lock = threading.Lock()
        self.calls: list[str] = []
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="rekognition-stand-in", daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RekognitionStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def collection_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._collections)

    def users(self, collection_id: str) -> dict[str, set[str]]:
        with self._lock:
            return {u: set(f) for u, f in self._collections[collection_id].users.items()}

    def answer(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(operation)
        handler: Callable[[dict[str, Any]], dict[str, Any]] | None = getattr(
            self, "_op_" + re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower(), None
        )
        if handler is None:
            raise AwsError("UnknownOperationException", f"{operation} is not implemented by the stand-in")
        return handler(params)

    # --- collections and users -----------------------------------------------------------------

    def _op_create_collection(self, params: dict[str, Any]) -> dict[str, Any]:
        collection_id = params["CollectionId"]
        with self._lock:
            if collection_id in self._collections:
                raise AwsError("ResourceAlreadyExistsException", f"The collection id: {collection_id} already exists")
            self._collections[collection_id] = _Collection()
        return {
            "StatusCode": 200,
            "FaceModelVersion": FACE_MODEL_VERSION,
            "CollectionArn": f"aws:rekognition:us-east-1:000000000000:collection/{collection_id}",
        }

    def _op_delete_collection(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._collections.pop(params.get("CollectionId", ""), None) is None:
                raise AwsError(
                    "ResourceNotFoundException", f"The collection id: {params.get('CollectionId')} does not exist"
                )
        return {"StatusCode": 200}

    def _op_describe_collection(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = self._collection(params)
        return {
            "FaceCount": len(collection.faces),
            "UserCount": len(collection.users),
            "FaceModelVersion": FACE_MODEL_VERSION,
        }

    def _op_create_user(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = self._collection(params)
        with self._lock:
            if params["UserId"] in collection.users:
                raise AwsError("ConflictException", "The user already exists")
            collection.users[params["UserId"]] = set()
        return {}

    def _op_delete_user(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = self._collection(params)
        with self._lock:
            if collection.users.pop(params["UserId"], None) is None:
                raise AwsError("ResourceNotFoundException", "The user does not exist")
        return {}

    def _op_associate_faces(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = self._collection(params)
        with self._lock:
            if params["UserId"] not in collection.users:
                raise AwsError("ResourceNotFoundException", "The user does not exist")
            done, refused = [], []
            for face_id in params["FaceIds"]:
                if face_id in collection.faces:
                    collection.users[params["UserId"]].add(face_id)
                    done.append({"FaceId": face_id})
                else:
                    refused.append({"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]})
        return {"AssociatedFaces": done, "UnsuccessfulFaceAssociations": refused, "UserStatus": "ACTIVE"}

    def _op_disassociate_faces(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = self._collection(params)
        with self._lock:
            faces = collection.users.get(params["UserId"], set())
            gone = [{"FaceId": f} for f in params["FaceIds"] if f in faces]
            faces.difference_update(params["FaceIds"])
        return {"DisassociatedFaces": gone, "UnsuccessfulFaceDisassociations": [], "UserStatus": "ACTIVE"}

    def _op_delete_faces(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = self._collection(params)
        with self._lock:
            deleted = [f for f in params["FaceIds"] if collection.faces.pop(f, None) is not None]
        missing = [{"FaceId": f, "Reasons": ["FACE_NOT_FOUND"]} for f in params["FaceIds"] if f not in deleted]
        return {"DeletedFaces": deleted, "UnsuccessfulFaceDeletions": missing}

    # --- what needs eyes -----------------------------------------------------------------------

    def _op_detect_faces(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"FaceDetails": [_detail(face) for face in self._faces_in(params)]}

    def _op_index_faces(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = self._collection(params)
        faces = self._faces_in(params)
        kept = faces[: int(params.get("MaxFaces", 100))]
        records = []
        with self._lock:
            for face in kept:
                face_id = str(uuid.uuid4())
                collection.faces[face_id] = (params.get("ExternalImageId", ""), face.handle)
                records.append(
                    {
                        "Face": {
                            "FaceId": face_id,
                            "BoundingBox": _bounding_box(face),
                            "Confidence": 99.9,
                            "ExternalImageId": params.get("ExternalImageId", ""),
                        },
                        "FaceDetail": _detail(face),
                    }
                )
        unindexed = [{"Reasons": ["EXCEEDS_MAX_FACES"], "FaceDetail": _detail(f)} for f in faces[len(kept) :]]
        return {"FaceRecords": records, "UnindexedFaces": unindexed, "FaceModelVersion": FACE_MODEL_VERSION}

    def _op_search_users_by_image(self, params: dict[str, Any]) -> dict[str, Any]:
        collection = self._collection(params)
        faces = self._faces_in(params)
        if not faces:
            return {"UserMatches": [], "FaceModelVersion": FACE_MODEL_VERSION}
        searched, others = faces[0], faces[1:]  # the largest face only, as Rekognition does
        threshold = float(params.get("UserMatchThreshold", 80.0))
        with self._lock:
            gallery = {
                user: [collection.faces[f][1] for f in face_ids if f in collection.faces]
                for user, face_ids in collection.users.items()
            }
        matches: list[dict[str, Any]] = []
        for user, descriptors in gallery.items():
            if descriptors:
                best = max(similarity(float(np.linalg.norm(d - searched.handle))) for d in descriptors)
                if best >= threshold:
                    matches.append({"Similarity": round(best, 2), "User": {"UserId": user, "UserStatus": "ACTIVE"}})
        matches.sort(key=lambda m: -m["Similarity"])
        return {
            "UserMatches": matches[: int(params.get("MaxUsers", 100))],
            "FaceModelVersion": FACE_MODEL_VERSION,
            "SearchedFace": {"FaceDetail": {"BoundingBox": _bounding_box(searched)}},
            "UnsearchedFaces": [{"FaceDetails": _detail(f), "Reasons": ["FACE_NOT_LARGEST"]} for f in others],
        }

    def _op_detect_labels(self, params: dict[str, Any]) -> dict[str, Any]:
        self._image(params)
        return {"Labels": [], "LabelModelVersion": "3.0"}

    def _collection(self, params: dict[str, Any]) -> _Collection:
        with self._lock:
            collection = self._collections.get(params.get("CollectionId", ""))
        if collection is None:
            raise AwsError(
                "ResourceNotFoundException", f"The collection id: {params.get('CollectionId')} does not exist"
            )
        return collection

    def _faces_in(self, params: dict[str, Any]) -> list[DetectedFace]:
        return self._engine.detect(self._image(params))  # largest first

    @staticmethod
    def _image(params: dict[str, Any]) -> bytes:
        data = base64.b64decode((params.get("Image") or {}).get("Bytes") or "")
        if len(data) > MAX_IMAGE_BYTES:
            raise AwsError("ImageTooLargeException", "Image size is too large.")
        try:
            _image, fmt = image_prep.decode(data)
        except image_prep.ImageRejected:
            raise AwsError("InvalidImageFormatException", "Request has invalid image format") from None
        if fmt not in ("JPEG", "PNG"):
            raise AwsError("InvalidImageFormatException", "Request has invalid image format")
        return data


def _bounding_box(face: DetectedFace) -> dict[str, float]:
    x0, y0, x1, y1 = face.box
    return {"Left": x0, "Top": y0, "Width": x1 - x0, "Height": y1 - y0}


def _detail(face: DetectedFace) -> dict[str, Any]:
    return {
        "BoundingBox": _bounding_box(face),
        "Confidence": 99.9,
        "Pose": {"Roll": 0.0, "Yaw": 0.0, "Pitch": 0.0},
        "Quality": {"Brightness": 55.0, "Sharpness": round(face.sharpness * 100, 2)},
    }


def _handler_for(standin: RekognitionStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "RekognitionStandIn/1.0"

        def do_POST(self) -> None:
            target = self.headers.get("X-Amz-Target", "")
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                if not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256 "):
                    raise AwsError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
                if not target.startswith("RekognitionService."):
                    raise AwsError("UnknownOperationException", "unknown target")
                body = standin.answer(target.split(".", 1)[1], json.loads(raw or b"{}"))
                self._json(200, body)
            except AwsError as exc:
                self._json(exc.status, {"__type": exc.code, "Message": exc.message})
            except (KeyError, ValueError) as exc:
                self._json(
                    400, {"__type": "InvalidParameterException", "Message": f"invalid request ({type(exc).__name__})"}
                )

        def _json(self, status: int, body: Any) -> None:
            content = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(content)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
