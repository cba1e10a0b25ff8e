"""The dashboard's pages (server-rendered Jinja2, every value autoescaped) and its actions.

GET  /ui/                      runs: filter by state, paged
GET  /ui/runs/{id}             one run; polls /ui/runs/{id}/live while it moves
GET  /ui/runs/{id}/report      the run's HTML report
POST /ui/runs/{id}/cancel      (CSRF token)
POST /ui/runs/{id}/resume      (CSRF token)
GET  /ui/runs/{id}/rows         evaluated rows: filter (?kind, class, confidence), paged
GET  /ui/runs/{id}/row?data_row=X   one row: image, every box, its metrics
GET  /ui/runs/{id}/image?data_row=X&size=thumb|full   the row's image (resized, cached)
GET  /ui/runs/{id}/label-errors.csv   likely label errors as a ranking.csv
GET  /ui/compare?run=A&run=B   two or more runs side by side
GET  /ui/compare/rows?run=A&run=B[&change=fixed|broke][&data_row=X]   rows in both, side by side
GET/POST /ui/login, POST /ui/logout
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from vmt.errors import VmtError
from vmt.human_numbers import format_duration, format_number
from vmt.pipeline.store import RunState, RunStore, UnknownRunError
from vmt.service.dashboard.actions import RunActions
from vmt.service.dashboard.compare import compare_runs
from vmt.service.dashboard.rejected_rows import run_rejected_rows
from vmt.service.dashboard.row_compare import compare_rows
from vmt.service.dashboard.row_images import SIZES, RemoteImages
from vmt.service.dashboard.row_pages import (
    likely_label_errors,
    ranking_csv,
    row_image,
    row_view,
    rows_view,
)
from vmt.service.dashboard.run_pages import live_status, report_path, run_detail, runs_page
from vmt.service.dashboard.run_rows import RunRows
from vmt.service.dashboard.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    DashboardAccess,
    same_origin,
)

PREFIX = "/ui"
_PACKAGE = Path(__file__).resolve().parents[1]
TEMPLATES_DIR = _PACKAGE / "templates"
STATIC_DIR = _PACKAGE / "static"
_NOTICES = {
    "cancelled": "Run cancelled.",
    "cancel-requested": "Cancel requested: the process advancing the run stops at its next check.",
    "resumed": "Run resumed.",
    "logged-out": "Signed out.",
}
_REPORT_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
)
_PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def template_environment() -> jinja2.Environment:
    """Jinja2 with autoescape on for every template (values are user data)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = format_number
    env.filters["duration"] = format_duration
    env.filters["money"] = lambda v: "–" if v is None else f"${v:,.2f}"
    env.filters["when"] = lambda v: (
        "–" if not v else str(v).replace("T", " ").replace("+00:00", " UTC")
    )
    env.filters["urlpart"] = lambda v: quote(str(v), safe="")
    return env


class _LoginRequired(Exception):
    pass


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _safe_next(target: str | None) -> str:
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


