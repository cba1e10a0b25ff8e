import hashlib
import hmac

import pytest

from vmt.service.signature import looks_like_signature, sign, signature_matches

SECRET = b"s3cret"
BODY = b'{"modelRunId": "mr-1"}'


def test_sign_is_hmac_sha1_hex_with_prefix() -> None:
    expected = hmac.new(SECRET, BODY, hashlib.sha1).hexdigest()
    assert sign(SECRET, BODY) == f"sha1={expected}"


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (sign(SECRET, BODY), True),  # the real signature
        (sign(SECRET, BODY).upper().replace("SHA1=", "sha1="), True),  # hex case is irrelevant
        (None, False),  # missing header
        ("", False),  # empty header
        ("sha1=", False),  # prefix only
        (sign(SECRET, BODY)[5:], False),  # digest without prefix
        ("SHA1=" + sign(SECRET, BODY)[5:], False),  # prefix is case-sensitive
        ("sha256=" + hmac.new(SECRET, BODY, hashlib.sha256).hexdigest(), False),  # other algo
        (sign(b"other", BODY), False),  # other secret
        (sign(SECRET, BODY + b"\n"), False),  # signature of another body
        (sign(SECRET, BODY) + "00", False),  # too long
        (sign(SECRET, BODY)[:-1] + "g", False),  # not hex
        ("sha1=" + "é" * 40, False),  # non-ASCII
    ],
)
def test_signature_matches(header: str | None, matches: bool) -> None:
    assert signature_matches(SECRET, BODY, header) is matches


def test_empty_body_signature_for_get() -> None:
    assert signature_matches(SECRET, b"", sign(SECRET, b""))
    assert looks_like_signature(sign(SECRET, b""))
