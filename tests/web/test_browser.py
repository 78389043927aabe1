"""The coordinator pages in a real headless Chromium against a real server on loopback."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from matcher.extensions import state
from matcher.models import AuditEvent, Craftsman, Mentorship, Offer, Proposal
from matcher.services.alliances import update_alliance
from matcher.services.mentorships import local_today
from matcher.services.review import commit_run, decide_many
from matcher.services.summary_links import make_offer_token
from tests import factories as tests_factories
from tests.conftest import IN_CI
from tests.web.conftest import PASSWORD, Review

CHROMIUM = "/usr/bin/chromium"
# The README's pictures are refreshed on purpose (MATCHER_UPDATE_SCREENSHOTS=1), never as a side
# effect of a test run, which would leave a checkout dirty.
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UPDATE_SCREENSHOTS = os.environ.get("MATCHER_UPDATE_SCREENSHOTS") == "1"

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the test extras install it
    sync_playwright = None  # type: ignore[assignment]


def _missing(reason: str) -> None:
    """Fail in CI (a browser test must run there), skip with the reason elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser test must run, not skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium of the system (Debian's package), never a downloaded one."""
    if sync_playwright is None:
        _missing("playwright is not installed: pip install -e '.[test]'")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-noto-cjk")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The test app served by a real threaded HTTP server on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page that fails the test if the browser reports a Content-Security-Policy violation on
    any page it visits (the console names each one; nothing else would show it)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()
    assert violations == []


def _proposals(session: Session, review: Review) -> list[Proposal]:
    session.rollback()  # see what the server committed since
    return list(
        session.scalars(
            select(Proposal)
            .where(Proposal.match_run_id == review.run.id)
            .order_by(Proposal.score.desc(), Proposal.id)
        )
    )


def _screenshot(page: Page, folder: Path, name: str, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    folder = DOCS_SCREENSHOTS if UPDATE_SCREENSHOTS else folder
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)
    assert (folder / name).stat().st_size > 0


def test_review_a_run_in_the_browser(
    page: Page, live_server: str, session: Session, review: Review, backend: str, tmp_path: Path
) -> None:
    # Sign in.
    page.goto(live_server + "/")
    page.get_by_label("邮箱").fill(review.email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name="联盟总览")).to_be_visible()

    # Open the run from the overview.
    page.get_by_role("link", name=f"匹配方案 #{review.run.id}").click()
    expect(page.get_by_role("heading", name=f"匹配方案 #{review.run.id}")).to_be_visible()
    first, second = _proposals(session, review)[:2]

    # Approve one, with a comment.
    row = page.locator(f"#p{first.id}")
    row.get_by_placeholder("备注（可选）").fill("技能对口")
    row.get_by_role("button", name="批准").click()
    expect(page.locator(f"#p{first.id}")).to_have_attribute("data-status", "approved")
    expect(page.locator(".flash")).to_contain_text("已批准")

    # Reject another.
    page.locator(f"#p{second.id}").get_by_role("button", name="拒绝").click()
    expect(page.locator(f"#p{second.id}")).to_have_attribute("data-status", "rejected")

    # Swap a third (one the page offers craftsmen for) to the first offered, then approve it.
    offered = page.locator("#proposals tbody tr:has(select[name=craftsman_id])")
    third_id = next(
        int(str(row_id)[1:])
        for row_id in offered.evaluate_all("rows => rows.map(r => r.id)")
        if row_id not in (f"p{first.id}", f"p{second.id}")
    )
    third = next(p for p in _proposals(session, review) if p.id == third_id)
    third_apprentice, third_craftsman = third.apprentice_id, third.craftsman_id
    picker = page.locator(f"#p{third.id} select[name=craftsman_id]")
    choice = picker.locator("option:not([value=''])").first.get_attribute("value")
    assert choice is not None
    picker.select_option(choice)
    page.locator(f"#p{third.id}").get_by_role("button", name="换人").click()
    expect(page.locator(".flash")).to_contain_text("换成师傅")
    page.locator(f"#p{third.id}").get_by_role("button", name="批准").click()
    expect(page.locator(f"#p{third.id}")).to_have_attribute("data-status", "approved")

    by_id = {p.id: p for p in _proposals(session, review)}
    assert (by_id[first.id].status, by_id[first.id].comment) == ("approved", "技能对口")
    assert by_id[second.id].status == "rejected"
    assert by_id[third.id].craftsman_id == int(choice) != third_craftsman

    if backend == "sqlite" or not UPDATE_SCREENSHOTS:  # one backend writes the README's pictures
        page.locator(f"#p{first.id} details").evaluate("d => d.open = true")
        _screenshot(page, tmp_path, "run-desktop.png", 1280, 800)
        _screenshot(page, tmp_path, "run-phone.png", 390, 844)
        page.set_viewport_size({"width": 1280, "height": 800})

    # A form whose CSRF token was taken out is refused, and nothing changes.
    fourth = next(p for p in _proposals(session, review) if p.status == "pending")
    page.locator(f"#p{fourth.id} form.decide input[name=csrf_token]").evaluate("e => e.remove()")
    page.locator(f"#p{fourth.id}").get_by_role("button", name="批准").click()
    expect(page.locator(".message")).to_contain_text("安全令牌")
    assert {p.id: p for p in _proposals(session, review)}[fourth.id].status == "pending"

    # Commit, and find the two mentorships on the overview.
    page.goto(f"{live_server}/runs/{review.run.id}")
    page.get_by_role("button", name="提交（2 对）").click()
    expect(page.locator(".flash")).to_contain_text("建立了 2 个师徒关系")
    expect(page.locator("#run-status")).to_have_text("已提交")
    page.get_by_role("link", name="联盟总览").first.click()
    expect(page.locator("#active-mentorships")).to_have_text("2")

    session.rollback()
    pairs = set(session.execute(select(Mentorship.craftsman_id, Mentorship.apprentice_id)).all())
    assert pairs == {
        (first.craftsman_id, first.apprentice_id),
        (int(choice), third_apprentice),
    }
    actors = set(session.scalars(select(AuditEvent.actor)))
    assert actors == {f"user:{review.email}"}
    swapped_to = session.get(Craftsman, int(choice))
    assert swapped_to is not None and swapped_to.unit_id != by_id[third.id].apprentice.unit_id


