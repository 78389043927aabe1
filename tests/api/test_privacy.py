"""privacy.md, "Access, copy, erasure, retention": the export of everything held about a person,
erasure (no trace left in any table or outgoing email, counts unchanged), the ``retention`` job,
and the access log of single-person reads. On both databases."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    cast,
    func,
    select,
    text,
)
from sqlalchemy.orm import Session

from matcher.algorithms import MatchParams
from matcher.db import Base
from matcher.errors import Conflict
from matcher.extensions import state
from matcher.models import (
    Apprentice,
    ApprenticePreference,
    AuditEvent,
    ChannelMessage,
    Craftsman,
    Offer,
    Proposal,
    RejectedPair,
    Reminder,
    UnmatchedApprentice,
    WebhookDelivery,
)
from matcher.services import access
from matcher.services.channels import create_channel
from matcher.services.emails import message_id, render
from matcher.services.matching import create_match_run, execute_match_run
from matcher.services.mentorships import SummaryInput, add_summary, create_mentorship
from matcher.services.overview import alliance_overview
from matcher.services.people import (
    APPRENTICE,
    CRAFTSMAN,
    PersonKind,
    deactivate_person,
    upsert_people,
)
from matcher.services.privacy import PERSON_DATA, PSEUDONYM_PREFIX, erase_person
from matcher.services.programme import CheckInInput, add_check_in, assess
from matcher.services.webhooks import create_endpoint, fan_out
from tests import factories
from tests.factories import World

API = "/api/v1"
KINDS = {"craftsman": CRAFTSMAN, "apprentice": APPRENTICE}


def person_tables(metadata: MetaData) -> set[str]:
    """Tables with a person column: a foreign key to craftsmen or apprentices, or an email
    address (named so, or as long as one: 254)."""
    found = set()
    for table in metadata.tables.values():
        for column in table.columns:
            to_person = any(
                fk.target_fullname.split(".")[0] in ("craftsmen", "apprentices")
                for fk in column.foreign_keys
            )
            address = (
                "email" in column.name
                or "recipient" in column.name
                or getattr(column.type, "length", None) == 254
            )
            if to_person or address:
                found.add(table.name)
    return found


def test_every_table_with_a_person_column_says_how_it_is_exported_and_erased() -> None:
    missing = person_tables(Base.metadata) - set(PERSON_DATA)
    assert not missing, f"add these tables to matcher.services.privacy.PERSON_DATA: {missing}"
    assert set(PERSON_DATA) <= set(Base.metadata.tables), "PERSON_DATA names no such table"
    for name, holding in PERSON_DATA.items():
        assert holding.export is not None or holding.why_not, name
        columns = Base.metadata.tables[name].columns
        assert set(holding.scrub) | set(holding.authored) <= set(columns.keys()), name


def test_a_new_table_with_a_person_column_is_noticed() -> None:
    """The check above finds a table it has not seen: one pointing at a person, one holding an
    address."""
    metadata = MetaData()
    Table("craftsmen", metadata, Column("id", Integer, primary_key=True))
    Table(
        "offers_like",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("craftsman_id", ForeignKey("craftsmen.id")),
    )
    Table(
        "contacts_like", metadata, Column("id", Integer, primary_key=True), Column("x", String(254))
    )
    Table("plain", metadata, Column("id", Integer, primary_key=True), Column("y", String(20)))
    assert person_tables(metadata) == {"offers_like", "contacts_like"}


# --- one person with a full history ------------------------------------------------------------

NAME, EMAIL, EXTERNAL_ID = "蔡文姬", "caiwenji@hzdj.example.cn", "HZ-ERASE-0042"
PARTNER_NAME, PARTNER_EMAIL = "黄月英", "huangyueying@xtdj.example.cn"


@dataclass
class History:
    kind: PersonKind
    person_id: int
    partner_id: int
    mentorship_id: int
    hr: str  # the world key of the person's own unit's hr


def _history(session: Session, world: World, kind: PersonKind) -> History:
    """The person (of ``kind``, in the home unit) with a row in every table that can hold them:
    skills, a proposal with a comment, an unmatched entry, a rejection, a completed pair with
    summaries and check-ins of both (the partner's naming them), an assessment and certificate,
    emails sent and queued, webhook events, deliveries and chat messages naming them."""
    home, other = world.unit, world.sibling_unit
    apprentice_unit, craftsman_unit = (home, other) if kind is APPRENTICE else (other, home)
    own = {"name": NAME, "email": EMAIL}
    partner = {"name": PARTNER_NAME, "email": PARTNER_EMAIL}
    craftsman_fields = own if kind is CRAFTSMAN else partner
    apprentice_fields = own if kind is APPRENTICE else partner
    craftsman_id = upsert_people(
        session,
        kind=CRAFTSMAN,
        unit=craftsman_unit,
        items=[
            factories.craftsman_item(
                EXTERNAL_ID if kind is CRAFTSMAN else "P-1",
                skills=[{"name": "焊接", "level": 5}],
                **craftsman_fields,
            )
        ],
    ).ids[0]
    apprentice_id = upsert_people(
        session,
        kind=APPRENTICE,
        unit=apprentice_unit,
        items=[
            factories.apprentice_item(
                EXTERNAL_ID if kind is APPRENTICE else "P-1", **apprentice_fields
            )
        ],
    ).ids[0]
    # Receivers of every event: the home unit's webhook and chat group.
    owner = access.Principal(role="hr", alliance_id=world.alliance.id, unit_id=home.id)
    create_endpoint(
        session,
        owner=owner,
        url="https://hr.example.cn/hooks",
        events=["*"],
        description=None,
        allow_private=False,
        https_only=True,
    )
    create_channel(
        session,
        owner=owner,
        fields={
            "kind": "wecom",
            "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
            "events": ["mentorship.created", "mentorship.completed", "person.deactivated"],
        },
        allow_private=False,
        https_only=True,
    )
    run = create_match_run(session, alliance=world.alliance, params=MatchParams(), created_by="t")
    execute_match_run(session, run=run)
    proposal = session.scalars(
        select(Proposal).where(
            Proposal.match_run_id == run.id,
            (Proposal.craftsman_id == craftsman_id) | (Proposal.apprentice_id == apprentice_id),
        )
    ).first()
    if proposal is None:  # the solver chose others: a proposal of this pair, as a coordinator's
        proposal = Proposal(
            match_run_id=run.id,
            craftsman_id=craftsman_id,
            apprentice_id=apprentice_id,
            score=0.5,
            fit=0.5,
        )
        session.add(proposal)
    proposal.comment = f"{NAME}很合适"
    if kind is APPRENTICE:
        session.add(
            UnmatchedApprentice(
                match_run_id=run.id,
                apprentice_id=apprentice_id,
                reason_code="excluded",
                detail={"craftsman_ids": [craftsman_id]},
            )
        )
    session.add(RejectedPair(craftsman_id=craftsman_id, apprentice_id=apprentice_id))
    session.add(
        ApprenticePreference(apprentice_id=apprentice_id, craftsman_id=craftsman_id, rank=1)
    )
    session.flush()
    # An offer of the pair that the craftsman declined, in words naming the person.
    offered_at = datetime(2025, 12, 1, tzinfo=UTC)
    session.add(
        Offer(
            alliance_id=world.alliance.id,
            proposal_id=proposal.id,
            craftsman_id=craftsman_id,
            apprentice_id=apprentice_id,
            status="declined",
            offered_at=offered_at,
            expires_at=offered_at + timedelta(days=7),
            answered_at=offered_at + timedelta(days=1),
            answered_by="link",
            reason=f"这周没空带{NAME}" if kind is APPRENTICE else f"我是{NAME}，这周没空",
        )
    )
    pair = create_mentorship(
        session,
        craftsman=session.get_one(Craftsman, craftsman_id),
        apprentice=session.get_one(Apprentice, apprentice_id),
        started_on=date(2026, 1, 1),
    )
    pair.end_comment = f"{NAME}已调岗"
    own_role, partner_role = kind.label, "apprentice" if kind is CRAFTSMAN else "craftsman"
    for author, content in (
        (own_role, f"我是{NAME}，练了打底焊"),
        (partner_role, f"带{NAME}练盖面焊"),
    ):
        add_summary(
            session,
            mentorship=pair,
            summary=SummaryInput(author=author, content=content, hours=3, skills=[]),
            submitted_by="test",
        )
        add_check_in(
            session,
            mentorship=pair,
            check_in=CheckInInput(author=author, rating=5, good_fit=True, comment=content),
            submitted_by="test",
        )
    for status, period in (("sent", 1), ("pending", 2)):
        session.add(
            Reminder(
                alliance_id=world.alliance.id,
                mentorship_id=pair.id,
                period_index=period,
                kind="upcoming",
                recipient=EMAIL,
                recipient_role=own_role,
                dedupe_key=f"test-{period}-{own_role}",
                status=status,
                sent_at=datetime(2026, 1, 20, tzinfo=UTC) if status == "sent" else None,
                last_error=f"450 {EMAIL} mailbox busy" if status == "pending" else None,
            )
        )
        session.add(
            Reminder(
                alliance_id=world.alliance.id,
                mentorship_id=pair.id,
                period_index=period,
                kind="upcoming",
                recipient=PARTNER_EMAIL,
                recipient_role=partner_role,
                dedupe_key=f"test-{period}-{partner_role}",
                status=status,
            )
        )
    assess(
        session,
        mentorship=pair,
        fields={
            "theory": 90,
            "practice": 88,
            "skills": [{"name": "焊接", "level": 4}],
            "evaluator": "联盟考核组",
            "result": "pass",
            "comment": f"{NAME}表现优秀",
        },
        today=date(2026, 6, 1),
        actor="test",
    )
    deactivate_person(
        session,
        kind=kind,
        person=session.get_one(kind.model, pair_person(kind, craftsman_id, apprentice_id)),
    )
    fan_out(session)
    session.commit()
    return History(
        kind=kind,
        person_id=pair_person(kind, craftsman_id, apprentice_id),
        partner_id=apprentice_id if kind is CRAFTSMAN else craftsman_id,
        mentorship_id=pair.id,
        hr="hr",
    )


def pair_person(kind: PersonKind, craftsman_id: int, apprentice_id: int) -> int:
    return craftsman_id if kind is CRAFTSMAN else apprentice_id


def _needles(*values: str) -> set[str]:
    """The strings that betray a value: as written, and JSON-escaped (JSON columns)."""
    return {form for value in values for form in (value, json.dumps(value)[1:-1])}


def _dump(session: Session) -> str:
    """The whole database as text: SQLite's iterdump; on PostgreSQL every column of every
    table's rows, cast to text."""
    if session.get_bind().dialect.name == "sqlite":
        raw = session.connection().connection.driver_connection
        return "\n".join(raw.iterdump())  # type: ignore[union-attr]
    lines = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(*(cast(c, Text) for c in table.columns))):
            lines.append("\t".join("" if v is None else v for v in row))
    return "\n".join(lines)


