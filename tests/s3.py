"""A real S3 API for the tests: moto's server on 127.0.0.1 (one per session), a fresh bucket per use.

``s3_server`` speaks the S3 protocol over HTTP as an S3-compatible store would (path-style, through
``AWS_ENDPOINT_URL_S3``), so the store's client, its retries and its error mapping are the ones in
production. Fake credentials come from the environment, as boto3 reads them. Without moto the
tests skip, except under ``CI=true`` (they fail).
"""

from __future__ import annotations

import functools
import itertools
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from storage.evidence_s3 import make_client
from tests.real_parts import require_or_skip

REGION = "us-east-1"
_buckets = itertools.count(1)


@dataclass
class S3Server:
    endpoint: str

    def client(self, **settings: Any) -> Any:
        """A new client (a store's own); ``admin`` is the shared one that looks into buckets."""
        return make_client(REGION, self.endpoint, **settings)

    @functools.cached_property
    def admin(self) -> Any:
        return self.client()  # a boto3 client costs about half a second to build

    def bucket(self, *, versioned: bool = False) -> str:
        """A new, empty bucket (names never repeat within a session, so tests never see each other's objects)."""
        name = f"flp-evidence-{next(_buckets)}"
        client = self.admin
        client.create_bucket(Bucket=name)
        if versioned:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def keys(self, bucket: str) -> list[str]:
        listed = self.admin.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def versions(self, bucket: str) -> list[tuple[str, str]]:
        """Every (key, version id) in the bucket, delete markers included."""
        listed = self.admin.list_object_versions(Bucket=bucket)
        entries = listed.get("Versions", []) + listed.get("DeleteMarkers", [])
        return sorted((item["Key"], item["VersionId"]) for item in entries)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        require_or_skip("moto[server] is not installed (pip install -r requirements-dev.txt)")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake keys where boto3 looks for them; nothing of the developer's own AWS set-up is read."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")


@pytest.fixture
def s3_server(moto_endpoint: str, aws_credentials: None) -> S3Server:
    return S3Server(moto_endpoint)
