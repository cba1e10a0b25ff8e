"""One way to call Vertex: transient errors retried, SDK errors mapped to ``VmtError``s,
resources labelled with the run id, jobs looked at with delays that grow with their age."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from vmt.backends.gcs import is_transient
from vmt.config import Settings
from vmt.errors import AuthError, BackendError, NotFoundError
from vmt.pipeline.protocols import RunContext
from vmt.retry import Backoff, retry_call

log = logging.getLogger("vmt")

T = TypeVar("T")

RUN_LABEL = "vmt-run-id"
"""Label key on every dataset, training pipeline and batch job a run creates."""

_LABEL_OK = re.compile(r"^[a-z0-9_-]{1,63}$")


def run_label_value(run_id: str) -> str:
    """``run_id`` as a valid label value (lowercase letters, digits, ``_``, ``-``; <= 63)."""
    if _LABEL_OK.match(run_id):
        return run_id
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", run_id.lower()).strip("-")[:54]
    digest = hashlib.sha1(run_id.encode()).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else digest


def run_labels(run_id: str) -> dict[str, str]:
    return {RUN_LABEL: run_label_value(run_id)}


def label_filter(run_id: str) -> str:
    return f'labels.{RUN_LABEL}="{run_label_value(run_id)}"'


def vertex_backoff(settings: Settings) -> Backoff:
    """How one Vertex or GCS call is retried: bounded by ``vertex_retry_deadline_s``."""
    return Backoff(base=1.0, cap=30.0, deadline=settings.vertex_retry_deadline_s)


def find_by_run_label(
    ctx: RunContext,
    list_resources: Callable[[dict[str, str]], Iterable[Any]],
    *,
    parent: str,
    handle: str,
    what: str,
    backoff: Backoff | None = None,
    ended_badly: Callable[[Any], bool] | None = None,
    get_resource: Callable[[str], Any] | None = None,
) -> str | None:
    """The run's resource: the one recorded as ``handle``, else the one carrying the run-id
    label (then recorded), else None. How a run re-attaches after a crash between "create"
    and "persist" instead of creating a second one.

    With ``ended_badly`` (a resource -> True when it failed, was cancelled or expired) and
    ``get_resource`` (name -> resource), such a resource of an earlier attempt is passed over,
    so that a retry makes a new one instead of failing the same way for ever."""
    recorded = ctx.get_handle(handle)
    if recorded is not None:
        if ended_badly is None or get_resource is None:
            return recorded
        current = vertex_call(
            lambda: get_resource(recorded), describe=f"get Vertex {what}", backoff=backoff
        )
        if not ended_badly(current):
            return recorded
        ctx.event(
            f"vertex {what} of an earlier attempt ended unsuccessfully: not reused",
            resource=recorded,
            state=getattr(current.state, "name", str(current.state)),
        )
    found = vertex_call(
        lambda: list(list_resources({"parent": parent, "filter": label_filter(ctx.run_id)})),
        describe=f"list Vertex {what}s",
        backoff=backoff,
    )
    if ended_badly is not None:
        found = [resource for resource in found if not ended_badly(resource)]
    if not found:
        return None
    name = str(found[0].name)
    log.info("found %s %s of run %s by its label", what, name, ctx.run_id)
    ctx.set_handle(handle, name)
    ctx.event(f"vertex {what} re-attached", resource=name)
    return name


def vertex_call(fn: Callable[[], T], *, describe: str, backoff: Backoff | None = None) -> T:
    """Call the SDK, retrying transient failures; raise a VmtError naming ``describe``."""
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    try:
        return retry_call(
            fn,
            is_retryable=is_transient,
            backoff=backoff or Backoff(base=1.0, cap=30.0, deadline=300.0),
            describe=describe,
        )
    except (api_exceptions.Unauthenticated, api_exceptions.PermissionDenied) as exc:
        raise AuthError(f"{describe}: permission denied ({exc.message})") from exc
    except auth_exceptions.GoogleAuthError as exc:
        raise AuthError(f"{describe}: {exc}") from exc
    except api_exceptions.NotFound as exc:
        raise NotFoundError(f"{describe}: not found ({exc.message})") from exc
    except api_exceptions.GoogleAPICallError as exc:
        raise BackendError(
            f"{describe} failed: {exc.message}", retryable=is_transient(exc)
        ) from exc


def create_or_find(
    create: Callable[[], T],
    find: Callable[[], str | None],
    *,
    describe: str,
    backoff: Backoff | None = None,
) -> T | str:
    """Create a resource exactly once though an answer may be lost on the way back.

    ``create`` is never retried blindly: after a transient failure (a reset connection, a
    timeout, a 5xx: Vertex may have acted on the request) ``find`` looks the resource up by the
    run's label first, and only when it is absent is ``create`` called again. Returns what
    ``create`` returned, or the name ``find`` gave. Errors are raised as in `vertex_call`."""
    attempts = 0

    def attempt() -> T | str:
        nonlocal attempts
        attempts += 1
        if attempts > 1 and (found := find()) is not None:
            log.info("%s: an earlier attempt had created %s", describe, found)
            return found
        return create()

    try:
        return vertex_call(attempt, describe=describe, backoff=backoff)
    except BackendError as exc:
        if exc.retryable and (found := find()) is not None:  # the last answer was lost too
            return found
        raise


def vertex_cancel(
    fn: Callable[[], object], *, describe: str, backoff: Backoff | None = None
) -> bool:
    """Ask Vertex to cancel a job: True if asked, False if the job had already finished
    (Vertex answers FailedPrecondition); any other failure raises as in `vertex_call`."""
    from google.api_core import exceptions as api_exceptions

    try:
        vertex_call(fn, describe=describe, backoff=backoff)
    except BackendError as exc:
        if not isinstance(exc.__cause__, api_exceptions.FailedPrecondition):
            raise
        return False
    return True


def poll_delay(settings: Settings, created: Any) -> float:
    """Seconds until the next look at a job created at ``created`` (a datetime, or None when
    Vertex gave none): half its age, at least ``vertex_poll_seconds``, at most
    ``vertex_poll_max_seconds``. Polls stay frequent while a job is young and thin out as it
    runs for hours, the same after a restart (the age comes from Vertex, not from us)."""
    age = 0.0
    if isinstance(created, datetime):
        moment = created if created.tzinfo else created.replace(tzinfo=UTC)
        age = max(0.0, (datetime.now(UTC) - moment).total_seconds())
    return min(max(age / 2, settings.vertex_poll_seconds), settings.vertex_poll_max_seconds)


def fetch_current(settings: Settings, fetch: Callable[[], T], *, describe: str) -> T:
    """One look at a job (transient errors retried within ``vertex_retry_deadline_s``)."""
    return vertex_call(fetch, describe=describe, backoff=vertex_backoff(settings))