def _traces(session: Session, *values: str) -> set[str]:
    dump = _dump(session)
    return {needle for needle in _needles(*values) if needle in dump}


def _counts(session: Session) -> dict[str, int]:
    return {
        table.name: session.scalar(select(func.count()).select_from(table)) or 0
        for table in Base.metadata.sorted_tables
        if table.name != "rate_limit_windows"  # the requests' own counting
    }


def _figures(session: Session, client: FlaskClient, world: World) -> dict[str, Any]:
    """The alliance's overview counts and activity figures, without names."""
    overview = alliance_overview(session, alliance=world.alliance, today=date(2026, 7, 1))
    report = client.get(
        f"{API}/alliances/{world.alliance.id}/activity?from=2026-01-01&to=2026-06-30",
        headers=world.auth("coordinator"),
    )
    assert report.status_code == 200, report.get_data(as_text=True)
    body = report.get_json()
    for row in body["craftsmen"]:
        row["craftsman"] = row["craftsman"]["id"]
    return {
        "units": [(u.unit.id, u.craftsmen, u.apprentices, u.active_people) for u in overview.units],
        "active": overview.active_mentorships,
        "activity": body,
    }


# --- export ----------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["craftsman", "apprentice"])
def test_the_export_holds_every_table_that_holds_the_person(
    client: FlaskClient, session: Session, world: World, label: str
) -> None:
    history = _history(session, world, KINDS[label])
    plural = "craftsmen" if label == "craftsman" else "apprentices"
    response = client.get(f"{API}/{plural}/{history.person_id}/export", headers=world.auth("hr"))
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    assert (document["kind"], document["id"]) == (label, history.person_id)
    own_child = "craftsman_skills" if label == "craftsman" else "apprentice_wants"
    other_child = "apprentice_wants" if label == "craftsman" else "craftsman_skills"
    other_table = "apprentices" if label == "craftsman" else "craftsmen"
    exported = {name for name, holding in PERSON_DATA.items() if holding.export is not None}
    assert set(document["tables"]) == exported
    assert set(document["not_exported"]) == set(PERSON_DATA) - exported
    apprentices_only = {"unmatched_apprentices"} if label == "craftsman" else set()
    for name in exported - {other_child, other_table, "access_log", *apprentices_only}:
        assert document["tables"][name], f"the export has no rows of {name}"
    assert document["tables"][other_child] == [] and document["tables"][other_table] == []
    assert document["tables"][own_child]
    (row,) = document["tables"][plural]
    assert (row["name"], row["email"], row["external_id"]) == (NAME, EMAIL, EXTERNAL_ID)
    # Emails sent to them (both), none of the partner's.
    emails = document["tables"]["reminders"]
    assert sorted(e["status"] for e in emails) == ["pending", "sent"]
    assert {e["recipient"] for e in emails} == {EMAIL}
    # Other people by name only; their own free text withheld.
    partner = {
        "kind": "apprentice" if label == "craftsman" else "craftsman",
        "id": history.partner_id,
        "name": PARTNER_NAME,
        "unit_id": world.sibling_unit.id,
    }
    assert partner in document["others"]
    assert all(set(other) == set(partner) for other in document["others"])
    assert PARTNER_EMAIL not in response.get_data(as_text=True)
    summaries = {s["author"]: s["content"] for s in document["tables"]["training_summaries"]}
    assert summaries[label] == f"我是{NAME}，练了打底焊"
    assert set(summaries.values()) - {summaries[label]} == {None}
    # hr of its own unit: not in the access log; a coordinator's export is.
    assert (
        client.get(
            f"{API}/access-log?kind={label}&person={history.person_id}", headers=world.auth("hr")
        ).get_json()
        == []
    )
    client.get(f"{API}/{plural}/{history.person_id}/export", headers=world.auth("coordinator"))
    (entry,) = client.get(
        f"{API}/access-log?kind={label}&person={history.person_id}", headers=world.auth("hr")
    ).get_json()
    assert (entry["action"], entry["reader_role"]) == ("export", "coordinator")


