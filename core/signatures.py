"""HMAC signatures of the POS and fraud-report webhooks: ``X-Signature: t=<unix>,v1=<hex>``.

The signed string is ``"<t>.<raw body>"`` with HMAC-SHA256; timestamps more than 300 s from now
either way are refused (replay), and comparison is constant-time. Several ``v1`` values may be
sent during a key rotation; any one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac

TOLERANCE_S = 300


class SignatureError(Exception):
    """Why a signature was refused, in words safe to return (never the expected value)."""


def sign(body: bytes, secret: str, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(header: str | None, body: bytes, secret: str, *, now: float) -> None:
    if not header:
        raise SignatureError("missing X-Signature header")
    timestamp, candidates = _parse(header)
    if abs(now - timestamp) > TOLERANCE_S:
        raise SignatureError(f"signature timestamp is more than {TOLERANCE_S} s from the server's time")
    expected = sign(body, secret, timestamp).split("v1=", 1)[1]
    # compare_digest on every candidate, without early exit, keeps timing independent of which matched.
    matches = [hmac.compare_digest(expected.encode(), c.encode()) for c in candidates]
    if not any(matches):
        raise SignatureError("signature does not match the body")


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and len(value) == 64:
            candidates.append(value.lower())
    if timestamp is None or not candidates:
        raise SignatureError("X-Signature must be t=<unix seconds>,v1=<hex HMAC-SHA256>")
    return timestamp, candidates
