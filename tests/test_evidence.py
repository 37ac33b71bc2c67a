"""storage/evidence.py: content-addressed, atomic evidence files that can really be deleted."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from storage.evidence import EvidenceStore

JPEG = b"\xff\xd8\xff\xe0 pretend jpeg \xff\xd9"


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    return EvidenceStore(tmp_path / "data")


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_put_names_the_file_by_its_sha256(store):
    digest = store.put(JPEG, "image/jpeg")
    assert digest == hashlib.sha256(JPEG).hexdigest()
    expected = store.root / digest[:2] / f"{digest}.jpg"
    assert files_under(store.root) == [expected]
    assert expected.read_bytes() == JPEG
    assert store.read(digest, "image/jpeg") == JPEG


def test_same_bytes_twice_is_one_file(store):
    first = store.put(JPEG, "image/jpeg")
    second = store.put(bytes(JPEG), "image/jpeg")
    assert first == second
    assert len(files_under(store.root)) == 1


def test_different_bytes_are_different_files(store):
    a, b = store.put(JPEG, "image/jpeg"), store.put(JPEG + b"x", "image/jpeg")
    assert a != b and store.read(b, "image/jpeg") == JPEG + b"x"
    assert len(files_under(store.root)) == 2


@pytest.mark.parametrize(
    "content_type, suffix",
    [("image/png", ".png"), ("text/csv", ".csv"), ("application/json", ".json"), ("application/x-unknown", ".bin")],
)
def test_the_extension_follows_the_content_type(store, content_type, suffix):
    digest = store.put(b"content", content_type)
    assert store.path(digest, content_type).suffix == suffix
    assert store.path(digest, content_type).exists()


def test_delete_really_removes_the_file(store):
    digest = store.put(JPEG, "image/jpeg")
    assert store.delete(digest, "image/jpeg") is True
    assert files_under(store.root) == []
    with pytest.raises(FileNotFoundError):
        store.read(digest, "image/jpeg")
    assert store.delete(digest, "image/jpeg") is False


def test_put_after_delete_stores_again(store):
    digest = store.put(JPEG, "image/jpeg")
    store.delete(digest, "image/jpeg")
    assert store.put(JPEG, "image/jpeg") == digest
    assert store.read(digest, "image/jpeg") == JPEG


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


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "abc",
        "A" * 64,  # upper case is not how we name files
        "g" * 64,
        "0" * 63,
        "0" * 65,
        "../" + "0" * 61,
        "../../../../etc/passwd".ljust(64, "0"),
    ],
)
def test_invalid_digests_are_refused_everywhere(store, digest):
    for call in (
        lambda: store.path(digest, "image/jpeg"),
        lambda: store.read(digest, "image/jpeg"),
        lambda: store.delete(digest, "image/jpeg"),
    ):
        with pytest.raises(ValueError, match="SHA-256"):
            call()
