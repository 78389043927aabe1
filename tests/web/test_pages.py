"""The coordinator pages through the Flask test client: sign-in, scope, CSRF, review, commit."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.extensions import state
from matcher.models import (
    AuditEvent,
    Craftsman,
    MatchRun,
    Mentorship,
    Proposal,
    RejectedPair,
    Unit,
)
from matcher.services.matching import create_match_run, execute_match_run
from matcher.services.mentorships import create_mentorship, local_today, overdue_periods
from matcher.services.people import CRAFTSMAN, deactivate_person
from matcher.services.preferences import set_availability, set_preferences
from tests.web.conftest import PASSWORD, Review, csrf, sign_in


def _proposals(session: Session, review: Review) -> list[Proposal]:
    session.rollback()  # see what the requests committed
    return list(
        session.scalars(
            select(Proposal)
            .where(Proposal.match_run_id == review.run.id)
            .order_by(Proposal.score.desc(), Proposal.id)
        )
    )


def _count(session: Session, model: type) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(model)) or 0


def _etag(proposal: Proposal) -> str:
    return f'"p{proposal.id}v{proposal.version}"'


def _decide(
    client: FlaskClient, review: Review, proposal: Proposal, token: str | None, **form: str
) -> tuple[int, str]:
    data = {"etag": _etag(proposal), **form}
    if token is not None:
        data["csrf_token"] = token
    response = client.post(f"/runs/{review.run.id}/proposals/{proposal.id}", data=data)
    if response.status_code == 303:
        response = client.get(response.headers["Location"])
        assert response.status_code == 200
    return response.status_code, response.get_data(as_text=True)


ROW_END = re.compile(r'<tr id="p\d+"|</tbody>\s*</table>\s*</div>')


def _row(html: str, proposal_id: int) -> str:
    """The proposals table's row of one proposal (its explanation table included)."""
    start = html.index(f'<tr id="p{proposal_id}"')
    end = ROW_END.search(html, start + 1)
    assert end is not None
    return html[start : end.start()]


def test_sign_in_refuses_a_wrong_password_and_accepts_the_right_one(
    client: FlaskClient, review: Review
) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'name="password"' in page.get_data(as_text=True)
    token = csrf(page.get_data(as_text=True))
    for email, password in ((review.email, "wrong-password-123"), ("nobody@x.cn", PASSWORD)):
        refused = client.post(
            "/sign-in", data={"email": email, "password": password, "csrf_token": token}
        )
        assert refused.status_code == 401
        assert "邮箱或密码不正确" in refused.get_data(as_text=True)
        assert client.get(f"/runs/{review.run.id}").status_code == 303  # still signed out

    accepted = client.post(
        "/sign-in",
        data={"email": review.email.upper(), "password": PASSWORD, "csrf_token": token},
    )
    assert accepted.status_code == 303 and accepted.headers["Location"] == "/"
    cookie = accepted.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "联盟总览" in client.get("/").get_data(as_text=True)
    assert client.get(f"/runs/{review.run.id}").status_code == 200


