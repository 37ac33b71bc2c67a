"""Evidence (pictures, crops, exports), named by content hash, behind one protocol with two stores.

``FileEvidenceStore`` keeps files under DATA_DIR (the embedded default); ``S3EvidenceStore``
(storage/evidence_s3.py) keeps objects in a bucket (``EVIDENCE_URL=s3://…``), so processes share no disk.
Both name an object ``<2 hex>/<sha256><ext>``, write it once (the same content stored twice is one
object) and really delete it (retention, erasure).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

from core.steps import RetryLater

EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "text/csv": ".csv", "application/json": ".json"}
READY = "ready"
# How long a step waits before it tries an unreachable store again (an attempt is spent each time).
UNAVAILABLE_RETRY_S = 30.0


class EvidenceMissing(FileNotFoundError):
    """No evidence of that name (purged, erased, or never stored). A FileNotFoundError, as the file store's was."""


class EvidenceUnavailable(RetryLater):
    """The store cannot be reached or refused the call: a step tries again later instead of failing for good.

    The reason names the operation and the error's kind, never an endpoint URL or a key."""

    def __init__(self, reason: str, delay_s: float = UNAVAILABLE_RETRY_S):
        super().__init__(reason, delay_s)


class EvidenceStore(Protocol):
    """Where evidence lives; handlers and steps are given one and never know which."""

    def put(self, content: bytes, content_type: str) -> str:
        """Store bytes once and return their SHA-256 (hex), which names them."""
        ...

    def read(self, digest: str, content_type: str) -> bytes:
        """The stored bytes; ``EvidenceMissing`` when there are none."""
        ...

    def delete(self, digest: str, content_type: str) -> bool:
        """Really delete (retention, erasure). True if something was removed."""
        ...

    def probe(self) -> str:
        """``"ready"``, or in plain words why the store cannot be used (for /readyz, `status`, check-config)."""
        ...


def object_name(digest: str, content_type: str) -> str:
    """``<2 hex>/<digest><ext>``: the name in either store; refuses anything but a SHA-256 hex digest."""
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise ValueError("evidence names are SHA-256 hex digests")
    return f"{digest[:2]}/{digest}{EXTENSIONS.get(content_type, '.bin')}"


def digest_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class FileEvidenceStore:
    """Files under ``DATA_DIR/evidence``, written atomically.

    A half-written file never carries a final name: bytes go to a temporary file in the same
    directory, are fsynced, then renamed."""

    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "evidence"

    def put(self, content: bytes, content_type: str) -> str:
        digest = digest_of(content)
        path = self.path(digest, content_type)
        if path.exists():
            return digest
        created = [d for d in (self.root, path.parent) if not d.is_dir()]
        path.parent.mkdir(parents=True, exist_ok=True)
        for directory in created:
            _fsync_dir(directory.parent)  # a new directory's own entry must survive a power loss too
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return digest

    def read(self, digest: str, content_type: str) -> bytes:
        path = self.path(digest, content_type)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise EvidenceMissing(f"no evidence {digest[:12]}…") from None

    def delete(self, digest: str, content_type: str) -> bool:
        path = self.path(digest, content_type)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    def probe(self) -> str:
        # The directory is made on the first put; until then its nearest existing parent must be writable.
        existing = next((p for p in (self.root, *self.root.parents) if p.exists()), None)
        if existing is None or not existing.is_dir():
            return f"{existing or self.root} is not a directory"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"{existing} is not writable"
        return READY

    def path(self, digest: str, content_type: str) -> Path:
        return self.root / object_name(digest, content_type)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
