"""storage/evidence.py and storage/evidence_s3.py: one contract, two stores (files under DATA_DIR, an S3 bucket).

The contract tests run on both; the S3 store talks to moto's S3 server on 127.0.0.1 (tests/s3.py).
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from storage.evidence import EvidenceMissing, EvidenceStore, EvidenceUnavailable, FileEvidenceStore, object_name
from storage.evidence_s3 import S3EvidenceStore, make_client
from tests.s3 import REGION, S3Server, free_port

JPEG = b"\xff\xd8\xff\xe0 pretend jpeg \xff\xd9"
PREFIX = "stores/south"


class Stored:
    """A store under test and a look at what it holds, from outside it (the directory, the bucket)."""

    def __init__(self, store: EvidenceStore, names: Any):
        self.store, self.names = store, names


@pytest.fixture(params=["file", "s3"])
def stored(request: pytest.FixtureRequest, tmp_path: Path) -> Stored:
    if request.param == "file":
        files = FileEvidenceStore(tmp_path / "data")
        return Stored(files, lambda: [p.relative_to(files.root).as_posix() for p in files_under(files.root)])
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.bucket()
    store = S3EvidenceStore(server.admin, bucket, PREFIX)
    return Stored(store, lambda: [key.removeprefix(f"{PREFIX}/") for key in server.keys(bucket)])


@pytest.fixture
def store(tmp_path: Path) -> FileEvidenceStore:
    return FileEvidenceStore(tmp_path / "data")


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- the contract, on both stores ---


def test_put_names_the_object_by_its_sha256_and_reads_it_back(stored):
    digest = stored.store.put(JPEG, "image/jpeg")
    assert digest == hashlib.sha256(JPEG).hexdigest()
    assert stored.names() == [f"{digest[:2]}/{digest}.jpg"]
    assert stored.store.read(digest, "image/jpeg") == JPEG


def test_same_bytes_twice_is_one_object(stored):
    first = stored.store.put(JPEG, "image/jpeg")
    second = stored.store.put(bytes(JPEG), "image/jpeg")
    assert first == second
    assert len(stored.names()) == 1


def test_different_bytes_are_different_objects(stored):
    a, b = stored.store.put(JPEG, "image/jpeg"), stored.store.put(JPEG + b"x", "image/jpeg")
    assert a != b and stored.store.read(b, "image/jpeg") == JPEG + b"x"
    assert len(stored.names()) == 2


@pytest.mark.parametrize(
    "content_type, suffix",
    [("image/png", ".png"), ("text/csv", ".csv"), ("application/json", ".json"), ("application/x-unknown", ".bin")],
)
def test_the_extension_follows_the_content_type(stored, content_type, suffix):
    digest = stored.store.put(b"content", content_type)
    assert stored.names() == [object_name(digest, content_type)]
    assert stored.names()[0].endswith(suffix)


def test_delete_really_removes_it(stored):
    digest = stored.store.put(JPEG, "image/jpeg")
    assert stored.store.delete(digest, "image/jpeg") is True
    assert stored.names() == []
    with pytest.raises(EvidenceMissing):
        stored.store.read(digest, "image/jpeg")
    assert stored.store.delete(digest, "image/jpeg") is False


def test_missing_evidence_is_a_file_not_found_error_too(stored):
    # Callers written against the file store (except FileNotFoundError) keep working on either.
    with pytest.raises(FileNotFoundError):
        stored.store.read("0" * 64, "image/jpeg")


def test_put_after_delete_stores_again(stored):
    digest = stored.store.put(JPEG, "image/jpeg")
    stored.store.delete(digest, "image/jpeg")
    assert stored.store.put(JPEG, "image/jpeg") == digest
    assert stored.store.read(digest, "image/jpeg") == JPEG


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "abc",
        "A" * 64,  # upper case is not how we name objects
        "g" * 64,
        "0" * 63,
        "0" * 65,
        "../" + "0" * 61,
        "../../../../etc/passwd".ljust(64, "0"),
    ],
)
def test_invalid_digests_are_refused_everywhere(stored, digest):
    for call in (
        lambda: stored.store.read(digest, "image/jpeg"),
        lambda: stored.store.delete(digest, "image/jpeg"),
    ):
        with pytest.raises(ValueError, match="SHA-256"):
            call()


def test_a_usable_store_probes_ready(stored):
    assert stored.store.probe() == "ready"


# --- S3 only ---


def test_an_object_is_written_once_with_its_content_type(s3_server):
    bucket = s3_server.bucket(versioned=True)
    store = S3EvidenceStore(s3_server.admin, bucket, PREFIX)
    digest = store.put(JPEG, "image/jpeg")
    store.put(JPEG, "image/jpeg")  # content-addressed: the object there is not rewritten (no second version)
    key = f"{PREFIX}/{object_name(digest, 'image/jpeg')}"
    assert [k for k, _ in s3_server.versions(bucket)] == [key]
    head = s3_server.admin.head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "image/jpeg" and head["ContentLength"] == len(JPEG)


def test_delete_in_a_versioned_bucket_leaves_no_version_behind(s3_server):
    bucket = s3_server.bucket(versioned=True)
    store = S3EvidenceStore(s3_server.admin, bucket, PREFIX)
    digest = store.put(JPEG, "image/jpeg")
    key = f"{PREFIX}/{object_name(digest, 'image/jpeg')}"
    # An older version and a delete marker too, as a console upload or a plain delete_object would leave.
    s3_server.admin.put_object(Bucket=bucket, Key=key, Body=JPEG)
    s3_server.admin.delete_object(Bucket=bucket, Key=key)
    store.put(JPEG, "image/jpeg")
    other = store.put(b"someone else", "image/jpeg")
    assert len([v for v in s3_server.versions(bucket) if v[0] == key]) == 4
    assert store.delete(digest, "image/jpeg") is True
    assert [k for k, _ in s3_server.versions(bucket)] == [f"{PREFIX}/{object_name(other, 'image/jpeg')}"]
    assert store.delete(digest, "image/jpeg") is False


def test_only_a_delete_marker_left_counts_as_nothing_deleted_but_is_cleared(s3_server):
    bucket = s3_server.bucket(versioned=True)
    store = S3EvidenceStore(s3_server.admin, bucket, "")
    digest = store.put(JPEG, "image/jpeg")
    key = object_name(digest, "image/jpeg")
    versions = s3_server.admin.list_object_versions(Bucket=bucket)["Versions"]
    s3_server.admin.delete_object(Bucket=bucket, Key=key, VersionId=versions[0]["VersionId"])
    s3_server.admin.delete_object(Bucket=bucket, Key=key)  # a marker over nothing
    assert store.delete(digest, "image/jpeg") is False
    assert s3_server.versions(bucket) == []


def test_without_a_prefix_objects_sit_at_the_bucket_root(s3_server):
    bucket = s3_server.bucket()
    digest = S3EvidenceStore(s3_server.admin, bucket, "").put(JPEG, "image/jpeg")
    assert s3_server.keys(bucket) == [f"{digest[:2]}/{digest}.jpg"]


def test_probe_names_a_missing_bucket(s3_server):
    store = S3EvidenceStore(s3_server.admin, "flp-no-such-bucket", PREFIX)
    assert store.probe() == "bucket flp-no-such-bucket does not exist"
    with pytest.raises(EvidenceUnavailable, match="NoSuchBucket"):
        store.put(JPEG, "image/jpeg")


def test_an_unreachable_store_is_unavailable_quickly_and_says_no_url(aws_credentials):
    port = free_port()  # nothing listens there
    store = S3EvidenceStore(make_client(REGION, f"http://127.0.0.1:{port}"), "flp-evidence", PREFIX)
    started = time.monotonic()
    for call in (
        lambda: store.put(JPEG, "image/jpeg"),
        lambda: store.read("0" * 64, "image/jpeg"),
        lambda: store.delete("0" * 64, "image/jpeg"),
    ):
        with pytest.raises(EvidenceUnavailable) as caught:
            call()
        assert "127.0.0.1" not in str(caught.value) and str(port) not in str(caught.value)
        assert caught.value.delay_s > 0  # a step asks to run again later (RetryLater), it does not die
    assert store.probe().startswith("object store unreachable")
    assert time.monotonic() - started < 30  # three attempts each, refused at once, with standard back-off


def test_the_client_is_set_for_s3_compatible_stores(aws_credentials):
    client = make_client(REGION, "http://127.0.0.1:9")
    config = client.meta.config
    assert config.connect_timeout == 3.0 and config.read_timeout == 10.0
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert config.s3 == {"addressing_style": "path"}
    assert config.request_checksum_calculation == "when_required"
    assert client.meta.endpoint_url == "http://127.0.0.1:9"


def test_aws_endpoint_url_of_rekognition_does_not_redirect_s3(aws_credentials, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://rekognition.test")
    assert make_client(REGION).meta.endpoint_url == "https://s3.amazonaws.com"


# --- files only ---


def test_files_sit_under_data_dir_evidence(store):
    digest = store.put(JPEG, "image/jpeg")
    expected = store.root / digest[:2] / f"{digest}.jpg"
    assert files_under(store.root) == [expected] and expected.read_bytes() == JPEG
    assert store.path(digest, "image/jpeg") == expected


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_write_leaves_no_file_and_no_temporary(store, monkeypatch, failing):
    store.put(b"already here", "image/jpeg")  # the directory tree exists; only the new file may fail

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(OSError, match="No space left"):
        store.put(JPEG, "image/jpeg")
    monkeypatch.undo()
    digest = hashlib.sha256(JPEG).hexdigest()
    assert not store.path(digest, "image/jpeg").exists()
    assert [p.name for p in files_under(store.root)] == [f"{hashlib.sha256(b'already here').hexdigest()}.jpg"]
    assert not list(store.root.rglob(".incoming-*"))


def test_path_refuses_invalid_digests(store):
    with pytest.raises(ValueError, match="SHA-256"):
        store.path("../" + "0" * 61, "image/jpeg")


def test_a_data_dir_that_cannot_be_written_is_not_ready(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert FileEvidenceStore(blocker / "data").probe() == f"{blocker} is not a directory"
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert FileEvidenceStore(locked / "data").probe() == f"{locked} is not writable"
