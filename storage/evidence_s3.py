"""Evidence as objects in an S3 (or S3-compatible) bucket: ``EVIDENCE_URL=s3://bucket/prefix``.

Content-addressed like the file store: an object that exists is never written again, so a
retried step or a second process storing the same picture costs one HEAD. Deleting removes
every version of a versioned bucket: a delete marker alone would keep the picture, and erasure
must really erase.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from storage.evidence import READY, EvidenceMissing, EvidenceUnavailable, digest_of, object_name

log = logging.getLogger(__name__)

_MISSING = {"404", "NoSuchKey", "NotFound"}


def make_client(
    region: str | None,
    endpoint_url: str | None = None,
    *,
    max_attempts: int = 3,
    connect_timeout: float = 3.0,
    read_timeout: float = 10.0,
) -> Any:
    """The S3 client of the composition root (AWS_REGION, AWS_ENDPOINT_URL_S3; credentials as boto3 finds them).

    A silent store holds a call at most 3 × (3 s + 10 s) plus back-off: a step waits, then retries later.
    Endpoints come only from our validated configuration (``ignore_configured_endpoint_urls``): boto3 would
    otherwise also apply AWS_ENDPOINT_URL, which here names Rekognition's endpoint. A custom endpoint gets
    path-style addressing (most S3-compatible stores have no per-bucket host names), and checksums only
    where S3 requires them (many S3-compatible stores refuse botocore's newer default CRC checksums)."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3={"addressing_style": "path"} if endpoint_url else None,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        ignore_configured_endpoint_urls=True,
    )
    return boto3.Session().client("s3", region_name=region, endpoint_url=endpoint_url, config=config)


class S3EvidenceStore:
    def __init__(self, client: Any, bucket: str, prefix: str = ""):
        self.client, self.bucket = client, bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""

    def key(self, digest: str, content_type: str) -> str:
        return self.prefix + object_name(digest, content_type)

    def put(self, content: bytes, content_type: str) -> str:
        digest = digest_of(content)
        key = self.key(digest, content_type)
        with _unavailable("store"):
            if not self._exists(key):
                self.client.put_object(Bucket=self.bucket, Key=key, Body=content, ContentType=content_type)
        return digest

    def read(self, digest: str, content_type: str) -> bytes:
        key = self.key(digest, content_type)
        with _unavailable("read"):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    raise EvidenceMissing(f"no evidence {digest[:12]}…") from None
                raise
            body: bytes = response["Body"].read()
            return body

    def delete(self, digest: str, content_type: str) -> bool:
        key = self.key(digest, content_type)
        with _unavailable("delete"):
            versions = self._versions(key)
            if versions is None:  # a store without versioning support: one object, if any
                if not self._exists(key):
                    return False
                self.client.delete_object(Bucket=self.bucket, Key=key)
                return True
            for version_id, _ in versions:
                self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version_id)
            return any(not marker for _, marker in versions)

    def probe(self) -> str:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                return f"bucket {self.bucket} does not exist"
            if code in ("403", "AccessDenied"):
                return f"access to bucket {self.bucket} denied (check the AWS credentials)"
            return f"bucket {self.bucket} unusable: {_describe(exc)}"
        except BotoCoreError as exc:
            return f"object store unreachable: {_describe(exc)}"
        return READY

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        return True

    def _versions(self, key: str) -> list[tuple[str, bool]] | None:
        """Every (version id, is a delete marker) of exactly ``key``; None when the store cannot list versions."""
        found: list[tuple[str, bool]] = []
        try:
            for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
                found += [(v["VersionId"], False) for v in page.get("Versions", []) if v["Key"] == key]
                found += [(m["VersionId"], True) for m in page.get("DeleteMarkers", []) if m["Key"] == key]
        except ClientError as exc:
            if _code(exc) in ("NotImplemented", "501", "MethodNotAllowed", "405"):
                return None
            raise
        return found


@contextmanager
def _unavailable(operation: str) -> Iterator[None]:
    """What the store or the network says becomes ``EvidenceUnavailable`` (``EvidenceMissing`` passes)."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        reason = f"evidence {operation} failed: {_describe(exc)}"
        log.warning("%s", reason)
        raise EvidenceUnavailable(reason) from None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: BaseException) -> str:
    # botocore's messages quote the endpoint URL (EndpointConnectionError) or the request; the kind and
    # the service's error code say enough, and never carry a URL, a key or a credential.
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{_code(exc) or 'error'} (HTTP {status})" if status else _code(exc) or "error"
    return type(exc).__name__