# --- erasure ---------------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["craftsman", "apprentice"])
def test_erasure_leaves_no_trace_and_the_counts_unchanged(
    app: Flask, client: FlaskClient, session: Session, world: World, label: str
) -> None:
    kind = KINDS[label]
    history = _history(session, world, kind)
    plural = "craftsmen" if label == "craftsman" else "apprentices"
    # The scan finds what it looks for (else "no trace" would prove nothing).
    assert _traces(session, NAME, EMAIL, EXTERNAL_ID) == _needles(NAME, EMAIL, EXTERNAL_ID)
    counts, figures = _counts(session), _figures(session, client, world)
    pending_deliveries = session.scalar(
        select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "pending")
    )
    assert pending_deliveries

    response = client.post(f"{API}/{plural}/{history.person_id}/erase", headers=world.auth("hr"))
    assert response.status_code == 200, response.get_data(as_text=True)
    outcome = response.get_json()
    pseudonym = outcome["pseudonym"]
    assert pseudonym.startswith(PSEUDONYM_PREFIX) and len(pseudonym) == len(PSEUDONYM_PREFIX) + 4
    assert outcome["rows"]["emails_cancelled"] == 1
    assert outcome["rows"]["training_summaries"] >= 2 and outcome["rows"]["check_ins"] >= 1
    session.expire_all()

    assert _traces(session, NAME, EMAIL, EXTERNAL_ID) == set()
    assert _traces(session, PARTNER_NAME, PARTNER_EMAIL), "the partner's data is theirs: kept"
    after = _counts(session)
    assert after == {**counts, "audit_events": counts["audit_events"] + 1}
    assert _figures(session, client, world) == figures
    # The person, as the API shows them now.
    shown = client.get(f"{API}/{plural}/{history.person_id}", headers=world.auth("hr")).get_json()
    assert (shown["name"], shown["external_id"], shown["email"], shown["active"]) == (
        pseudonym,
        pseudonym,
        None,
        False,
    )
    # Their own text is gone; the partner's kept, naming them by the pseudonym.
    contents = dict(
        session.execute(
            text("SELECT author, content FROM training_summaries WHERE mentorship_id = :m"),
            {"m": history.mentorship_id},
        ).all()
    )
    assert contents[label] == ""
    assert pseudonym in "".join(v for k, v in contents.items() if k != label)
    # The outbox: nothing pending to them; what is still sent names them by the pseudonym only.
    to_them = session.scalars(
        select(Reminder).where(Reminder.recipient.startswith(pseudonym))
    ).all()
    assert sorted(r.status for r in to_them) == ["cancelled", "sent"]
    settings = state(app).settings
    for reminder in session.scalars(select(Reminder)).all():
        rendered = render(session, reminder, settings)
        email = rendered.subject + rendered.text + rendered.html + reminder.recipient
        assert not {n for n in _needles(NAME, EMAIL, EXTERNAL_ID) if n in email}, reminder.id
    # Queued webhook deliveries and chat messages that carried their data: cancelled.
    assert (
        session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == "pending")
        )
        == 0
    )
    assert (
        session.scalar(
            select(func.count())
            .select_from(ChannelMessage)
            .where(ChannelMessage.status == "pending")
        )
        == 0
    )
    # Audited, without the person's data; irreversible: a second erasure is refused.
    audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "person.erased")).one()
    assert (audit.object_type, audit.object_id) == (label, history.person_id)
    assert audit.actor.startswith("hr-key:") and audit.data["pseudonym"] == pseudonym
    again = client.post(f"{API}/{plural}/{history.person_id}/erase", headers=world.auth("hr"))
    assert again.status_code == 409


