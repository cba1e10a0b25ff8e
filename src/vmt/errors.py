"""The exception tree. Every error a user may see is a `VmtError` with a readable message.

SDK and I/O errors are translated into these at the boundary (``raise ... from exc``) so the CLI,
the service and the Labelbox status all show one line that says what failed and what to do.
"""

from __future__ import annotations


class VmtError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, message: str, *, run_id: str | None = None, stage: str | None = None):
        super().__init__(message)
        self.message = message
        self.run_id = run_id
        self.stage = stage

    def __str__(self) -> str:
        return self.message


class ConfigError(VmtError):
    """A missing or invalid setting; the message names the setting."""


class InputError(VmtError):
    """The user's data or arguments cannot be used (bad file, no usable rows, limits broken)."""


class BackendError(VmtError):
    """An external service failed. ``retryable`` says whether trying again may help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        run_id: str | None = None,
        stage: str | None = None,
    ):
        super().__init__(message, run_id=run_id, stage=stage)
        self.retryable = retryable


class AuthError(BackendError):
    """Credentials are missing or rejected: never retried."""


class NotFoundError(BackendError):
    """The named external resource does not exist: never retried."""


class RunConflictError(VmtError):
    """Another process holds the run's lease."""


class RunCancelled(VmtError):
    """The run was cancelled while a stage was working."""
