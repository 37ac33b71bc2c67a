"""compose.yaml's one-shot: create the bucket of EVIDENCE_URL unless it exists, then exit 0.

boto3 takes the endpoint (AWS_ENDPOINT_URL_S3), the region and the credentials from the environment, as the
product does, so a wrong key fails here, before any process starts, rather than at the first picture.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

MISSING = {"404", "NoSuchBucket", "NotFound"}


def bucket_of(evidence_url: str) -> str:
    parts = urlsplit(evidence_url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"EVIDENCE_URL must be s3://bucket/prefix, not {evidence_url!r}")
    return parts.netloc


def ensure_bucket(s3: Any, bucket: str, region: str | None, *, attempts: int = 30, wait_s: float = 2.0) -> str:
    """'exists' or 'created'; waits for a store that is still starting (compose starts them together)."""
    for attempt in range(attempts):
        try:
            s3.head_bucket(Bucket=bucket)
            return "exists"
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in MISSING:
                raise
            # Outside us-east-1, S3 wants the region named again (and refuses it inside us-east-1).
            where = (
                {} if region in (None, "us-east-1") else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            )
            s3.create_bucket(Bucket=bucket, **where)
            return "created"
        except EndpointConnectionError:
            if attempt == attempts - 1:
                raise
            time.sleep(wait_s)
    raise AssertionError("unreachable")


def main() -> int:
    try:
        bucket = bucket_of(os.environ.get("EVIDENCE_URL", ""))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    region = os.environ.get("AWS_REGION")
    outcome = ensure_bucket(boto3.client("s3", region_name=region), bucket, region)
    print(f"bucket {bucket}: {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