def test_a_person_in_an_active_mentorship_is_not_erased(
    client: FlaskClient, session: Session, world: World
) -> None:
    pair = factories.mentorship(session, world.sibling_unit, world.unit, date(2026, 1, 1), "act")
    session.commit()
    response = client.post(
        f"{API}/apprentices/{pair.apprentice_id}/erase", headers=world.auth("hr")
    )
    assert response.status_code == 409
    assert session.get_one(Apprentice, pair.apprentice_id).erased_at is None
    assert session.get_one(Apprentice, pair.apprentice_id).name == "学徒act"


def test_two_erasures_of_one_person_erase_once(session: Session, world: World) -> None:
    """The claim is a compare-and-set: the second (another scheduler, a retried request) gets
    409 and changes nothing."""
    person = session.get_one(Apprentice, world.apprentice_ids[world.unit.code])
    first = erase_person(session, kind=APPRENTICE, person=person, actor="a")
    session.commit()
    with pytest.raises(Conflict):
        erase_person(session, kind=APPRENTICE, person=person, actor="b")
    session.rollback()
    assert session.get_one(Apprentice, person.id).name == first["pseudonym"]
    assert (
        session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "person.erased")
        )
        == 1
    )


def test_two_erasures_at_once_erase_once(app: Flask, world: World) -> None:
    """Two sessions (two schedulers, or a job and a request) erase one person together: the
    compare-and-set lets one through; the other gets 409 and writes nothing."""
    person_id = world.apprentice_ids[world.unit.code]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def erase(actor: str) -> None:
        with state(app).session_factory() as own:
            person = own.get_one(Apprentice, person_id)
            start.wait()
            try:
                erase_person(own, kind=APPRENTICE, person=person, actor=actor)
                own.commit()
                outcomes.append("erased")
            except Conflict:
                own.rollback()
                outcomes.append("conflict")

    threads = [threading.Thread(target=erase, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "erased"]
    with state(app).session_factory() as check:
        assert (
            check.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "person.erased")
            )
            == 1
        )