def dashboard_router(
    *,
    store: RunStore,
    actions: RunActions,
    access: DashboardAccess,
    title: str = "vmt",
    remote_images: RemoteImages | None = None,
) -> APIRouter:
    """The dashboard's routes over ``store``; ``actions`` does what its buttons ask;
    ``remote_images`` reads the runs' own Cloud Storage images (None: local images only)."""
    env = template_environment()
    router = APIRouter(include_in_schema=False)
    run_rows = RunRows(store, remote_images)

    def render(request: Request, name: str, session: str | None, **values: Any) -> HTMLResponse:
        notice = _NOTICES.get(request.query_params.get("done", ""))
        status = int(values.pop("status", 200))
        html = env.get_template(name).render(
            title=title,
            prefix=PREFIX,
            csrf=access.csrf_token(session) if session else "",
            csrf_field=CSRF_FIELD,
            needs_login=access.needs_login,
            notice=notice,
            **values,
        )
        return HTMLResponse(
            html,
            status_code=status,
            headers={"Content-Security-Policy": _PAGE_POLICY, "Cache-Control": "no-store"},
        )

    def session_or_login(request: Request) -> str:
        session = access.session_of(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise _LoginRequired
        return session

    def login_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PREFIX}/login?next={quote(target, safe='')}", status_code=303)

    def error_page(
        request: Request, session: str | None, status: int, message: str
    ) -> HTMLResponse:
        return render(request, "error.html", session, message=message, status=status)

    @router.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(PREFIX + "/", status_code=307)

    @router.get(PREFIX + "/login")
    async def login_form(request: Request, next: str | None = None) -> Response:
        if not access.needs_login:
            return RedirectResponse(_safe_next(next), status_code=303)
        return render(request, "login.html", None, next=_safe_next(next), failed=False)

    @router.post(PREFIX + "/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        target = _safe_next(form.get("next"))
        if not same_origin(request.headers.get("origin"), request.headers.get("host")):
            return error_page(request, None, 403, "This form was sent from another site.")
        if not access.check_token(form.get("token", "")):
            return render(request, "login.html", None, next=target, failed=True, status=401)
        access.revoke(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            access.new_session(),
            max_age=int(access.lifetime_s),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @router.post(PREFIX + "/logout")
    async def logout(request: Request) -> Response:
        access.revoke(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(f"{PREFIX}/login?done=logged-out", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get(PREFIX + "/")
    async def runs(
        request: Request,
        state: str | None = Query(None),
        page: int = Query(1, ge=1, le=1_000_000),
    ) -> Response:
        try:
            session = session_or_login(request)
        except _LoginRequired:
            return login_redirect(request)
        if state not in (None, "", *(s.value for s in RunState)):
            return error_page(request, session, 400, f"unknown state {state!r}")
        view = await run_in_threadpool(runs_page, store, state=state or None, page=page)
        return render(request, "runs.html", session, view=view)

    @router.get(PREFIX + "/runs/{run_id}")
    async def run(request: Request, run_id: str) -> Response:
        try:
            session = session_or_login(request)
        except _LoginRequired:
            return login_redirect(request)
        try:
            detail = await run_in_threadpool(run_detail, store, run_id)
        except UnknownRunError:
            return error_page(request, session, 404, f"no run {run_id}")
        return render(request, "run.html", session, run=detail)

    @router.get(PREFIX + "/runs/{run_id}/live")
    async def live(request: Request, run_id: str) -> Response:
        if access.session_of(request.cookies.get(SESSION_COOKIE)) is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        try:
            status = await run_in_threadpool(live_status, store, run_id)
        except UnknownRunError:
            return JSONResponse({"error": f"no run {run_id}"}, status_code=404)
        return JSONResponse(status, headers={"Cache-Control": "no-store"})

    @router.get(PREFIX + "/runs/{run_id}/report")
    async def report(request: Request, run_id: str) -> Response:
        try:
            session = session_or_login(request)
        except _LoginRequired:
            return login_redirect(request)
        try:
            store.get_run(run_id)
        except UnknownRunError:
            return error_page(request, session, 404, f"no run {run_id}")
        path = report_path(store, run_id)
        if path is None:
            return error_page(request, session, 404, f"run {run_id} has no report yet")
        return FileResponse(
            path, media_type="text/html", headers={"Content-Security-Policy": _REPORT_POLICY}
        )

    async def act(request: Request, run_id: str, what: str) -> Response:
        try:
            session = session_or_login(request)
        except _LoginRequired:
            return error_page(request, None, 401, "Sign in first.")
        form = await _form(request)
        if not same_origin(
            request.headers.get("origin"), request.headers.get("host")
        ) or not access.check_csrf(session, form.get(CSRF_FIELD, "")):
            return error_page(request, session, 403, "This action was not sent from this page.")
        try:
            if what == "cancel":
                message = await run_in_threadpool(actions.cancel, run_id)
                done = "cancelled" if message == "run cancelled" else "cancel-requested"
            else:
                await run_in_threadpool(actions.resume, run_id)
                done = "resumed"
        except UnknownRunError:
            return error_page(request, session, 404, f"no run {run_id}")
        except VmtError as exc:
            return error_page(request, session, 409, exc.message)
        return RedirectResponse(f"{PREFIX}/runs/{quote(run_id, safe='')}?done={done}", 303)

    @router.post(PREFIX + "/runs/{run_id}/cancel")
    async def cancel(request: Request, run_id: str) -> Response:
        return await act(request, run_id, "cancel")

    @router.post(PREFIX + "/runs/{run_id}/resume")
    async def resume(request: Request, run_id: str) -> Response:
        return await act(request, run_id, "resume")

    @router.get(PREFIX + "/compare")
    async def compare(request: Request, run: list[str] = Query(default=[])) -> Response:
        try:
            session = session_or_login(request)
        except _LoginRequired:
            return login_redirect(request)
        try:
            comparison = await run_in_threadpool(compare_runs, store, run)
        except UnknownRunError as exc:
            return error_page(request, session, 404, exc.message)
        except VmtError as exc:
            return error_page(request, session, 400, exc.message)
        return render(request, "compare.html", session, cmp=comparison)

    async def signed_in_call(
        request: Request, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> tuple[str, Any] | Response:
        """(session, ``fn(*args, **kwargs)`` run in a thread), or the page to answer instead:
        the login form, 404 for an unknown run, 400 for any other ``VmtError``."""
        try:
            session = session_or_login(request)
        except _LoginRequired:
            return login_redirect(request)
        try:
            return session, await run_in_threadpool(fn, *args, **kwargs)
        except UnknownRunError as exc:
            return error_page(request, session, 404, exc.message)
        except VmtError as exc:
            return error_page(request, session, 400, exc.message)

    @router.get(PREFIX + "/compare/rows")
    async def compare_rows_page(
        request: Request,
        run: list[str] = Query(default=[]),
        change: str = Query("all"),
        data_row: str | None = Query(None),
        page: int = Query(1, ge=1, le=10_000_000),
    ) -> Response:
        done = await signed_in_call(
            request, compare_rows, store, run_rows, run, change=change, data_row=data_row,
            page=page,
        )  # fmt: skip
        if isinstance(done, Response):
            return done
        return render(request, "compare_rows.html", done[0], cmp=done[1])

    @router.get(PREFIX + "/runs/{run_id}/rows")
    async def rows(
        request: Request,
        run_id: str,
        kind: str = Query("errors"),
        cls: str | None = Query(None, alias="class"),
        confidence: float | None = Query(None),
        page: int = Query(1, ge=1, le=10_000_000),
    ) -> Response:
        done = await signed_in_call(
            request, rows_view, store, run_rows, run_id,
            kind=kind, cls=cls, confidence=confidence, page=page,
        )  # fmt: skip
        if isinstance(done, Response):
            return done
        return render(request, "rows.html", done[0], view=done[1])

    @router.get(PREFIX + "/runs/{run_id}/rejected")
    async def rejected(
        request: Request,
        run_id: str,
        reason: str | None = Query(None, max_length=100),
        page: int = Query(1, ge=1, le=10_000_000),
    ) -> Response:
        done = await signed_in_call(
            request, run_rejected_rows, store, run_id, reason=reason, page=page
        )
        if isinstance(done, Response):
            return done
        return render(request, "rejected.html", done[0], view=done[1], run_id=run_id)

    @router.get(PREFIX + "/runs/{run_id}/row")
    async def row(
        request: Request,
        run_id: str,
        data_row: str = Query(...),
        confidence: float | None = Query(None),
    ) -> Response:
        done = await signed_in_call(
            request, row_view, store, run_rows, run_id, data_row, confidence
        )
        if isinstance(done, Response):
            return done
        session, view = done
        if view is None:
            return error_page(request, session, 404, f"run {run_id} did not evaluate {data_row}")
        return render(request, "row.html", session, view=view)

    @router.get(PREFIX + "/runs/{run_id}/label-errors.csv")
    async def label_errors(request: Request, run_id: str) -> Response:
        done = await signed_in_call(request, likely_label_errors, run_rows, run_id)
        if isinstance(done, Response):
            return done
        name = f"label-errors-{quote(run_id, safe='')}.csv"
        return Response(
            ranking_csv(done[1]),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @router.get(PREFIX + "/runs/{run_id}/image")
    async def image(
        request: Request, run_id: str, data_row: str = Query(...), size: str = Query("thumb")
    ) -> Response:
        if access.session_of(request.cookies.get(SESSION_COOKIE)) is None:
            return Response("login required", status_code=401, media_type="text/plain")
        if size not in SIZES:
            return Response("unknown size", status_code=400, media_type="text/plain")
        try:
            path = await run_in_threadpool(row_image, store, run_rows, run_id, data_row, size)
        except UnknownRunError:
            return Response("no such run", status_code=404, media_type="text/plain")
        except VmtError as exc:
            return Response(exc.message, status_code=400, media_type="text/plain")
        if path is None:
            return Response("no image here", status_code=404, media_type="text/plain")
        return FileResponse(
            path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
        )

    return router


def install_dashboard(
    app: FastAPI,
    *,
    store: RunStore,
    actions: RunActions,
    token: str | None,
    session_hours: float = 8.0,
    remote_images: RemoteImages | None = None,
) -> None:
    """Add the dashboard's routes and its static files (CSS, the live-progress script)."""
    access = DashboardAccess.for_token(token, session_hours=session_hours)
    app.include_router(
        dashboard_router(store=store, actions=actions, access=access, remote_images=remote_images)
    )
    app.mount(PREFIX + "/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
