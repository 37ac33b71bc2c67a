"""Every Rekognition call ends within its total deadline, retries included, against a loopback endpoint that
drips its answer (each byte well within botocore's read timeout, the whole far beyond the deadline)."""

from __future__ import annotations

import io
import time
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from PIL import Image

from tests.dripping import dripping_server
from vision.rekognition import DeadlineClient, RekognitionFaceBackend, make_client
from vision.rekognition_labels import RekognitionProductCounter
from vision.types import RecognitionError

DEADLINE_S = 1.0


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 120, 120)).save(out, format="JPEG")
    return out.getvalue()


def bounded(endpoint: str) -> DeadlineClient:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    client = make_client("us-east-1", endpoint, max_attempts=3, connect_timeout=2, read_timeout=2, session=session)
    return DeadlineClient(client, deadline_s=DEADLINE_S)


@pytest.mark.parametrize("drip", ["headers", "body"])
def test_a_dripping_endpoint_ends_a_face_detection_at_its_deadline_as_a_retryable_error(drip: Any) -> None:
    with dripping_server(drip, every_s=0.05) as endpoint:
        backend = RekognitionFaceBackend(bounded(endpoint), "flp-watchlist")
        started = time.monotonic()
        with pytest.raises(RecognitionError) as raised:
            backend.detect(jpeg())
        elapsed = time.monotonic() - started
    assert raised.value.retry is True
    assert raised.value.reason == f"Amazon Rekognition did not finish answering within {DEADLINE_S:g} s"
    assert DEADLINE_S <= elapsed < DEADLINE_S + 1.5  # the drip alone would take 20 s


def test_a_dripping_endpoint_ends_a_product_count_at_its_deadline() -> None:
    with dripping_server("body", every_s=0.05) as endpoint:
        counter = RekognitionProductCounter(bounded(endpoint))
        started = time.monotonic()
        with pytest.raises(RecognitionError) as raised:
            counter.count(jpeg(), ["Bottle"])
    assert raised.value.retry is True
    assert time.monotonic() - started < DEADLINE_S + 1.5


def test_a_prompt_answer_passes_through_the_deadline_unchanged() -> None:
    with dripping_server(None, body=b'{"FaceDetails": []}') as endpoint:
        backend = RekognitionFaceBackend(bounded(endpoint), "flp-watchlist")
        assert backend.detect(jpeg()) == []


def test_what_is_not_an_api_call_is_the_clients_own() -> None:
    client = bounded("https://rekognition.test")
    assert client.meta is client.client.meta
    with Stubber(client.client) as stub:  # a stubbed client behind the deadline answers as itself
        stub.add_response("list_collections", {"CollectionIds": ["c"]}, {})
        assert client.list_collections()["CollectionIds"] == ["c"]
