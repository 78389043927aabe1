"""A small alliance with a proposed match run and a coordinator who signs in to review it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.models import MatchRun, Unit
from matcher.services.alliances import update_unit
from matcher.services.matching import create_match_run, execute_match_run
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from matcher.services.users import create_user
from tests import factories
from tests.factories import World

PASSWORD = "正确的密码-correct-horse"


@dataclass
class Review:
    """What the page tests work on."""

    world: World
    third_unit: Unit
    run: MatchRun
    foreign_run: MatchRun
    email: str
    english_email: str


def _craftsman(
    external_id: str, name: str, skills: dict[str, int], capacity: int, region: str
) -> dict:
    return factories.craftsman_item(
        external_id,
        name=name,
        region=region,
        skills=[{"name": s, "level": level} for s, level in skills.items()],
        capacity=capacity,
    )


def _apprentice(external_id: str, name: str, wants: dict[str, int], region: str) -> dict:
    return factories.apprentice_item(
        external_id,
        name=name,
        region=region,
        wants=[{"name": s, "level": level, "weight": 1.0} for s, level in wants.items()],
    )


@pytest.fixture
def review(session: Session, world: World) -> Review:
    """Three units of the home alliance, people with real-looking names, a proposed run;
    a run of the other alliance; a zh-CN and an en coordinator of the home alliance."""
    update_unit(session, unit=world.unit, changes={"name": "杭州电机有限公司"})
    update_unit(session, unit=world.sibling_unit, changes={"name": "湘潭电机集团"})
    third = factories.unit(session, world.alliance, "NBHJ", name="宁波焊接技术中心", region="宁波")
    people = {
        world.unit: (
            [
                _craftsman("C-HZDJ", "钱国强", {"氩弧焊": 5}, 2, "杭州"),
                _craftsman("C-HZDJ-2", "周建国", {"数控车削": 5, "数控铣削": 4}, 2, "杭州"),
                _craftsman("C-HZDJ-3", "陈秀英", {"电机绕组嵌线": 5}, 1, "杭州"),
            ],
            [
                _apprentice("A-HZDJ", "徐小兵", {"焊接": 3}, "杭州"),
                _apprentice("A-HZDJ-2", "张晓明", {"氩弧焊": 3}, "杭州"),
                _apprentice("A-HZDJ-3", "孙磊", {"数控铣削": 3}, "杭州"),
                _apprentice("A-HZDJ-4", "冯敏", {"电机绕组嵌线": 3}, "杭州"),
            ],
        ),
        world.sibling_unit: (
            [
                _craftsman("C-XTDJ", "谭永红", {"氩弧焊": 5}, 2, "湘潭"),
                _craftsman("C-XTDJ-2", "李卫东", {"氩弧焊": 4, "钎焊": 5}, 2, "杭州"),
                _craftsman("C-XTDJ-3", "刘志强", {"数控铣削": 5}, 1, "湘潭"),
            ],
            [
                _apprentice("A-XTDJ", "曾丹", {"焊接": 3}, "湘潭"),
                _apprentice("A-XTDJ-2", "何佳", {"数控车削": 3}, "湘潭"),
                _apprentice("A-XTDJ-3", "黄伟", {"电机绕组嵌线": 4}, "湘潭"),
                _apprentice("A-XTDJ-4", "郑宇", {"数控车削": 4, "数控铣削": 2}, "湘潭"),
            ],
        ),
        third: (
            [
                _craftsman("C-NBHJ", "王海波", {"氩弧焊": 5, "钎焊": 4}, 2, "宁波"),
                _craftsman("C-NBHJ-2", "赵丽", {"数控车削": 4}, 2, "宁波"),
            ],
            [
                _apprentice("A-NBHJ", "马超", {"钎焊": 3}, "宁波"),
                _apprentice("A-NBHJ-2", "林芳", {"数控铣削": 2}, "宁波"),
                _apprentice("A-NBHJ-3", "许静", {"电机绕组嵌线": 4}, "宁波"),
            ],
        ),
    }
    for unit, (craftsmen, apprentices) in people.items():
        upsert_people(session, kind=CRAFTSMAN, unit=unit, items=craftsmen)
        upsert_people(session, kind=APPRENTICE, unit=unit, items=apprentices)
    run = create_match_run(
        session, alliance=world.alliance, params=MatchParams(), created_by="test"
    )
    execute_match_run(session, run=run)
    foreign = create_match_run(
        session, alliance=world.other_alliance, params=MatchParams(), created_by="t"
    )
    execute_match_run(session, run=foreign)
    create_user(session, email="coord@emca.example.cn", password=PASSWORD, alliance=world.alliance)
    create_user(
        session,
        email="en@emca.example.cn",
        password=PASSWORD,
        alliance=world.alliance,
        locale="en",
    )
    session.commit()
    assert run.status == "proposed" and foreign.status == "proposed"
    return Review(
        world=world,
        third_unit=third,
        run=run,
        foreign_run=foreign,
        email="coord@emca.example.cn",
        english_email="en@emca.example.cn",
    )


TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(html: str) -> str:
    """The CSRF token of the first form of a page."""
    match = TOKEN.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the CSRF token of the signed-in session."""
    token = csrf(client.get("/").get_data(as_text=True))
    response = client.post(
        "/sign-in", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return csrf(client.get("/").get_data(as_text=True))
