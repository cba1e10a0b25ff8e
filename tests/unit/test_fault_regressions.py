"""Faults the fault campaign (tests/faults/) found, each fixed as a kind: the inputs or answers
that broke us, and their neighbours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vmt.errors import InputError
from vmt.formats import coco

GOOD_GT: dict[str, Any] = {
    "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
    "categories": [{"id": 1, "name": "car"}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
}


@pytest.mark.parametrize("category_id", [{"id": 1}, [1], None, "1", 1.5, 99])
def test_a_coco_category_id_of_any_json_type_is_reported_not_raised(
    tmp_path: Path, category_id: Any
) -> None:
    doc = json.loads(json.dumps(GOOD_GT))
    doc["annotations"].append(
        {"id": 2, "image_id": 1, "category_id": category_id, "bbox": [0, 0, 2, 2]}
    )
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(doc))
    gt = coco.read_ground_truth(path)
    assert [r.reason for r in gt.rejections] == ["unknown_class"]
    assert len(gt.samples[0].boxes) == 1


@pytest.mark.parametrize("key", ["categories", "annotations"])
@pytest.mark.parametrize("value", [5, "x", {"a": 1}, True])
def test_a_coco_section_of_the_wrong_type_is_a_clear_input_error(
    tmp_path: Path, key: str, value: Any
) -> None:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({**GOOD_GT, key: value}))
    with pytest.raises(InputError, match=f"'{key}' must be a list"):
        coco.read_ground_truth(path)


@pytest.mark.parametrize(
    ("message", "retryable"),
    [
        ("429 Too Many Requests", True),  # a gateway's rate limit, not Labelbox's wording
        ("408 Request Timeout", True),
        ("Failed to parse response as JSON: <html>502</html>", True),  # a proxy's error page
        ("400 Bad Request", False),
        ("403 Forbidden", False),
    ],
)
def test_a_labelbox_answer_from_a_gateway_is_retried_as_its_status_says(
    message: str, retryable: bool
) -> None:
    from lbox import exceptions as lbx

    from vmt.backends.labelbox.sdk_errors import is_retryable

    assert is_retryable(lbx.LabelboxError(message, None)) is retryable


def test_cloud_storage_failures_that_outlast_retries_name_cloud_storage() -> None:
    from google.api_core import exceptions as api_exceptions

    from vmt.backends.gcs import gcs_call, is_transient
    from vmt.errors import BackendError
    from vmt.retry import Backoff

    unavailable = api_exceptions.ServiceUnavailable("503")
    gave_up = api_exceptions.RetryError("Timeout of 120.0s exceeded", unavailable)
    assert is_transient(gave_up)
    calls = []

    def down() -> None:
        calls.append(1)
        raise gave_up

    with pytest.raises(BackendError) as info:
        gcs_call(
            down, backoff=Backoff(base=0, cap=0, max_attempts=3), describe="list staged images"
        )
    assert len(calls) == 3
    assert info.value.retryable
    assert info.value.message.startswith("Cloud Storage: list staged images failed: RetryError")


@pytest.mark.parametrize(
    ("exc", "trouble"),
    [
        (OSError(28, "No space left on device"), "full"),
        (OSError(30, "Read-only file system"), "read-only"),
        (__import__("sqlite3").OperationalError("database or disk is full"), "full"),
        (
            __import__("sqlite3").OperationalError("attempt to write a readonly database"),
            "read-only",
        ),
        (OSError(2, "No such file or directory"), None),
    ],
)
def test_a_full_or_read_only_state_dir_is_named_not_an_internal_error(
    exc: BaseException, trouble: str | None
) -> None:
    from vmt.pipeline.failure import failure_message, storage_trouble

    assert storage_trouble(exc) == trouble
    message = failure_message(None, exc, run_id="r1")
    if trouble is None:
        assert "internal error" in message
    else:
        assert f"the state directory (VMT_STATE_DIR) is {trouble}" in message
        assert "internal error" not in message and len(message) <= 255


@pytest.mark.parametrize("stray", [b"{", b"{ ", b'{"a":'])
def test_a_stray_first_line_does_not_swallow_the_rows_after_it(
    tmp_path: Path, stray: bytes
) -> None:
    from vmt.formats.json_records import Malformed, read_records

    rows = [b'{"id": "a", "n": 1}', b'{"id": "b", "n": 2}']
    path = tmp_path / "rows.ndjson"
    path.write_bytes(b"\n".join([stray, *rows]) + b"\n")
    read = list(read_records(path))
    good = [(n, r) for n, r in read if not isinstance(r, Malformed)]
    assert good == [(2, {"id": "a", "n": 1}), (3, {"id": "b", "n": 2})], read
    assert [n for n, r in read if isinstance(r, Malformed)] == [1]


@pytest.mark.parametrize(
    "text",
    [
        "Uvicorn running on \x1b[1m%s://%s:%d\x1b[0m (Press CTRL+C to quit)",
        "GET http://[::1/a.png?X-Goog-Signature=s3cret",
        "see https://u:s3cret@[bad/x?sig=s3cret",
    ],
)
def test_the_log_redactor_never_raises_on_url_like_text(text: str) -> None:
    import logging

    from vmt.logs import SecretRedactor

    rec = logging.makeLogRecord({"msg": text, "color_message": text})
    assert SecretRedactor(["s3cret"]).filter(rec)
    assert "s3cret" not in rec.getMessage() and "s3cret" not in rec.__dict__["color_message"]
