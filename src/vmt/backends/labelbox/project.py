"""One Labelbox workspace's client, and one project in it: the SDK project, its ontology's
class names, its batches.

Every SDK call goes through :meth:`LabelboxWorkspace.call`: retried with backoff on rate
limits, 5xx, network errors and timeouts (``sdk_errors.is_retryable``), and translated into
``VmtError`` with a message that names the project or dataset (never the API key).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from vmt.backends.labelbox.connection import build_client
from vmt.backends.labelbox.sdk_errors import is_retryable, redact
from vmt.config import Settings
from vmt.errors import AuthError, BackendError, ConfigError, NotFoundError, VmtError
from vmt.retry import Backoff, retry_call

T = TypeVar("T")
log = logging.getLogger("vmt")


class LabelboxWorkspace:
    """The client of one Labelbox workspace (built once, from the settings), and the call
    wrapper that names what an operation was about (``subject``) when it fails."""

    def __init__(
        self,
        settings: Settings,
        *,
        backoff: Backoff | None = None,
        client_factory: Callable[[Settings], Any] = build_client,
    ) -> None:
        self.settings = settings
        self.backoff = backoff or Backoff(deadline=settings.labelbox_retry_deadline_s)
        self._client_factory = client_factory
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory(self.settings)
        return self._client

    def call(self, fn: Callable[[], T], what: str, *, subject: str = "the workspace") -> T:
        """Run one SDK operation with retries; failures come out as ``VmtError`` naming
        ``subject`` (e.g. ``dataset D``)."""
        log.info("labelbox: %s (%s)", what, subject)
        try:
            return retry_call(
                fn, is_retryable=is_retryable, backoff=self.backoff, describe=f"labelbox {what}"
            )
        except VmtError:
            raise
        except Exception as exc:
            raise self._translate(exc, what, subject) from exc

    def _translate(self, exc: BaseException, what: str, subject: str) -> VmtError:
        from lbox import exceptions as lbx

        key = self.settings.labelbox_api_key
        detail = redact(" ".join(str(exc).split())[:300], key.get_secret_value() if key else None)
        if isinstance(exc, lbx.AuthenticationError | lbx.AuthorizationError):
            return AuthError(
                f"LABELBOX_API_KEY was refused during {what} on {subject}: use a key of the "
                f"workspace that owns the {subject.split()[0]}"
            )
        if isinstance(exc, lbx.ResourceNotFoundError):
            return NotFoundError(
                f"Labelbox has no {subject} that LABELBOX_API_KEY can see ({what}: {detail})"
            )
        return BackendError(
            f"Labelbox {what} failed on {subject}: {type(exc).__name__}: {detail}",
            retryable=is_retryable(exc),
        )


class LabelboxProject(LabelboxWorkspace):
    """The client and one project, fetched once."""

    def __init__(
        self,
        settings: Settings,
        project_id: str,
        *,
        backoff: Backoff | None = None,
        client_factory: Callable[[Settings], Any] = build_client,
    ) -> None:
        if not project_id:
            raise ConfigError("a Labelbox project id is required (--project ID)")
        super().__init__(settings, backoff=backoff, client_factory=client_factory)
        self.project_id = project_id
        self._project: Any = None
        self._classes: set[str] | None = None

    def call(self, fn: Callable[[], T], what: str, *, subject: str | None = None) -> T:
        """Run one SDK operation on the project with retries; failures come out as
        ``VmtError`` naming the project (or ``subject``)."""
        return super().call(fn, what, subject=subject or f"project {self.project_id}")

    def project(self) -> Any:
        if self._project is None:
            self._project = self.call(
                lambda: self.client.get_project(self.project_id), "project look-up"
            )
        return self._project

    def class_names(self) -> set[str]:
        """The names of the project ontology's tools (what pre-labels may name)."""
        if self._classes is None:
            project = self.project()

            def fetch() -> set[str]:
                ontology = project.ontology()
                return {tool.name for tool in ontology.tools()} if ontology is not None else set()

            self._classes = self.call(fetch, "project ontology look-up")
        return self._classes

    def batch_names(self) -> set[str]:
        """Names of the project's batches (all pages)."""
        project = self.project()
        return self.call(lambda: {batch.name for batch in project.batches()}, "batch listing")
