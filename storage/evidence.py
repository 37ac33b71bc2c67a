"""Evidence files under DATA_DIR, named by content hash and written atomically.

A half-written file never carries a final name: bytes go to a temporary file in the same
directory, are fsynced, then renamed. The same content stored twice is one file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "text/csv": ".csv", "application/json": ".json"}


class EvidenceStore:
    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "evidence"

    def put(self, content: bytes, content_type: str) -> str:
        """Store bytes and return their SHA-256 (hex), which names the file."""
        digest = hashlib.sha256(content).hexdigest()
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
        return self.path(digest, content_type).read_bytes()

    def delete(self, digest: str, content_type: str) -> bool:
        """Really delete (retention, erasure). True if a file was removed."""
        path = self.path(digest, content_type)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    def path(self, digest: str, content_type: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError("evidence names are SHA-256 hex digests")
        return self.root / digest[:2] / f"{digest}{EXTENSIONS.get(content_type, '.bin')}"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