def test_pages_need_sign_in_and_return_there_afterwards(
    client: FlaskClient, session: Session, review: Review
) -> None:
    overview = client.get("/").get_data(as_text=True)
    assert "联盟总览" not in overview and 'action="/sign-in"' in overview
    for url in (f"/runs/{review.run.id}", "/runs/new", f"/runs/{review.run.id}?sort=unit"):
        response = client.get(url)
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/?next=")
    token = csrf(overview)
    first = _proposals(session, review)[0]
    status, _ = _decide(client, review, first, token, action="approve")
    assert status == 200  # followed to the sign-in form
    assert _proposals(session, review)[0].status == "pending"

    # Signing in from the form that /runs/{id} led to lands back there, never off-site.
    target = f"/runs/{review.run.id}?sort=unit"
    form = client.get(f"/?next={target}").get_data(as_text=True)
    assert f'name="next" value="{target}"' in form
    back = client.post(
        "/sign-in",
        data={"email": review.email, "password": PASSWORD, "csrf_token": token, "next": target},
    )
    assert back.headers["Location"] == target
    client.post("/sign-out", data={"csrf_token": csrf(client.get("/").get_data(as_text=True))})
    evil = client.post(
        "/sign-in",
        data={
            "email": review.email,
            "password": PASSWORD,
            "csrf_token": csrf(client.get("/").get_data(as_text=True)),
            "next": "//evil.example/",
        },
    )
    assert evil.headers["Location"] == "/"


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    client: FlaskClient, session: Session, review: Review
) -> None:
    before_sign_in = csrf(client.get("/").get_data(as_text=True))
    assert (
        client.post("/sign-in", data={"email": review.email, "password": PASSWORD}).status_code
        == 400
    )
    token = sign_in(client, review.email)
    # Signing in starts a new session: the token from before is worthless now.
    assert token != before_sign_in
    first = _proposals(session, review)[0]
    for bad in (None, "", before_sign_in, token[:-2] + "xx"):
        status, html = _decide(client, review, first, bad, action="approve")
        assert status == 400 and "安全令牌" in html
        committed = client.post(f"/runs/{review.run.id}/commit", data={"csrf_token": bad or ""})
        assert committed.status_code == 400
        swept = client.post(
            f"/runs/{review.run.id}/approve-pending",
            data={"csrf_token": bad or "", "min_score": "0"},
        )
        assert swept.status_code == 400
    assert client.post("/runs/new", data={"min_fit": "0.3"}).status_code == 400
    assert client.post("/sign-out").status_code == 400
    assert client.get(f"/runs/{review.run.id}").status_code == 200  # still signed in
    assert {p.status for p in _proposals(session, review)} == {"pending"}
    assert review.run.status == "proposed"
    assert (_count(session, AuditEvent), _count(session, Mentorship)) == (0, 0)
    assert _count(session, MatchRun) == 2

    # With the token the same request goes through (so the refusals above were the token's).
    status, _ = _decide(client, review, first, token, action="approve")
    assert status == 200 and _proposals(session, review)[0].status == "approved"


def test_another_alliances_run_is_not_found(
    client: FlaskClient, session: Session, review: Review
) -> None:
    token = sign_in(client, review.email)
    foreign = review.foreign_run.id
    for url in (f"/runs/{foreign}", "/runs/999999"):
        response = client.get(url)
        assert response.status_code == 404
        assert "页面不存在" in response.get_data(as_text=True)
    assert client.post(f"/runs/{foreign}/commit", data={"csrf_token": token}).status_code == 404
    # A proposal of this alliance addressed through the foreign run is not found either.
    first = _proposals(session, review)[0]
    response = client.post(
        f"/runs/{foreign}/proposals/{first.id}",
        data={"csrf_token": token, "action": "approve", "etag": _etag(first)},
    )
    assert response.status_code == 404
    session.rollback()
    assert session.get(MatchRun, foreign).status == "proposed"  # type: ignore[union-attr]
    assert _proposals(session, review)[0].status == "pending"