# --- retention -------------------------------------------------------------------------------


def _jobs_run(app: Flask, name: str, now: datetime) -> dict[str, Any]:
    """``matcher jobs run NAME --now ISO``, as an operator types it."""
    result = app.test_cli_runner().invoke(args=["jobs", "run", name, "--now", now.isoformat()])
    assert result.exit_code == 0, result.output
    outcome: dict[str, Any] = json.loads(result.output.strip().splitlines()[-1])
    return outcome


def test_retention_months_is_an_alliance_setting_validated(
    client: FlaskClient, world: World
) -> None:
    url = f"{API}/alliances/{world.alliance.id}"
    assert client.get(url, headers=world.auth("coordinator")).get_json()["retention_months"] == 36
    for bad in (0, 121, "12", 1.5, None):
        answer = client.patch(url, json={"retention_months": bad}, headers=world.auth("admin"))
        assert answer.status_code == 422 and "retention_months" in answer.get_json()["errors"]
    changed = client.patch(url, json={"retention_months": 12}, headers=world.auth("coordinator"))
    assert changed.status_code == 200 and changed.get_json()["retention_months"] == 12


def test_the_retention_job_erases_people_past_the_period_and_old_email_bodies(
    app: Flask, session: Session, world: World
) -> None:
    now = datetime(2027, 6, 1, 3, 30, tzinfo=UTC)
    world.alliance.retention_months = 12
    old, recent = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
    made = upsert_people(
        session,
        kind=APPRENTICE,
        unit=world.unit,
        items=[
            factories.apprentice_item(
                "GONE", name="离职已久", email="gone@hzdj.example.cn", active=False
            ),
            factories.apprentice_item("LATE", name="刚离职", active=False),
            factories.apprentice_item("HERE", name="还在岗", active=True),
            factories.apprentice_item("PAIRED", name="刚结对", active=False),
        ],
    ).ids
    gone, late, here, paired = made
    # "Inactive since": when the row last changed (deactivation writes updated_at).
    for person_id, since in ((gone, old), (late, recent), (here, old), (paired, old)):
        session.execute(
            text("UPDATE apprentices SET updated_at = :t WHERE id = :i"),
            {"t": since, "i": person_id},
        )
    # PAIRED's pair ended less than 12 months before now.
    pair = create_mentorship(
        session,
        craftsman=session.get_one(Craftsman, world.craftsman_ids[world.sibling_unit.code]),
        apprentice=session.get_one(Apprentice, paired),
        started_on=date(2026, 1, 1),
    )
    pair.status, pair.ended_on, pair.next_due_on = "ended", date(2026, 9, 1), None
    # Two sent emails written as files (no SMTP): one older than 12 months, one not.
    settings = state(app).settings
    folder = Path(app.instance_path) / "outbox"
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for label, sent_at in (("old", old), ("recent", recent)):
        reminder = Reminder(
            alliance_id=world.alliance.id,
            mentorship_id=pair.id,
            period_index=1 if label == "old" else 2,
            kind="upcoming",
            recipient="x@example.cn",
            recipient_role="craftsman",
            dedupe_key=f"retention-{label}",
            status="sent",
            sent_at=sent_at,
        )
        session.add(reminder)
        session.flush()
        name = message_id(reminder, settings.mail_from).strip("<>").replace("@", "_at_")
        files[label] = folder / f"{name.replace('/', '_')}.eml"
        files[label].write_text("Subject: x\n\nbody")
    session.commit()

    outcome = _jobs_run(app, "retention", now)
    assert outcome["apprentices_erased"] == 1 and outcome["email_bodies_deleted"] == 1
    session.expire_all()
    names = {i: session.get_one(Apprentice, i).name for i in made}
    assert names[gone].startswith(PSEUDONYM_PREFIX)
    assert (names[late], names[here], names[paired]) == ("刚离职", "还在岗", "刚结对")
    assert not files["old"].exists() and files["recent"].exists()
    assert session.scalars(
        select(AuditEvent.actor).where(AuditEvent.action == "person.erased")
    ).all() == ["retention job"]
    # Run again (a second scheduler, the next day): nothing more to do.
    again = _jobs_run(app, "retention", now + timedelta(days=1))
    assert again["apprentices_erased"] == 0 and again["email_bodies_deleted"] == 0
    files["recent"].unlink()  # the instance folder is shared by every test


