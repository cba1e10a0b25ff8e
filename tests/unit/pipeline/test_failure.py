import pytest

from vmt.errors import AuthError, BackendError, ConfigError, InputError, VmtError
from vmt.pipeline.failure import MAX_MESSAGE, failure_message
from vmt.pipeline.protocols import Stage


@pytest.mark.parametrize(
    ("stage", "exc", "says"),
    [
        # bad data: what failed and that a new run is needed
        (Stage.PREPARE, InputError("every row was rejected"), "Data preparation failed: every row"),
        (Stage.PREPARE, InputError("x"), "Fix the data"),
        # a missing setting: fix and resume
        (Stage.TRAIN, ConfigError("missing VMT_GCS_BUCKET"), "vmt resume r1"),
        # rejected credentials
        (Stage.EXPORT, AuthError("401"), "Check the credentials"),
        # a service that kept failing after the retries
        (Stage.PUBLISH, BackendError("503", retryable=True), "later"),
        # a bug: says so and where to look
        (Stage.EVALUATE, ZeroDivisionError("by zero"), "internal error (ZeroDivisionError"),
        (None, VmtError("no trainer"), "Run failed: no trainer"),
    ],
)
def test_message_says_what_failed_and_what_to_do(
    stage: Stage | None, exc: BaseException, says: str
) -> None:
    message = failure_message(stage, exc, run_id="r1")
    assert says in message
    assert len(message) <= MAX_MESSAGE


def test_long_message_is_cut_but_keeps_the_advice() -> None:
    message = failure_message(Stage.TRAIN, VmtError("x" * 2000), run_id="20250101-000000-abcdef")
    assert len(message) <= 255
    assert message.startswith("Training failed: xxx")
    assert message.endswith("vmt resume 20250101-000000-abcdef")
    assert "…" in message


def test_multiline_errors_become_one_line() -> None:
    assert "\n" not in failure_message(Stage.TRAIN, VmtError("a\nb\n  c"), run_id="r")
