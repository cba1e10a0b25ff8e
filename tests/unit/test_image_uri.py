from pathlib import Path

import pytest

from vmt.formats.image_uri import local_path, redact, redact_text, resolve_relative


@pytest.mark.parametrize(
    ("uri", "base", "expected"),
    [
        # a relative path is taken from the images folder
        ("img/a.png", Path("/data/images"), "/data/images/img/a.png"),
        # absolute paths and URLs stay as they are
        ("/abs/a.png", Path("/data"), "/abs/a.png"),
        ("https://host/a.png?sig=x", Path("/data"), "https://host/a.png?sig=x"),
        ("file:///abs/a.png", Path("/data"), "file:///abs/a.png"),
        ("gs://bucket/a.png", Path("/data"), "gs://bucket/a.png"),
        # no base: unchanged
        ("img/a.png", None, "img/a.png"),
    ],
)
def test_resolve_relative(uri: str, base: Path | None, expected: str) -> None:
    assert resolve_relative(uri, base) == expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/abs/a.png", Path("/abs/a.png")),
        ("file:///abs/with%20space.png", Path("/abs/with space.png")),
        ("https://host/a.png", None),
    ],
)
def test_local_path(uri: str, expected: Path | None) -> None:
    assert local_path(uri) == expected


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://user:s3cret@host/a.png", "https://host/a.png"),
        (
            "https://host:8443/a.png?X-Goog-Signature=abc&X-Goog-Credential=k",
            "https://host:8443/a.png?...",
        ),
        ("http://tok@host/a.png#frag", "http://host/a.png"),
        ("gs://bucket/a.png", "gs://bucket/a.png"),
        ("/local/a.png", "/local/a.png"),
    ],
)
def test_redact_drops_user_info_and_query(uri: str, shown: str) -> None:
    assert redact(uri) == shown


def test_redact_text_removes_secrets_quoted_apart_from_the_url() -> None:
    uri = "https://user:pa55word@host/a.png?sig=SIGNATURE123"
    text = f"GET {uri} failed; credentials pa55word; query sig=SIGNATURE123"
    out = redact_text(text, uri)
    assert "pa55word" not in out and "SIGNATURE123" not in out and "user:" not in out
    assert "https://host/a.png" in out


def test_redact_urls_in_free_text_and_request_lines() -> None:
    from vmt.formats.image_uri import redact_urls

    text = (
        "failed https://u:pw1234@h.example/a.png?X-Goog-Signature=SIG999 then "
        '127.0.0.1:80 "GET /b.png?token=TOK777 HTTP/1.1" 403'
    )
    out = redact_urls(text)
    for secret in ("pw1234", "SIG999", "TOK777", "u:"):
        assert secret not in out
    assert "https://h.example/a.png?..." in out and "GET /b.png?... HTTP/1.1" in out
    assert redact_urls("no urls here: 3 rows?") == "no urls here: 3 rows?"


def test_redact_never_raises_on_text_that_only_looks_like_a_url() -> None:
    from vmt.formats.image_uri import redact_urls

    assert redact("http://[bad/a.png?sig=SECRET1") == "http://[bad/a.png?..."
    assert "SECRET2" not in redact("https://user:SECRET2@[::1/x")
    assert "SECRET3" not in redact_urls("Uvicorn running on http://[::1:8000?k=SECRET3 (CTRL+C)")