# --- the access log --------------------------------------------------------------------------


def test_reads_of_a_person_by_others_than_their_unit_are_logged_and_scoped(
    client: FlaskClient, world: World
) -> None:
    person = world.craftsman_ids[world.unit.code]
    url = f"{API}/craftsmen/{person}"
    log = f"{API}/access-log?kind=craftsman&person={person}"
    assert client.get(url, headers=world.auth("hr")).status_code == 200  # its own unit: not logged
    assert client.get(log, headers=world.auth("hr")).get_json() == []
    assert client.get(url, headers=world.auth("coordinator")).status_code == 200
    assert client.get(url, headers=world.auth("admin")).status_code == 200
    assert client.get(url, headers=world.auth("sibling_hr")).status_code == 404  # not a read
    entries = client.get(log, headers=world.auth("hr")).get_json()
    assert [(e["reader_role"], e["action"]) for e in entries] == [
        ("admin", "read"),
        ("coordinator", "read"),
    ]
    assert entries[1]["reader_alliance_id"] == world.alliance.id
    assert client.get(log, headers=world.auth("admin")).get_json() == entries
    assert client.get(log, headers=world.auth("coordinator")).status_code == 403
    assert client.get(log, headers=world.auth("sibling_hr")).status_code == 404
    # Another person's log is theirs alone.
    other = world.apprentice_ids[world.unit.code]
    assert (
        client.get(
            f"{API}/access-log?kind=apprentice&person={other}", headers=world.auth("hr")
        ).get_json()
        == []
    )


@pytest.mark.parametrize(
    "query",
    [
        "",
        "kind=craftsman",
        "person=1",
        "kind=boss&person=1",
        "kind=craftsman&person=0",
        "kind=craftsman&person=x",
        "kind=craftsman&person=1&other=1",
    ],
)
def test_the_access_log_refuses_bad_queries(client: FlaskClient, world: World, query: str) -> None:
    answer = client.get(f"{API}/access-log?{query}", headers=world.auth("admin"))
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