def test_phone_layout_scrolls_the_table_not_the_page(
    page: Page, live_server: str, review: Review
) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server + "/")
    page.get_by_label("邮箱").fill(review.email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.goto(f"{live_server}/runs/{review.run.id}")
    expect(page.locator("#proposals")).to_be_visible()
    sizes: dict[str, Any] = page.evaluate(
        """() => ({
            page: document.documentElement.scrollWidth,
            view: window.innerWidth,
            wrap: document.querySelector('#proposals').parentElement.scrollWidth,
        })"""
    )
    # The wide proposals table scrolls inside its wrapper; the page itself does not.
    assert sizes["page"] <= sizes["view"] < sizes["wrap"]


def test_the_api_docs_render_under_their_policy(page: Page, live_server: str) -> None:
    response = page.goto(live_server + "/docs")
    assert (
        response is not None
        and "frame-ancestors 'none'" in response.headers["content-security-policy"]
    )
    # Swagger UI builds the page from the OpenAPI document: its operations are listed.
    expect(page.locator(".opblock-tag").first).to_be_visible()
    page.locator(".opblock-summary").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()


def _programme(session: Session, review: Review) -> Mentorship:
    """Pairs at every stage: one with summaries, a worried check-in and a passed assessment
    (completed), one flagged, one ending within 30 days, and one ended early."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from matcher.models import TrainingSummary
    from matcher.services.mentorships import SummaryInput, add_summary, local_today
    from matcher.services.programme import CheckInInput, add_check_in, assess, end_pair

    world = review.world
    today = local_today("Asia/Shanghai")
    started = today - timedelta(days=100)
    main = tests_factories.mentorship(
        session,
        world.sibling_unit,
        world.unit,
        started,
        "页面",
        craftsman={"name": "谭建华"},
        apprentice={"name": "徐晓兵"},
    )
    for k, (text, hours) in enumerate(
        (
            ("氩弧焊打底焊练习，掌握了起弧收弧", 8),
            ("盖面焊成形，焊缝外观合格率提高", 10),
            ("不锈钢薄板焊接", 6),
        ),
        start=1,
    ):
        row = add_summary(
            session,
            mentorship=main,
            summary=SummaryInput(author="apprentice", content=text, hours=hours, skills=["氩弧焊"]),
            submitted_by="test",
        )
        handed = datetime.combine(started + timedelta(days=30 * k - 2), datetime.min.time(), UTC)
        session.execute(
            update(TrainingSummary).where(TrainingSummary.id == row.id).values(submitted_at=handed)
        )
    add_check_in(
        session,
        mentorship=main,
        check_in=CheckInInput(author="craftsman", rating=5, good_fit=True, comment="学得很快"),
        submitted_by="test",
    )
    add_check_in(
        session,
        mentorship=main,
        check_in=CheckInInput(author="apprentice", rating=4, good_fit=True, comment="师傅耐心"),
        submitted_by="test",
    )
    flagged = tests_factories.mentorship(
        session, world.unit, world.sibling_unit, today - timedelta(days=50), "存疑"
    )
    add_check_in(
        session,
        mentorship=flagged,
        check_in=CheckInInput(author="apprentice", rating=2, good_fit=False, comment="排班冲突"),
        submitted_by="test",
    )
    tests_factories.mentorship(
        session, review.third_unit, world.unit, today - timedelta(days=350), "到期"
    )
    ended = tests_factories.mentorship(
        session, world.unit, review.third_unit, today - timedelta(days=200), "终止"
    )
    end_pair(
        session,
        mentorship=ended,
        reason_code="not_a_fit",
        comment=None,
        today=today - timedelta(days=20),
        actor="test",
    )
    assess(
        session,
        mentorship=main,
        fields={
            "theory": 88,
            "practice": 93,
            "skills": [{"name": "氩弧焊", "level": 4}],
            "evaluator": "联盟出师考核组",
            "result": "pass",
            "comment": "理论扎实，实操规范",
        },
        today=today,
        actor="test",
    )
    session.commit()
    return main


def test_the_mentorship_and_activity_pages_in_the_browser(
    page: Page, live_server: str, session: Session, review: Review, backend: str, tmp_path: Path
) -> None:
    main = _programme(session, review)
    page.goto(live_server + "/")
    page.get_by_label("邮箱").fill(review.email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.locator("#flagged")).to_contain_text("师傅存疑")
    expect(page.locator("#ending")).to_contain_text("师傅到期")
    page.goto(f"{live_server}/mentorships/{main.id}")
    expect(page.locator("#status")).to_have_text("已出师")
    expect(page.locator("#summaries")).to_contain_text("盖面焊成形")
    expect(page.locator("#check-ins")).to_contain_text("师傅耐心")
    expect(page.locator("#assessment")).to_contain_text("联盟出师考核组")
    if backend == "sqlite" or not UPDATE_SCREENSHOTS:
        _screenshot(page, tmp_path, "mentorship-desktop.png", 1280, 800)
    # The certificate's public page, from the link on the mentorship's page.
    page.locator("#assessment + p a").first.click()
    expect(page.locator("#certificate")).to_contain_text("徐晓兵")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server}/activity")
    expect(page.locator("#activity")).to_contain_text("谭建华")
    expect(page.locator("tr.idle").first).to_be_visible()
    if backend == "sqlite" or not UPDATE_SCREENSHOTS:
        _screenshot(page, tmp_path, "activity-desktop.png", 1280, 800)


def test_a_craftsman_accepts_an_offer_on_a_phone(
    app: Flask,
    page: Page,
    live_server: str,
    session: Session,
    review: Review,
    backend: str,
    tmp_path: Path,
) -> None:
    """The offer email's link on a 390 px screen: the apprentice, why the pair fits, Accept."""
    update_alliance(
        session, alliance=review.world.alliance, changes={"craftsman_consent": "required"}
    )
    decide_many(session, run=review.run, status="approved", comment=None, actor="t")
    commit_run(
        session, run=review.run, actor="t", today=local_today(review.world.alliance.timezone)
    )
    session.commit()
    offer = session.scalars(select(Offer).order_by(Offer.id)).first()
    assert offer is not None
    apprentice = offer.apprentice
    token = make_offer_token(state(app).settings.secret_key, offer.id)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/offer/{token}")
    expect(page.get_by_role("heading", name="带徒邀请")).to_be_visible()
    expect(page.locator("dl.pair")).to_contain_text(apprentice.name)
    expect(page.locator(".chips")).to_contain_text(apprentice.wants[0].skill.name)
    # Nothing wider than the phone: the page does not scroll sideways.
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1]
    if backend == "sqlite" or not UPDATE_SCREENSHOTS:  # one backend writes the README's picture
        _screenshot(page, tmp_path, "offer-phone.png", 390, 844)

    page.get_by_role("button", name="接受").click()
    expect(page.get_by_role("heading", name="感谢您接受带徒")).to_be_visible()
    session.rollback()
    accepted = session.get_one(Offer, offer.id)
    assert accepted.status == "accepted" and accepted.answered_by == "craftsman:link"
    mentorship = session.get_one(Mentorship, accepted.mentorship_id)
    assert (mentorship.craftsman_id, mentorship.apprentice_id) == (
        offer.craftsman_id,
        offer.apprentice_id,
    )
    # The same link again: refused with a page saying the offer was accepted already.
    page.goto(f"{live_server}/offer/{token}")
    expect(page.locator(".message")).to_contain_text("已被接受")
