from __future__ import annotations

import pytest

from vmt.backends.registry import trainer_spec
from vmt.backends.vertex.console import vertex_console_url
from vmt.service.dashboard.links import run_links
from vmt.service.dashboard.session import DashboardAccess, same_origin


def test_session_cookie_is_not_the_token_and_changes_with_it() -> None:
    access = DashboardAccess.for_token("tok-123456")
    session = access.new_session()
    assert "tok-123456" not in session
    assert access.session_of(session) is not None
    assert access.session_of("forged") is None
    assert access.session_of(None) is None
    assert DashboardAccess.for_token("other-token").session_of(session) is None


def test_csrf_token_is_bound_to_the_session_and_key() -> None:
    access = DashboardAccess.for_token("tok-123456")
    session = access.new_session()
    token = access.csrf_token(session)
    assert access.check_csrf(session, token)
    assert not access.check_csrf(session, "0" * 64)
    assert not DashboardAccess.for_token("tok-abcdef").check_csrf(session, token)


def test_without_a_token_pages_are_open_but_csrf_still_needs_this_process_key() -> None:
    one, two = DashboardAccess.for_token(None), DashboardAccess.for_token(None)
    assert not one.needs_login
    session = one.session_of(None)
    assert session is not None
    assert not two.check_csrf(session, one.csrf_token(session))


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        (None, "127.0.0.1:8000", True),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://evil.example", "127.0.0.1:8000", False),
        ("null", "127.0.0.1:8000", False),
    ],
)
def test_same_origin(origin: str | None, host: str, same: bool) -> None:
    assert same_origin(origin, host) is same


def test_vertex_console_links() -> None:
    name = "projects/p1/locations/us-central1/trainingPipelines/123"
    assert vertex_console_url(name) == (
        "https://console.cloud.google.com/vertex-ai/locations/us-central1/training/123?project=p1"
    )
    assert vertex_console_url("not/a/resource") is None
    links = run_links(
        {"model_run_id": "mr-1"},
        {"vertex.model": "projects/p1/locations/eu/models/9", "vertex.dataset": "junk"},
        trainer_spec("vertex"),
    )
    assert [(link.label, link.text) for link in links] == [
        ("Labelbox model run", "mr-1"),
        ("Vertex model", "9"),
    ]


def test_sessions_are_random_per_login_expire_and_end_at_logout() -> None:
    now = [1_000_000.0]
    access = DashboardAccess.for_token("tok-123456", session_hours=1)
    access.clock = lambda: now[0]
    one, two = access.new_session(), access.new_session()
    assert one != two
    assert access.session_of(one) != access.session_of(two)
    access.revoke(one)
    assert access.session_of(one) is None
    assert access.session_of(two) is not None
    now[0] += 3601
    assert access.session_of(two) is None  # expired
    forged = two.rsplit(".", 2)[0] + f".{int(now[0]) + 3600}." + two.rsplit(".", 1)[1]
    assert access.session_of(forged) is None  # a later expiry without a new signature
