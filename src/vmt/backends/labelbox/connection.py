"""One model run's connection to Labelbox: the client factory and the retrying call wrapper.

The SDK client is built lazily from ``Settings`` (``LABELBOX_API_KEY``, optional
``VMT_LABELBOX_ENDPOINT``), never at import time, with ``enable_experimental=True`` because
``ModelRun.update_status`` is an experimental call. Every SDK call goes through
:meth:`LabelboxConnection.call`: retried with backoff and jitter on rate limits, 5xx, network
errors and timeouts (bounded by ``labelbox_retry_deadline_s``), failing at once on
authentication and not-found errors, and translated into ``VmtError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from vmt.backends.labelbox.sdk_errors import is_retryable, translate
from vmt.config import Settings
from vmt.errors import NotFoundError
from vmt.retry import Backoff, retry_call

T = TypeVar("T")

log = logging.getLogger("vmt")

DEFAULT_ENDPOINT = "https://api.labelbox.com/graphql"


def build_client(settings: Settings) -> Any:
    """A ``labelbox.Client`` for these settings (raises ConfigError when the key is unset)."""
    settings.require("labelbox_api_key")
    assert settings.labelbox_api_key is not None
    import labelbox

    return labelbox.Client(
        api_key=settings.labelbox_api_key.get_secret_value(),
        endpoint=settings.labelbox_endpoint or DEFAULT_ENDPOINT,
        enable_experimental=True,
    )


class LabelboxConnection:
    """The client, the model run and its ontology, fetched once and shared by source and sink."""

    def __init__(
        self,
        settings: Settings,
        model_run_id: str,
        *,
        backoff: Backoff | None = None,
        client_factory: Callable[[Settings], Any] = build_client,
    ) -> None:
        if not model_run_id:
            from vmt.errors import ConfigError

            raise ConfigError("a Labelbox model run id is required (--model-run ID)")
        self.settings = settings
        self.model_run_id = model_run_id
        self.backoff = backoff or Backoff(deadline=settings.labelbox_retry_deadline_s)
        self._client_factory = client_factory
        self._client: Any = None
        self._model_run: Any = None
        self._feature_schema_ids: dict[str, str] | None = None

    @property
    def secret(self) -> str | None:
        key = self.settings.labelbox_api_key
        return key.get_secret_value() if key is not None else None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory(self.settings)
        return self._client

    def call(self, fn: Callable[[], T], what: str, *, run_id: str | None = None) -> T:
        """Run one SDK operation with retries; SDK failures come out as ``VmtError``."""
        log.info("labelbox: %s (model run %s)", what, self.model_run_id)
        try:
            return retry_call(
                fn, is_retryable=is_retryable, backoff=self.backoff, describe=f"labelbox {what}"
            )
        except Exception as exc:
            raise translate(
                exc, what=what, model_run_id=self.model_run_id, secret=self.secret, run_id=run_id
            ) from exc

    def model_run(self) -> Any:
        if self._model_run is None:
            try:
                self._model_run = self.call(
                    lambda: self.client.get_model_run(self.model_run_id), "model run look-up"
                )
            except NotFoundError as exc:
                raise NotFoundError(
                    f"Labelbox has no model run {self.model_run_id} that LABELBOX_API_KEY can "
                    "see: check the model run id and that the key belongs to its workspace",
                    run_id=exc.run_id,
                ) from exc
        return self._model_run

    def feature_schema_ids(self) -> dict[str, str]:
        """Class name -> feature schema id, from the ontology of the model run's model."""
        if self._feature_schema_ids is None:
            model_id = self.model_run().model_id

            def fetch() -> dict[str, str]:
                model = self.client.get_model(model_id)
                ontology = self.client.get_ontology(model.ontology_id)
                return {tool.name: tool.feature_schema_id for tool in ontology.tools()}

            self._feature_schema_ids = self.call(fetch, "ontology look-up")
        return self._feature_schema_ids
