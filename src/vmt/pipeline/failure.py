"""The one-line message of a failed run: what failed and what to do, <= 255 characters.

Labelbox shows it on the model run (its ``error_message`` is limited to 255 characters), the CLI
prints it, ``vmt runs show`` lists it. Secrets never reach it: messages come from our own
``VmtError``s, whose texts are written without them.
"""

from __future__ import annotations

from vmt.errors import AuthError, BackendError, ConfigError, InputError, VmtError
from vmt.pipeline.protocols import Stage

MAX_MESSAGE = 255

_STAGE_NAMES = {
    Stage.EXPORT: "Export",
    Stage.PREPARE: "Data preparation",
    Stage.TRAIN: "Training",
    Stage.PREDICT: "Prediction",
    Stage.EVALUATE: "Evaluation",
    Stage.PUBLISH: "Publishing results",
}


def storage_trouble(exc: BaseException) -> str | None:
    """ "full" or "read-only" when ``exc`` says the disk under the state directory is full or
    read-only (an OSError or an SQLite error), else None."""
    import errno
    import sqlite3

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "full"
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return "read-only"
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if "disk is full" in text:
            return "full"
        if "readonly" in text or "read-only" in text:
            return "read-only"
    return None


def storage_message(exc: BaseException, state_dir: object) -> str:
    """What to tell the user when `storage_trouble` is not None."""
    trouble = storage_trouble(exc)
    cause = "No space left on device" if trouble == "full" else "Read-only file system"
    return (
        f"the state directory {state_dir} is {trouble} ({cause}: {' '.join(str(exc).split())});"
        " free space (or make it writable), then vmt resume the run"
    )


def failure_message(stage: Stage | None, exc: BaseException, *, run_id: str) -> str:
    what = f"{_STAGE_NAMES[stage]} failed" if stage is not None else "Run failed"
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if storage_trouble(exc) is not None:
        detail = storage_message(exc, "(VMT_STATE_DIR)")
    elif not isinstance(exc, VmtError):
        detail = f"internal error ({type(exc).__name__}: {detail})"
    hint = _hint(exc, run_id)
    head = f"{what}: "
    tail = f". {hint}"
    room = MAX_MESSAGE - len(head) - len(tail)
    if len(detail) > room:
        detail = detail[: max(room - 1, 0)].rstrip() + "…"
    return (head + detail.rstrip(".") + tail)[:MAX_MESSAGE]


def _hint(exc: BaseException, run_id: str) -> str:
    if isinstance(exc, InputError):
        return f"Fix the data, then start a new run (details: vmt runs show {run_id})"
    if isinstance(exc, ConfigError):
        return f"Fix the setting, then vmt resume {run_id}"
    if isinstance(exc, AuthError):
        return f"Check the credentials, then vmt resume {run_id}"
    if isinstance(exc, BackendError) and exc.retryable:
        return f"The service kept failing; vmt resume {run_id} later"
    if isinstance(exc, VmtError):
        return f"See vmt runs show {run_id}; fix the cause, then vmt resume {run_id}"
    return f"Please report it with the output of vmt runs show {run_id}"
