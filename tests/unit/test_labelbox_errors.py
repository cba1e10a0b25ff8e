"""How Labelbox SDK failures are classified and translated (no network)."""

import pytest
import requests
from lbox import exceptions as lbx

from vmt.backends.labelbox.sdk_errors import is_retryable, translate
from vmt.backends.labelbox.sink import error_message
from vmt.errors import AuthError, BackendError, NotFoundError


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} error", response=response)


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (lbx.ApiLimitError("You have exceeded the rate limit"), True),
        (lbx.InternalServerError("502 Bad Gateway"), True),
        (lbx.NetworkError(requests.ConnectionError("refused")), True),
        (lbx.TimeoutError("read timed out"), True),
        (lbx.AuthenticationError("Invalid API key"), False),
        (lbx.ResourceNotFoundError(message="no such model run"), False),
        (lbx.InvalidQueryError("bad query"), False),
        (_http_error(503), True),  # a file download answered 503
        (_http_error(429), True),
        (_http_error(404), False),
        (requests.ConnectionError("reset"), True),
        (ValueError("not a network problem"), False),
    ],
)
def test_is_retryable(exc: BaseException, retryable: bool) -> None:
    assert is_retryable(exc) is retryable


@pytest.mark.parametrize(
    ("exc", "kind", "retryable", "starts"),
    [
        (lbx.AuthenticationError("Invalid API key"), AuthError, False, "LABELBOX_API_KEY is not"),
        (lbx.AuthorizationError("denied"), AuthError, False, "LABELBOX_API_KEY has no access"),
        (lbx.ResourceNotFoundError(message="x"), NotFoundError, False, "Labelbox has no export"),
        (lbx.ApiLimitError("You have exceeded"), BackendError, True, "Labelbox kept failing"),
        (lbx.InvalidQueryError("bad"), BackendError, False, "Labelbox export failed"),
    ],
)
def test_translate(exc: BaseException, kind: type, retryable: bool, starts: str) -> None:
    error = translate(exc, what="export", model_run_id="mr-9", secret="s3cret", run_id="r1")
    assert type(error) is kind
    assert isinstance(error, BackendError) and error.retryable is retryable
    assert error.message.startswith(starts) and "mr-9" in error.message
    assert error.run_id == "r1"


def test_translate_never_shows_the_key() -> None:
    exc = lbx.LabelboxError("request with Bearer s3cret-key failed")
    error = translate(exc, what="export", model_run_id="mr", secret="s3cret-key")
    assert "s3cret-key" not in error.message and "***" in error.message


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("short", "short"),
        ("two\nlines", "two lines"),
        (None, "vmt run r1 failed; see `vmt runs r1`"),
        ("key=abc123 leaked", "key=*** leaked"),
        ("x" * 300, "x" * 252 + "..."),
    ],
)
def test_error_message_is_one_short_line(error: str | None, expected: str) -> None:
    assert error_message(error, run_id="r1", secret="abc123") == expected
