"""core/signatures.py: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">, 300 s either way, key rotation."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from core.signatures import TOLERANCE_S, SignatureError, sign, verify

BODY = b'{"transaction_id":"T-1"}'
SECRET = "pos-secret"
T = 1_790_000_000


def digest(body: bytes = BODY, secret: str = SECRET, timestamp: int = T) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_sign_produces_the_documented_header():
    assert sign(BODY, SECRET, T) == f"t={T},v1={digest()}"


def test_round_trip_verifies():
    verify(sign(BODY, SECRET, T), BODY, SECRET, now=T)


@pytest.mark.parametrize("skew", [-TOLERANCE_S, TOLERANCE_S, -299.5, 0])
def test_timestamps_within_300_seconds_either_way_are_accepted(skew):
    assert TOLERANCE_S == 300
    verify(sign(BODY, SECRET, T), BODY, SECRET, now=T + skew)


@pytest.mark.parametrize("skew", [-301, 301, -300.5, 300.5, 86_400])
def test_timestamps_beyond_300_seconds_either_way_are_refused(skew):
    with pytest.raises(SignatureError, match="more than 300 s"):
        verify(sign(BODY, SECRET, T), BODY, SECRET, now=T + skew)


def test_tampered_body_is_refused():
    with pytest.raises(SignatureError, match="does not match"):
        verify(sign(BODY, SECRET, T), BODY.replace(b"T-1", b"T-2"), SECRET, now=T)


def test_other_key_is_refused():
    with pytest.raises(SignatureError, match="does not match"):
        verify(sign(BODY, "another-secret", T), BODY, SECRET, now=T)


def test_timestamp_is_part_of_what_is_signed():
    # Moving t to a fresh time without re-signing must not pass.
    header = f"t={T + 10},v1={digest(timestamp=T)}"
    with pytest.raises(SignatureError, match="does not match"):
        verify(header, BODY, SECRET, now=T)


def test_any_of_several_v1_values_may_match_during_rotation():
    old, new = digest(secret="old-secret"), digest()
    verify(f"t={T},v1={old},v1={new}", BODY, SECRET, now=T)
    verify(f"t={T},v1={new},v1={old}", BODY, SECRET, now=T)
    with pytest.raises(SignatureError, match="does not match"):
        verify(f"t={T},v1={old},v1={'0' * 64}", BODY, SECRET, now=T)


def test_spaces_and_upper_case_hex_are_tolerated():
    verify(f"t={T}, v1={digest().upper()}", BODY, SECRET, now=T)


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header_is_refused_plainly(header):
    with pytest.raises(SignatureError) as caught:
        verify(header, BODY, SECRET, now=T)
    assert str(caught.value) == "missing X-Signature header"


@pytest.mark.parametrize(
    "header",
    [
        f"v1={'a' * 64}",  # no t
        f"t=,v1={'a' * 64}",  # empty t
        f"t=17900x0000,v1={'a' * 64}",  # non-digit t
        f"t=-{T},v1={'a' * 64}",  # negative t
        f"t=١٧٩٠٠٠٠٠٠٠,v1={'a' * 64}",  # non-ASCII digits
        f"t={T}",  # no v1
        f"t={T},v1={'a' * 63}",  # short v1
        f"t={T},v0={'a' * 64}",  # unknown scheme only
        "sha256=abcdef",
        ",,,",
    ],
)
def test_malformed_headers_are_refused_with_a_plain_message(header):
    with pytest.raises(SignatureError) as caught:
        verify(header, BODY, SECRET, now=T)
    message = str(caught.value)
    assert message == "X-Signature must be t=<unix seconds>,v1=<hex HMAC-SHA256>"
    assert digest() not in message


def test_refusal_never_reveals_the_expected_signature():
    for now in (T, T + 1000):
        with pytest.raises(SignatureError) as caught:
            verify(f"t={T},v1={'0' * 64}", BODY, SECRET, now=now)
        assert digest() not in str(caught.value)