def test_approve_reject_and_swap_from_the_page(
    client: FlaskClient, session: Session, review: Review
) -> None:
    token = sign_in(client, review.email)
    first, second = _proposals(session, review)[:2]

    status, html = _decide(client, review, first, token, action="approve", comment=" 技能对口 ")
    assert status == 200 and "已批准" in html
    status, _ = _decide(client, review, second, token, action="reject", comment="")
    assert status == 200
    by_id = {p.id: p for p in _proposals(session, review)}
    assert (by_id[first.id].status, by_id[first.id].comment) == ("approved", "技能对口")
    assert (by_id[second.id].status, by_id[second.id].comment) == ("rejected", None)
    rejected = session.scalars(select(RejectedPair)).one()
    assert (rejected.craftsman_id, rejected.apprentice_id) == (
        second.craftsman_id,
        second.apprentice_id,
    )

    # Swap a proposal to a craftsman the page offers for it.
    page = client.get(f"/runs/{review.run.id}").get_data(as_text=True)
    target, offered = next(
        (p, re.findall(r'<option value="(\d+)">', _row(page, p.id)))
        for p in _proposals(session, review)
        if re.search(r'<option value="\d+">', _row(page, p.id))
    )
    craftsman_before = target.craftsman_id
    choice = int(offered[0])
    status, html = _decide(client, review, target, token, action="swap", craftsman_id=str(choice))
    assert status == 200 and "换成师傅" in html
    swapped = {p.id: p for p in _proposals(session, review)}[target.id]
    assert swapped.craftsman_id == choice != craftsman_before
    assert swapped.status == "pending"
    assert session.get(Craftsman, choice).unit_id != swapped.apprentice.unit_id  # type: ignore[union-attr]

    events = list(session.execute(select(AuditEvent.action, AuditEvent.actor)).all())
    assert sorted(events) == sorted(
        [
            ("proposal.approved", f"user:{review.email}"),
            ("proposal.rejected", f"user:{review.email}"),
            ("proposal.swap", f"user:{review.email}"),
        ]
    )


