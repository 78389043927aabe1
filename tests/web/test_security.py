"""The coordinator pages against abuse: return paths, sign-in throttling, sessions, the secret key,
the summary form's validation and ids beyond the database's range."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from matcher.app import create_app
from matcher.db import utcnow
from matcher.extensions import state
from matcher.i18n import translate
from matcher.models import AuditEvent, SignInThrottle, TrainingSummary, WebSession
from matcher.services import sign_in as throttle
from matcher.services.summary_links import SummaryLink, make_token
from matcher.services.users import create_user
from tests import factories
from tests.factories import World
from tests.web.conftest import PASSWORD, Review, csrf, sign_in

EVIL = "evil.example"

# ---------------------------------------------------------------------------------------------
# Redirects after sign-in


OFF_SITE = [
    f"//{EVIL}",
    f"///{EVIL}",
    f"/\\{EVIL}",
    f"/%5C{EVIL}",
    f"/%5c{EVIL}",
    f"/%09/{EVIL}",
    f"/\t/{EVIL}",
    f"/\n/{EVIL}",
    f"/ /{EVIL}",
    f"/\u3000/{EVIL}",
    f"/\u2028/{EVIL}",
    f"/\x00/{EVIL}",
    f"/\x85/{EVIL}",
    f"%2F%2F{EVIL}",
    f"/%2F{EVIL}",
    f"/%2f%2f{EVIL}",
    f"/%252F%252F{EVIL}",  # decoded twice
    f"/%25252F%25252F{EVIL}",
    f"/%E2%80%A8/{EVIL}",
    f"https://{EVIL}/",
    f"HTTPS:{EVIL}",
    "javascript:alert(1)",
    f" /{EVIL}",
    f"\t//{EVIL}",
    "/runs ",
    "/runs\r\nSet-Cookie: planted=1",
    "/runs%0D%0ASet-Cookie:%20planted=1",
    "/" + "a" * 3000,
]


def _post_sign_in(client: FlaskClient, email: str, password: str, **form: str) -> TestResponse:
    token = csrf(client.get("/").get_data(as_text=True))
    return client.post(
        "/sign-in", data={"email": email, "password": password, "csrf_token": token, **form}
    )


@pytest.mark.parametrize("target", OFF_SITE)
def test_a_return_path_a_browser_could_read_as_elsewhere_becomes_the_overview(
    client: FlaskClient, review: Review, target: str
) -> None:
    form = client.get("/", query_string={"next": target})
    assert form.status_code == 200
    assert 'name="next"' not in form.get_data(as_text=True)  # never echoed into the page

    response = _post_sign_in(client, review.email, PASSWORD, next=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert "planted" not in str(response.headers)


@pytest.mark.parametrize("target", ["/runs/5?sort=unit&page=2", "/runs/new", "/?x=a+b"])
def test_a_path_of_this_site_is_kept(client: FlaskClient, review: Review, target: str) -> None:
    form = client.get("/", query_string={"next": target}).get_data(as_text=True)
    assert f'name="next" value="{target.replace("&", "&amp;")}"' in form
    response = _post_sign_in(client, review.email, PASSWORD, next=target)
    assert response.headers["Location"] == target


# ---------------------------------------------------------------------------------------------
# Sign-in throttling


def _audit(session: Session, action: str) -> list[AuditEvent]:
    session.rollback()
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def _end_locks(session: Session) -> None:
    """As if the wait were over (no sleeping)."""
    session.execute(update(SignInThrottle).values(locked_until=utcnow() - timedelta(seconds=1)))
    session.commit()


def test_five_failures_lock_the_account_even_for_its_right_password(
    client: FlaskClient, session: Session, review: Review
) -> None:
    for _ in range(throttle.ACCOUNT_FREE_FAILURES):
        assert _post_sign_in(client, review.email, "wrong-password-123").status_code == 401
    locked = _post_sign_in(client, review.email, PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) == 30
    assert "登录失败次数过多，请 1 分钟后再试" in locked.get_data(as_text=True)
    assert client.get(f"/runs/{review.run.id}").status_code == 303  # not signed in

    failures = _audit(session, "sign_in.failed")
    assert len(failures) == throttle.ACCOUNT_FREE_FAILURES
    assert failures[0].data == {"email": review.email, "address": "127.0.0.1"}
    assert failures[0].alliance_id == review.world.alliance.id
    (lock,) = _audit(session, "sign_in.locked")
    assert lock.data["scope"] == "account" and lock.data["failures"] == 5

    _end_locks(session)
    assert _post_sign_in(client, review.email, PASSWORD).status_code == 303
    session.rollback()
    account = select(SignInThrottle).where(SignInThrottle.scope == "account")
    assert session.scalars(account).all() == []  # success starts the count over


def test_an_unknown_email_is_throttled_and_answered_like_a_known_one(
    client: FlaskClient, session: Session, review: Review, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matcher.services import users

    hashed: list[str] = []
    real_check = users.check_password_hash
    monkeypatch.setattr(
        users, "check_password_hash", lambda h, p: hashed.append(p) or real_check(h, p)
    )
    answers = {}
    for email in (review.email, "nobody@emca.example.cn"):
        statuses = [
            _post_sign_in(client, email, "wrong-password-123").status_code for _ in range(5)
        ]
        refused = _post_sign_in(client, email, "wrong-password-123")
        body = refused.get_data(as_text=True).replace(email, "EMAIL")
        answers[email] = (statuses, refused.status_code, refused.headers["Retry-After"], body)
    assert answers[review.email] == answers["nobody@emca.example.cn"]
    assert answers[review.email][:3] == ([401] * 5, 429, "30")
    assert len(hashed) == 10  # the hash ran for the unknown email too, never while locked
    assert len(_audit(session, "sign_in.failed")) == 10
    assert len(_audit(session, "sign_in.locked")) == 2


@pytest.mark.parametrize("email", ["coord\x00@emca.example.cn", "coord@emca.example.cn\r\nX: y"])
@pytest.mark.usefixtures("review")
def test_control_characters_in_the_email_are_a_failed_attempt_never_a_5xx(
    client: FlaskClient, session: Session, email: str
) -> None:
    assert _post_sign_in(client, email, PASSWORD).status_code == 401
    (failure,) = _audit(session, "sign_in.failed")
    assert failure.data["email"] == email.replace("\x00", "").replace("\r\n", "").lower()


def test_the_wait_doubles_with_each_failure_up_to_fifteen_minutes(session: Session) -> None:
    now = utcnow()
    waits: list[float | None] = []
    for _ in range(12):
        gate = throttle.claim_attempt(session, email="a@b.cn", address="10.0.0.1", now=now)
        assert not gate.refused
        if not gate.locks:
            waits.append(None)
            continue
        (lock,) = gate.locks
        waits.append((lock.until - now).total_seconds())
        # Within the lock the next attempt waits, and is not counted; then its turn comes.
        almost = lock.until - timedelta(seconds=1)
        assert (
            throttle.claim_attempt(
                session, email="a@b.cn", address="10.0.0.1", now=almost
            ).retry_after
            == 1
        )
        now = lock.until
    assert waits == [None] * 4 + [30, 60, 120, 240, 480, 900, 900, 900]
    row = session.get_one(SignInThrottle, ("account", "a@b.cn"))
    assert row.failures == 12
    # Fifteen quiet minutes after the last lock ended, the count starts over.
    gate = throttle.claim_attempt(
        session, email="a@b.cn", address="10.0.0.2", now=now + timedelta(minutes=15, seconds=1)
    )
    assert not gate.refused and not gate.locks
    session.expire_all()
    assert session.get_one(SignInThrottle, ("account", "a@b.cn")).failures == 1


def test_a_concurrent_attempt_sees_the_count_before_the_password_is_checked(
    app: Flask, session: Session
) -> None:
    now = utcnow()
    for _ in range(4):
        throttle.claim_attempt(session, email="a@b.cn", address="10.0.0.1", now=now)
    session.commit()
    with state(app).session_factory() as first, state(app).session_factory() as second:
        # The fifth attempt is counted and committed before its password is checked...
        assert not throttle.claim_attempt(
            first, email="a@b.cn", address="10.0.0.2", now=now
        ).refused
        first.commit()
        # ...so one that arrives meanwhile waits, whatever the fifth one's password turns out.
        gate = throttle.claim_attempt(second, email="a@b.cn", address="10.0.0.3", now=now)
        second.commit()
    assert gate.retry_after == 30


def test_one_address_gets_more_failures_than_one_account_then_waits_too(
    session: Session,
) -> None:
    now = utcnow()
    for n in range(throttle.ADDRESS_FREE_FAILURES):
        email = f"worker{n // 4}@factory.cn"  # every account stays below its own limit
        gate = throttle.claim_attempt(session, email=email, address="203.0.113.9", now=now)
        assert not gate.refused, n
    assert [lock.scope for lock in gate.locks] == ["address"]
    refused = throttle.claim_attempt(
        session, email="new@factory.cn", address="203.0.113.9", now=now
    )
    assert refused.retry_after == 30
    assert session.get(SignInThrottle, ("account", "new@factory.cn")) is None  # not counted
    other = throttle.claim_attempt(session, email="new@factory.cn", address="203.0.113.10", now=now)
    assert not other.refused


def test_forgotten_counts_are_deleted_and_live_ones_kept(session: Session) -> None:
    now = utcnow()
    old = now - throttle.WINDOW - timedelta(seconds=1)
    session.add_all(
        [
            SignInThrottle(scope="account", subject="old@x.cn", failures=3, last_failure_at=old),
            SignInThrottle(
                scope="account",
                subject="locked@x.cn",
                failures=9,
                last_failure_at=old,
                locked_until=now,  # its lock ended less than the window ago
            ),
            SignInThrottle(scope="address", subject="10.0.0.9", failures=2, last_failure_at=now),
        ]
    )
    session.commit()
    throttle.claim_attempt(session, email="new@x.cn", address="10.0.0.8", now=now)
    session.commit()
    session.expire_all()
    kept = {(row.scope, row.subject) for row in session.scalars(select(SignInThrottle))}
    assert kept == {
        ("account", "locked@x.cn"),
        ("address", "10.0.0.9"),
        ("address", "10.0.0.8"),
        ("account", "new@x.cn"),
    }


def _sign_in_address(app: Flask, session: Session, review: Review, forwarded: str) -> str:
    client = app.test_client()
    response = client.post(
        "/sign-in",
        data={
            "email": review.email,
            "password": "wrong-password-123",
            "csrf_token": csrf(client.get("/").get_data(as_text=True)),
        },
        headers={"X-Forwarded-For": forwarded},
        environ_base={"REMOTE_ADDR": "10.9.9.9"},
    )
    assert response.status_code == 401
    return str(_audit(session, "sign_in.failed")[-1].data["address"])


def test_the_client_address_is_the_peer_unless_proxies_are_configured(
    app: Flask, session: Session, review: Review, database_url: str
) -> None:
    # No proxy configured: the header is the client's own writing and is ignored.
    assert _sign_in_address(app, session, review, "198.51.100.7") == "10.9.9.9"
    behind_one = create_app(
        {
            "env": "testing",
            "database_url": database_url,
            "secret_key": app.secret_key,
            "proxy_hops": 1,
        }
    )
    try:
        # One proxy: the address it saw (rightmost), not what the client put before it.
        forged = "1.1.1.1, 198.51.100.7"
        assert _sign_in_address(behind_one, session, review, forged) == "198.51.100.7"
    finally:
        state(behind_one).engine.dispose()


# ---------------------------------------------------------------------------------------------
# Sessions


def _copy_cookie(source: FlaskClient, target: FlaskClient) -> None:
    cookie = source.get_cookie("session")
    assert cookie is not None
    target.set_cookie("session", cookie.value)


def _signed_in(client: FlaskClient, review: Review) -> bool:
    return client.get(f"/runs/{review.run.id}").status_code == 200


def test_a_copied_cookie_opens_nothing_after_sign_out(
    app: Flask, client: FlaskClient, review: Review
) -> None:
    token = sign_in(client, review.email)
    thief = app.test_client()
    _copy_cookie(client, thief)
    assert _signed_in(thief, review)
    assert client.post("/sign-out", data={"csrf_token": token}).status_code == 303
    assert not _signed_in(client, review)
    assert not _signed_in(thief, review)
    assert "联盟总览" not in thief.get("/").get_data(as_text=True)


def test_a_password_change_ends_every_session_of_the_user(
    app: Flask, session: Session, review: Review
) -> None:
    browsers = [app.test_client() for _ in range(2)]
    for browser in browsers:
        sign_in(browser, review.email)
    colleague = app.test_client()
    sign_in(colleague, review.english_email)
    create_user(
        session,
        email=review.email,
        password="a-new-password-456",
        alliance=review.world.alliance,
        update=True,
    )
    session.commit()
    assert not any(_signed_in(browser, review) for browser in browsers)
    assert _signed_in(colleague, review)  # another user's session goes on
    (event,) = _audit(session, "user.sessions_ended")
    assert event.data == {"email": review.email, "reason": "password_changed", "sessions": 2}


def test_a_session_ends_twelve_hours_after_sign_in(
    client: FlaskClient, session: Session, review: Review
) -> None:
    sign_in(client, review.email)
    row = session.scalars(select(WebSession)).one()
    assert row.expires_at - row.created_at == timedelta(hours=12)
    session.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert not _signed_in(client, review)


def test_the_operator_signs_a_user_out_everywhere(
    app: Flask, client: FlaskClient, session: Session, review: Review
) -> None:
    sign_in(client, review.email)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "sign-out", "--email", review.email.upper()])
    assert result.exit_code == 0, result.output
    assert not _signed_in(client, review)
    (event,) = _audit(session, "user.sessions_ended")
    assert event.actor == "cli" and event.data["reason"] == "operator"
    assert event.data["sessions"] == 1
    assert runner.invoke(args=["users", "sign-out", "--email", "nobody@x.cn"]).exit_code != 0


def test_the_operator_lifts_an_accounts_lock(
    app: Flask, client: FlaskClient, session: Session, review: Review
) -> None:
    for _ in range(throttle.ACCOUNT_FREE_FAILURES):
        _post_sign_in(client, review.email, "wrong-password-123")
    assert _post_sign_in(client, review.email, PASSWORD).status_code == 429
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "unlock", "--email", review.email.upper()])
    assert result.exit_code == 0 and "unlocked" in result.output, result.output
    assert _post_sign_in(client, review.email, PASSWORD).status_code == 303
    (event,) = _audit(session, "sign_in.unlocked")
    assert (event.actor, event.data["failures"]) == ("cli", throttle.ACCOUNT_FREE_FAILURES)
    again = runner.invoke(args=["users", "unlock", "--email", review.email])
    assert "no failed sign-ins held" in again.output
    assert len(_audit(session, "sign_in.unlocked")) == 1


# ---------------------------------------------------------------------------------------------
# The secret key


def test_links_signed_with_the_key_that_was_in_the_source_are_refused(
    session: Session, world: World, database_url: str, tmp_path: Path
) -> None:
    mentorship = factories.mentorship(
        session, world.unit, world.sibling_unit, date(2026, 1, 5), "k"
    )
    session.commit()
    development = create_app(
        {"env": "development", "database_url": database_url, "secret_key": ""}, str(tmp_path)
    )
    try:
        link = SummaryLink(mentorship_id=mentorship.id, period=1, author="craftsman")
        client = development.test_client()
        own = make_token(development.secret_key, link)  # type: ignore[arg-type]
        assert client.get(f"/summary/{own}").status_code == 200
        forged = make_token("dev-insecure-secret-key", link)
        assert client.get(f"/summary/{forged}").status_code == 404
    finally:
        state(development).engine.dispose()


# ---------------------------------------------------------------------------------------------
# The summary form validates like the API


def _summary_form(app: Flask, session: Session, world: World) -> tuple[FlaskClient, str, str]:
    mentorship = factories.mentorship(
        session, world.unit, world.sibling_unit, date(2026, 1, 5), "s"
    )
    session.commit()
    link = SummaryLink(mentorship_id=mentorship.id, period=1, author="apprentice")
    url = f"/summary/{make_token(state(app).settings.secret_key, link)}"
    client = app.test_client()
    token = csrf(client.get(url).get_data(as_text=True))
    return client, url, token


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"content": "  \r\n ", "hours": "2"}, "content", "Must not be blank."),
        ({"content": "学\t会了", "hours": "2"}, "content", "control characters"),
        ({"content": "", "hours": "2"}, "content", "Must not be blank."),
        ({"content": "学\x00会了", "hours": "2"}, "content", "Must not contain NUL characters."),
        ({"content": "x" * 20_001, "hours": "2"}, "content", "Length must be between 1 and 20000."),
        ({"content": "学会了", "hours": "many"}, "hours", "Not a valid number."),
        ({"content": "学会了", "hours": "nan"}, "hours", "not permitted"),
        ({"content": "学会了", "hours": "0"}, "hours", "greater than 0"),
        ({"content": "学会了"}, "hours", "Missing data for required field."),
        ({"content": "学会了", "hours": "2", "skills": "焊接,\x00"}, "skills", "NUL"),
        (
            {"content": "学会了", "hours": "2", "skills": "x" * 101},
            "skills",
            "Length must be between 1 and 100.",
        ),
    ],
)
def test_the_summary_form_refuses_what_the_api_refuses(
    app: Flask,
    session: Session,
    world: World,
    form: dict[str, str],
    field: str,
    message: str,
) -> None:
    client, url, token = _summary_form(app, session, world)
    response = client.post(url, data={**form, "csrf_token": token})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    (errors,) = re.findall(r'<div class="errors" role="alert">.*?</div>', html, re.DOTALL)
    assert f"<li>{translate('zh-CN', 'summary.' + field)}: " in errors and message in errors
    session.rollback()
    assert session.scalar(select(func.count()).select_from(TrainingSummary)) == 0


def test_the_summary_form_takes_what_the_api_takes(
    app: Flask, session: Session, world: World
) -> None:
    client, url, token = _summary_form(app, session, world)
    form = {
        "content": "第一行\r\n第二行",
        "hours": " 2.5 ",
        "skills": "氩弧焊， 钎焊,",
        "csrf_token": token,
    }
    assert client.post(url, data=form).status_code == 200
    summary = session.scalars(select(TrainingSummary)).one()
    assert (summary.content, summary.hours, summary.skills) == (
        "第一行\r\n第二行",
        2.5,
        ["氩弧焊", "钎焊"],
    )


# ---------------------------------------------------------------------------------------------
# Ids beyond the database's range

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/runs/{HUGE}"),
        ("GET", "/runs/9223372036854775808"),
        ("GET", "/runs/-1"),
        ("POST", f"/runs/{HUGE}/proposals/1"),
        ("POST", "/runs/{run}/proposals/" + HUGE),
        ("POST", f"/runs/{HUGE}/approve-pending"),
        ("POST", f"/runs/{HUGE}/commit"),
        ("GET", "/runs/{run}?page=" + HUGE),
        ("GET", "/runs/{run}?page=9223372036854775807"),
    ],
)
def test_ids_beyond_the_databases_range_are_not_found_never_a_5xx(
    client: FlaskClient, review: Review, method: str, path: str
) -> None:
    token = sign_in(client, review.email)
    url = path.format(run=review.run.id)
    response = client.open(url, method=method, data={"csrf_token": token, "etag": '"x"'})
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if "page=" in url:
        assert response.status_code == 200  # the first page instead
    else:
        assert response.status_code == 404