def test_approve_pending_at_or_above_a_score_leaves_decided_ones_alone(
    client: FlaskClient, session: Session, review: Review
) -> None:
    token = sign_in(client, review.email)
    proposals = _proposals(session, review)
    assert len({p.score for p in proposals}) >= 3
    best = proposals[0]
    assert _decide(client, review, best, token, action="reject")[0] == 200
    threshold = sorted(p.score for p in proposals)[len(proposals) // 2]
    url = f"/runs/{review.run.id}/approve-pending"

    for bad in ("", "高", "2.5", "-1", "nan"):
        response = client.post(url, data={"csrf_token": token, "min_score": bad})
        assert response.status_code == 422
        assert 'id="page-error"' in response.get_data(as_text=True)
    assert {p.status for p in _proposals(session, review)} == {"pending", "rejected"}

    response = client.post(
        url, data={"csrf_token": token, "min_score": str(threshold), "comment": " 分数达标 "}
    )
    assert response.status_code == 303
    expected = {p.id for p in proposals if p.score >= threshold and p.id != best.id}
    assert expected and len(expected) < len(proposals) - 1
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"已批准 {len(expected)} 条" in page
    after = {p.id: p for p in _proposals(session, review)}
    assert after[best.id].status == "rejected"  # a decision already made stays
    assert {i for i, p in after.items() if p.status == "approved"} == expected
    assert {after[i].comment for i in expected} == {"分数达标"}
    assert {p.status for i, p in after.items() if i not in expected | {best.id}} == {"pending"}
    actions = session.scalars(select(AuditEvent.action)).all()
    assert sorted(actions) == ["proposal.approved"] * len(expected) + ["proposal.rejected"]


def test_a_refused_swap_or_a_stale_form_shows_why_and_changes_nothing(
    client: FlaskClient, session: Session, review: Review
) -> None:
    token = sign_in(client, review.email)
    first = _proposals(session, review)[0]
    same_unit = session.scalars(
        select(Craftsman.id).where(
            Craftsman.unit_id == first.apprentice.unit_id, Craftsman.active.is_(True)
        )
    ).first()
    assert same_unit is not None
    status, html = _decide(client, review, first, token, action="swap", craftsman_id=str(same_unit))
    assert status == 422
    assert "这位师傅与徒弟同属一个单位" in _row(html, first.id)
    for bad in ({"action": "swap"}, {"action": "swap", "craftsman_id": "x"}, {"action": "eat"}):
        status, html = _decide(client, review, first, token, **bad)
        assert status == 422 and 'class="field-error"' in _row(html, first.id)
    assert _proposals(session, review)[0].craftsman_id == first.craftsman_id

    # A form read before someone else decided is refused (412), not applied over their decision.
    old_etag = _etag(first)
    assert _decide(client, review, first, token, action="approve")[0] == 200
    response = client.post(
        f"/runs/{review.run.id}/proposals/{first.id}",
        data={"csrf_token": token, "action": "reject", "etag": old_etag},
    )
    assert response.status_code == 412
    assert "请刷新后重新决定" in response.get_data(as_text=True)
    assert _proposals(session, review)[0].status == "approved"


def test_commit_turns_approved_pairs_into_mentorships(
    client: FlaskClient, session: Session, review: Review
) -> None:
    token = sign_in(client, review.email)
    first, second, third = _proposals(session, review)[:3]
    for proposal in (first, second):
        assert _decide(client, review, proposal, token, action="approve")[0] == 200
    assert _decide(client, review, third, token, action="reject")[0] == 200

    response = client.post(f"/runs/{review.run.id}/commit", data={"csrf_token": token})
    assert response.status_code == 303
    assert "建立了 2 个师徒关系" in client.get(response.headers["Location"]).get_data(as_text=True)
    session.rollback()
    pairs = set(session.execute(select(Mentorship.craftsman_id, Mentorship.apprentice_id)).all())
    assert pairs == {(p.craftsman_id, p.apprentice_id) for p in (first, second)}
    assert session.get(MatchRun, review.run.id).status == "committed"  # type: ignore[union-attr]
    overview = client.get("/").get_data(as_text=True)
    assert re.search(r'id="active-mentorships">2<', overview)
    # A committed run's proposals can no longer change; the page says so instead of failing.
    status, html = _decide(client, review, third, token, action="approve")
    assert status == 409 and 'id="page-error"' in html and "不能再修改" in html


def test_a_commit_conflict_is_shown_and_nothing_is_written(
    client: FlaskClient, session: Session, review: Review
) -> None:
    token = sign_in(client, review.email)
    first = _proposals(session, review)[0]
    assert _decide(client, review, first, token, action="approve")[0] == 200
    # Meanwhile the approved craftsman leaves (deactivated by the HR system).
    craftsman = session.get(Craftsman, first.craftsman_id)
    assert craftsman is not None
    deactivate_person(session, kind=CRAFTSMAN, person=craftsman)
    session.commit()

    response = client.post(f"/runs/{review.run.id}/commit", data={"csrf_token": token})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert 'id="page-error"' in html and "无法提交" in html
    unit = session.get(Unit, craftsman.unit_id)
    assert unit is not None
    assert f"师傅{craftsman.name}（{unit.name}）已停用。" in html  # by name, in the user's language
    assert "Craftsman" not in html
    assert _count(session, Mentorship) == 0
    assert session.get(MatchRun, review.run.id).status == "proposed"  # type: ignore[union-attr]


def test_proposals_sort_by_score_or_by_unit(
    client: FlaskClient, session: Session, review: Review
) -> None:
    sign_in(client, review.email)
    proposals = _proposals(session, review)
    codes = dict(session.execute(select(Unit.id, Unit.code)).all())

    def order(html: str) -> list[int]:
        return [int(i) for i in re.findall(r'<tr id="p(\d+)"', html)]

    by_score = [p.id for p in proposals]
    by_unit = [
        p.id
        for p in sorted(
            proposals,
            key=lambda p: (
                codes[p.craftsman.unit_id],
                codes[p.apprentice.unit_id],
                -p.score,
                p.id,
            ),
        )
    ]
    assert by_score != by_unit  # the data tells the two apart
    assert order(client.get(f"/runs/{review.run.id}").get_data(as_text=True)) == by_score
    page = client.get(f"/runs/{review.run.id}?sort=unit").get_data(as_text=True)
    assert order(page) == by_unit
    assert order(client.get(f"/runs/{review.run.id}?sort=bogus&page=x").get_data(True)) == (
        by_score
    )


def test_the_run_page_explains_pairs_and_the_unmatched(
    client: FlaskClient, session: Session, review: Review
) -> None:
    sign_in(client, review.email)
    html = client.get(f"/runs/{review.run.id}").get_data(as_text=True)
    for proposal in _proposals(session, review):
        row = _row(html, proposal.id)
        assert "<details>" in row
        for line in proposal.explanation:
            assert line["skill"] in row
    assert html.count('<svg class="chart"') == 2
    # One bar per score bin in the histogram, whose counts add up to the proposals.
    histogram = html[html.index('<svg class="chart"') : html.index("</svg>")]
    counts = [int(n) for n in re.findall(r"<title>[\d.]+–[\d.]+: (\d+)</title>", histogram)]
    assert sum(counts) == len(_proposals(session, review))
    assert "没有其他单位的师傅达到最低匹配度" in html  # no_eligible_craftsman, translated
    assert "合适的师傅名额已分给整体更优的结对" in html  # capacity_exhausted
    assert "名额已满的合适师傅：陈秀英" in html


def test_starting_a_run_validates_its_parameters(
    client: FlaskClient, session: Session, review: Review
) -> None:
    token = sign_in(client, review.email)
    assert 'name="min_fit"' in client.get("/runs/new").get_data(as_text=True)
    for bad in ({"min_fit": "0"}, {"min_fit": "abc"}, {"region_bonus": "2"}, {"objective": "x"}):
        response = client.post("/runs/new", data={"csrf_token": token, **bad})
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert 'role="alert"' in html and 'class="field-error"' in html
    assert _count(session, MatchRun) == 2

    response = client.post(
        "/runs/new",
        data={
            "csrf_token": token,
            "objective": "coverage",
            "min_fit": "0.3",
            "related_credit": "",
            "region_bonus": "0.1",
            "include_mentored": "on",
        },
    )
    assert response.status_code == 303
    run_id = int(response.headers["Location"].rsplit("/", 1)[1])
    session.rollback()
    run = session.get(MatchRun, run_id)
    assert (
        run is not None and run.status == "proposed" and run.alliance_id == review.run.alliance_id
    )
    assert run.params["objective"] == "coverage"
    assert (run.params["min_fit"], run.params["related_credit"]) == (0.3, 0.5)
    assert (run.params["region_bonus"], run.params["include_mentored"]) == (0.1, True)
    assert run.created_by == f"user:{review.email}"


def test_a_large_run_is_queued_and_its_page_shows_progress(
    app: Flask,
    client: FlaskClient,
    session: Session,
    review: Review,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = dataclasses.replace(state(app).settings, match_inline_max_cells=1)
    monkeypatch.setitem(app.extensions, "matcher", dataclasses.replace(state(app), settings=small))
    token = sign_in(client, review.email)
    response = client.post("/runs/new", data={"csrf_token": token})
    assert response.status_code == 303
    session.rollback()
    run = session.scalars(select(MatchRun).order_by(MatchRun.id.desc())).first()
    assert run is not None and run.status == "queued"
    assert (
        session.scalar(
            select(func.count()).select_from(Proposal).where(Proposal.match_run_id == run.id)
        )
        == 0
    )
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<progress" in page and 'http-equiv="refresh"' in page and "排队中" in page


def test_overview_shows_units_counts_overdue_pairs_and_runs(
    client: FlaskClient, session: Session, review: Review
) -> None:
    world = review.world
    today = local_today(world.alliance.timezone)
    craftsman = session.get(Craftsman, world.craftsman_ids["HZDJ"])
    apprentice = session.scalars(
        select(Proposal).where(Proposal.match_run_id == review.run.id)
    ).first()
    assert craftsman is not None and apprentice is not None
    late = create_mentorship(
        session,
        craftsman=craftsman,
        apprentice=apprentice.apprentice,
        started_on=today - timedelta(days=75),
    )
    session.commit()
    periods = overdue_periods(late, today)
    assert periods == 2

    sign_in(client, review.email)
    html = client.get("/").get_data(as_text=True)
    units = html[html.index('id="units"') : html.index('id="overdue"')]
    for unit in (world.unit, world.sibling_unit, review.third_unit):
        assert unit.name in units and unit.code in units
    assert world.foreign_unit.name not in html  # another alliance's unit
    # HZDJ: 3 craftsmen, 4 apprentices, all active; one active mentorship.
    hzdj = re.search(rf"{world.unit.name}</td>(.*?)</tr>", units, re.S)
    assert hzdj is not None
    assert re.findall(r'class="num">(\d+)<', hzdj.group(1)) == ["3", "4", "7", "1"]
    overdue = html[html.index('id="overdue"') : html.index('id="runs"')]
    assert craftsman.name in overdue and apprentice.apprentice.name in overdue
    assert late.next_due_on is not None and late.next_due_on.isoformat() in overdue
    assert f">{periods}</span>" in overdue
    assert f'href="/runs/{review.run.id}"' in html
    assert f'href="/runs/{review.foreign_run.id}"' not in html


def test_pages_speak_the_users_language(client: FlaskClient, review: Review) -> None:
    sign_in(client, review.english_email)
    overview = client.get("/").get_data(as_text=True)
    assert "Alliance overview" in overview and "联盟总览" not in overview
    run = client.get(f"/runs/{review.run.id}").get_data(as_text=True)
    assert "Proposed pairs" in run and "No craftsman of another unit reaches the minimum fit" in run
    assert client.get(f"/runs/{review.foreign_run.id}").status_code == 404


def test_sign_out_ends_the_session(client: FlaskClient, review: Review) -> None:
    token = sign_in(client, review.email)
    assert client.post("/sign-out", data={"csrf_token": token}).status_code == 303
    assert client.get(f"/runs/{review.run.id}").status_code == 303
    assert "联盟总览" not in client.get("/").get_data(as_text=True)


def test_the_run_form_takes_the_fair_share_rules_over_the_alliances_defaults(
    client: FlaskClient, session: Session, review: Review
) -> None:
    alliance = review.world.alliance
    alliance.match_defaults = {"max_pairs_per_craftsman_unit": 2, "min_fit": 0.3}
    session.commit()
    token = sign_in(client, review.email)
    form = client.get("/runs/new").get_data(as_text=True)
    assert re.search(r'name="max_pairs_per_craftsman_unit"[^>]*\n?\s*value="2"', form)
    assert re.search(r'name="min_fit"[^>]*\n?\s*value="0.3"', form)
    bad = client.post("/runs/new", data={"csrf_token": token, "max_pairs_per_unit_pair": "x"})
    assert bad.status_code == 422 and 'class="field-error"' in bad.get_data(as_text=True)
    assert (
        client.post(
            "/runs/new", data={"csrf_token": token, "max_pairs_per_unit_pair": "0"}
        ).status_code
        == 422
    )
    response = client.post(
        "/runs/new",
        data={
            "csrf_token": token,
            "max_pairs_per_craftsman_unit": "2",
            "max_pairs_per_unit_pair": "",
            "min_pairs_per_apprentice_unit": "3",
        },
    )
    assert response.status_code == 303
    run_id = int(response.headers["Location"].rsplit("/", 1)[1])
    session.rollback()
    run = session.get(MatchRun, run_id)
    assert run is not None and run.status == "proposed"
    assert run.params["max_pairs_per_craftsman_unit"] == 2
    assert run.params["max_pairs_per_unit_pair"] is None
    assert run.params["min_pairs_per_apprentice_unit"] == 3
    assert run.params["min_fit"] == 0.3  # blank number: the alliance's default

    page = client.get(f"/runs/{run_id}").get_data(as_text=True)
    table = page[
        page.index('<table id="unit-shares"') : page.index(
            "</table>", page.index('<table id="unit-shares"')
        )
    ]
    rows = re.findall(r'<tr data-unit="(\d+)" class="([^"]*)">(.*?)</tr>', table, re.S)
    assert {int(unit) for unit, _, _ in rows} == {
        review.world.unit.id,
        review.world.sibling_unit.id,
        review.third_unit.id,
    }
    for unit, css, cells in rows:
        share = next(s for s in run.stats["units"] if s["unit_id"] == int(unit))
        given = re.findall(r"<td>(\d+) / 2", cells)
        assert given == [str(share["pairs_as_craftsman_unit"])]
        assert share["pairs_as_craftsman_unit"] <= 2
        assert (css == "short") == (share["floor_shortfall"] > 0)
        if share["floor_shortfall"]:
            assert f"差 {share['floor_shortfall']} 对" in cells
    assert any(s["floor_shortfall"] for s in run.stats["units"])  # 3 each is more than 3 units get
    chart = page[page.index("各单位的建议结对") :]
    assert chart.count('<g class="rule">') == 2  # the cap and the floor across the bars


def test_the_run_page_shows_where_an_apprentice_ranked_its_craftsman(
    client: FlaskClient, session: Session, review: Review
) -> None:
    """A run after an apprentice ranked its proposed craftsman second shows that rank on the
    pair's row, and no rank on the others."""
    chosen = _proposals(session, review)[0]
    another = session.scalars(
        select(Craftsman.id)
        .join(Unit, Craftsman.unit_id == Unit.id)
        .where(
            Unit.alliance_id == review.world.alliance.id,
            Craftsman.unit_id != chosen.apprentice.unit_id,
            Craftsman.id != chosen.craftsman_id,
        )
        .order_by(Craftsman.id)
        .limit(1)
    ).one()
    set_preferences(
        session,
        apprentice=chosen.apprentice,
        ranked=[another, chosen.craftsman_id],
        avoid=[],
        actor="test",
    )
    run = create_match_run(
        session, alliance=review.world.alliance, params=MatchParams(), created_by="test"
    )
    execute_match_run(session, run=run)
    session.commit()
    sign_in(client, review.email)
    html = client.get(f"/runs/{run.id}").get_data(as_text=True)
    rows = session.scalars(select(Proposal).where(Proposal.match_run_id == run.id)).all()
    ranked = [p for p in rows if p.preference_rank is not None]
    assert ranked, "the ranked apprentice got one of its two ranked craftsmen"
    for proposal in rows:
        row = _row(html, proposal.id)
        if proposal.preference_rank is None:
            assert "data-preference-rank" not in row
        else:
            assert f'data-preference-rank="{proposal.preference_rank}"' in row
            assert f"第 {proposal.preference_rank} 意向" in row


def test_the_swap_shortlist_leaves_out_avoided_and_unavailable_craftsmen(
    client: FlaskClient, session: Session, review: Review
) -> None:
    sign_in(client, review.email)
    page = client.get(f"/runs/{review.run.id}").get_data(as_text=True)
    target, offered = next(
        (p, [int(c) for c in re.findall(r'<option value="(\d+)">', _row(page, p.id))])
        for p in _proposals(session, review)
        if len(re.findall(r'<option value="\d+">', _row(page, p.id))) >= 2
    )
    avoided, paused = offered[:2]
    set_preferences(session, apprentice=target.apprentice, ranked=[], avoid=[avoided], actor="t")
    set_availability(
        session,
        craftsman=session.get_one(Craftsman, paused),
        accepting=True,
        paused_until=local_today(review.world.alliance.timezone),
        actor="t",
    )
    session.commit()
    page = client.get(f"/runs/{review.run.id}").get_data(as_text=True)
    now = [int(c) for c in re.findall(r'<option value="(\d+)">', _row(page, target.id))]
    assert avoided not in now and paused not in now
    assert set(offered) - {avoided, paused} <= set(now)
