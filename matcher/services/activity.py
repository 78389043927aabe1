"""The activity assessment of an alliance's craftsmen and units over a period (programme.md,
"Activity assessment"; seed 004: 动态管理), computed by the database in one statement.

Every date is turned into a day number (days since 1970-01-01) so that the period arithmetic is
integer arithmetic, the same on PostgreSQL and SQLite. Timestamps (summaries and check-ins
handed in) count on the alliance's local date: its UTC offset at the end of the period is added
before the day is taken (exact for the fixed-offset zones the alliances use, such as
Asia/Shanghai).

Per craftsman, over ``[from, to]``:
- ``active``: mentorships that ran for at least a day of the period; ``completed`` / ``ended``:
  those completed / ended early within it;
- ``summaries_due``: summary periods whose due date falls in the period (and before the pair
  ended); ``on_time``: of those, handed in on or before the due date; ``late``: the rest (handed
  in late, or not at all);
- ``hours``: training hours of the summaries handed in within the period;
- ``apprentices_passed``: completion assessments passed within the period;
- ``mean_rating``: the mean check-in rating given within the period (null without one);
- ``idle``: no mentorship running at ``to`` and no summary in the ``idle_months`` before it.
A unit sums its craftsmen; it is idle when every craftsman of it is (and it has one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from matcher.errors import ValidationFailed
from matcher.models import (
    ASSESSMENT_PASS,
    MENTORSHIP_COMPLETED,
    MENTORSHIP_ENDED,
    Alliance,
    Assessment,
    CheckIn,
    Craftsman,
    Mentorship,
    TrainingSummary,
    Unit,
)
from matcher.services.mentorships import add_months

EPOCH = date(1970, 1, 1)
MAX_PERIOD_DAYS = 3 * 366 + 1
FIGURES = (
    "active",
    "completed",
    "ended",
    "summaries_due",
    "summaries_on_time",
    "summaries_late",
    "hours",
    "apprentices_passed",
    "mean_rating",
)


def day_number(day: date) -> int:
    """Days since 1970-01-01."""
    return (day - EPOCH).days


class _Days:
    """Day numbers of date and timestamp columns, in the session's dialect."""

    def __init__(self, dialect: str, offset_seconds: int) -> None:
        self.postgresql = dialect == "postgresql"
        self.offset = offset_seconds

    def of_date(self, column: Any) -> ColumnElement[int]:
        if self.postgresql:
            return cast(column - literal(EPOCH), Integer)
        return cast(func.julianday(column) - 2440587.5, Integer)

    def of_local_time(self, column: Any) -> ColumnElement[int]:
        """The local day of a UTC timestamp."""
        # Integer division truncates: the floor for the days after 1970 a service counts.
        if self.postgresql:
            seconds = cast(extract("epoch", column), BigInteger) + self.offset
            return cast(seconds // 86400, Integer)
        shifted = func.julianday(column, f"{self.offset:+d} seconds")
        return cast(shifted - 2440587.5, Integer)


def _due_up_to(day: Any, start: Any, every: Any) -> ColumnElement[int]:
    """How many summary periods fall due on or before ``day`` (day numbers)."""
    elapsed = day - start
    return case((elapsed >= every, elapsed // every), else_=0)


@dataclass(frozen=True)
class Period:
    """The assessed period and what it is measured against."""

    first: date
    last: date
    idle_months: int


def check_period(first: date, last: date) -> None:
    """``from`` on or before ``to``, at most three years apart (else 422)."""
    if last < first:
        raise ValidationFailed("`to` is before `from`.", errors={"to": ["Before `from`."]})
    if (last - first).days > MAX_PERIOD_DAYS:
        raise ValidationFailed(
            "The period may span three years at most.", errors={"to": ["At most 3 years."]}
        )


def _per_mentorship(alliance: Alliance, period: Period, days: _Days) -> Select[Any]:
    """One row per mentorship of the alliance that ran in the period or before it: its figures."""
    first, last = day_number(period.first), day_number(period.last)
    idle_since = day_number(add_months(period.last, -period.idle_months))
    start = days.of_date(Mentorship.started_on)
    every = Mentorship.summary_every_days
    ended = days.of_date(Mentorship.ended_on)
    upper = case((and_(Mentorship.ended_on.is_not(None), ended < last), ended), else_=last)
    due_day = start + TrainingSummary.period_index * every
    handed_day = days.of_local_time(TrainingSummary.submitted_at)
    summaries = (
        select(
            TrainingSummary.mentorship_id.label("mentorship_id"),
            func.sum(
                case(
                    (
                        and_(due_day >= first, due_day <= upper, handed_day <= due_day),
                        1,
                    ),
                    else_=0,
                )
            ).label("on_time"),
            func.sum(
                case(
                    (and_(handed_day >= first, handed_day <= last), TrainingSummary.hours),
                    else_=0.0,
                )
            ).label("hours"),
            func.sum(case((and_(handed_day > idle_since, handed_day <= last), 1), else_=0)).label(
                "recent"
            ),
        )
        .join(Mentorship, Mentorship.id == TrainingSummary.mentorship_id)
        .where(Mentorship.alliance_id == alliance.id)
        .group_by(TrainingSummary.mentorship_id)
        .subquery("summaries")
    )
    checked_day = days.of_local_time(CheckIn.submitted_at)
    check_ins = (
        select(
            CheckIn.mentorship_id.label("mentorship_id"),
            func.sum(CheckIn.rating).label("rating_sum"),
            func.count().label("rating_count"),
        )
        .join(Mentorship, Mentorship.id == CheckIn.mentorship_id)
        .where(Mentorship.alliance_id == alliance.id, checked_day >= first, checked_day <= last)
        .group_by(CheckIn.mentorship_id)
        .subquery("check_ins")
    )
    assessed = days.of_date(Assessment.assessed_on)
    ran = and_(start <= last, or_(Mentorship.ended_on.is_(None), ended >= first))
    ended_within = and_(Mentorship.ended_on.is_not(None), ended >= first, ended <= last)
    return (
        select(
            Mentorship.craftsman_id.label("craftsman_id"),
            case((ran, 1), else_=0).label("active"),
            case((and_(Mentorship.status == MENTORSHIP_COMPLETED, ended_within), 1), else_=0).label(
                "completed"
            ),
            case((and_(Mentorship.status == MENTORSHIP_ENDED, ended_within), 1), else_=0).label(
                "ended"
            ),
            case(
                (ran, _due_up_to(upper, start, every) - _due_up_to(first - 1, start, every)),
                else_=0,
            ).label("due"),
            func.coalesce(summaries.c.on_time, 0).label("on_time"),
            func.coalesce(summaries.c.hours, 0.0).label("hours"),
            func.coalesce(summaries.c.recent, 0).label("recent"),
            case(
                (
                    and_(
                        Assessment.result == ASSESSMENT_PASS,
                        assessed >= first,
                        assessed <= last,
                    ),
                    1,
                ),
                else_=0,
            ).label("passed"),
            func.coalesce(check_ins.c.rating_sum, 0).label("rating_sum"),
            func.coalesce(check_ins.c.rating_count, 0).label("rating_count"),
            case(
                (and_(start <= last, or_(Mentorship.ended_on.is_(None), ended > last)), 1),
                else_=0,
            ).label("running_at_end"),
        )
        .outerjoin(summaries, summaries.c.mentorship_id == Mentorship.id)
        .outerjoin(check_ins, check_ins.c.mentorship_id == Mentorship.id)
        .outerjoin(Assessment, Assessment.mentorship_id == Mentorship.id)
        .where(Mentorship.alliance_id == alliance.id, start <= last)
    )


def _per_craftsman(alliance: Alliance, period: Period, days: _Days) -> Select[Any]:
    """One row per craftsman of the alliance (active, or with a pair in the period)."""
    pairs = _per_mentorship(alliance, period, days).subquery("pairs")
    running = func.coalesce(func.sum(pairs.c.running_at_end), 0)
    recent = func.coalesce(func.sum(pairs.c.recent), 0)
    active = func.coalesce(func.sum(pairs.c.active), 0)
    return (
        select(
            Craftsman.id.label("craftsman_id"),
            Craftsman.name.label("craftsman_name"),
            Craftsman.external_id.label("external_id"),
            Unit.id.label("unit_id"),
            Unit.code.label("unit_code"),
            Unit.name.label("unit_name"),
            active.label("active"),
            func.coalesce(func.sum(pairs.c.completed), 0).label("completed"),
            func.coalesce(func.sum(pairs.c.ended), 0).label("ended"),
            func.coalesce(func.sum(pairs.c.due), 0).label("summaries_due"),
            func.coalesce(func.sum(pairs.c.on_time), 0).label("summaries_on_time"),
            func.coalesce(func.sum(pairs.c.hours), 0.0).label("hours"),
            func.coalesce(func.sum(pairs.c.passed), 0).label("apprentices_passed"),
            func.coalesce(func.sum(pairs.c.rating_sum), 0).label("rating_sum"),
            func.coalesce(func.sum(pairs.c.rating_count), 0).label("rating_count"),
            case((and_(Craftsman.active.is_(True), running == 0, recent == 0), 1), else_=0).label(
                "idle"
            ),
        )
        .join(Unit, Unit.id == Craftsman.unit_id)
        .outerjoin(pairs, pairs.c.craftsman_id == Craftsman.id)
        .where(Unit.alliance_id == alliance.id)
        .group_by(
            Craftsman.id,
            Craftsman.name,
            Craftsman.external_id,
            Craftsman.active,
            Unit.id,
            Unit.code,
            Unit.name,
        )
        .having(or_(Craftsman.active.is_(True), active > 0))
    )


SUMMED = (
    "active",
    "completed",
    "ended",
    "summaries_due",
    "summaries_on_time",
    "hours",
    "apprentices_passed",
    "rating_sum",
    "rating_count",
)


def _both_levels(per_craftsman: Select[Any]) -> Select[Any]:
    """One statement for both levels: the craftsmen's rows (computed once, a CTE) and their sums
    per unit, told apart by ``level`` (0: a craftsman, 1: a unit)."""
    rows = per_craftsman.cte("craftsman_rows")
    craftsmen = select(
        literal(0).label("level"),
        rows.c.craftsman_id,
        rows.c.craftsman_name,
        rows.c.external_id,
        rows.c.unit_id,
        rows.c.unit_code,
        rows.c.unit_name,
        literal(1).label("craftsmen"),
        rows.c.idle.label("idle_craftsmen"),
        *(rows.c[name] for name in SUMMED),
        rows.c.idle,
    )
    units = select(
        literal(1).label("level"),
        literal(None).label("craftsman_id"),
        literal(None).label("craftsman_name"),
        literal(None).label("external_id"),
        rows.c.unit_id,
        rows.c.unit_code,
        rows.c.unit_name,
        func.count().label("craftsmen"),
        func.sum(rows.c.idle).label("idle_craftsmen"),
        *(func.sum(rows.c[name]).label(name) for name in SUMMED),
        literal(0).label("idle"),
    ).group_by(rows.c.unit_id, rows.c.unit_code, rows.c.unit_name)
    both = union_all(craftsmen, units).subquery("levels")
    return select(both).order_by(
        both.c.level, both.c.unit_code, both.c.craftsman_name, both.c.craftsman_id
    )


def _figures(row: Any) -> dict[str, Any]:
    due, on_time = int(row.summaries_due), int(row.summaries_on_time)
    return {
        "active": int(row.active),
        "completed": int(row.completed),
        "ended": int(row.ended),
        "summaries_due": due,
        "summaries_on_time": on_time,
        "summaries_late": max(0, due - on_time),
        "hours": round(float(row.hours), 2),
        "apprentices_passed": int(row.apprentices_passed),
        "mean_rating": (
            round(float(row.rating_sum) / int(row.rating_count), 2) if row.rating_count else None
        ),
    }


def activity(session: Session, *, alliance: Alliance, first: date, last: date) -> dict[str, Any]:
    """The activity assessment of the alliance over ``[first, last]``: per craftsman and per
    unit (see the module's docstring for each figure)."""
    check_period(first, last)
    end_of_period = datetime.combine(last, time(23, 59), ZoneInfo(alliance.timezone))
    offset = end_of_period.utcoffset() or timedelta(0)
    days = _Days(session.get_bind().dialect.name, int(offset.total_seconds()))
    period = Period(first=first, last=last, idle_months=alliance.idle_months)
    rows = session.execute(_both_levels(_per_craftsman(alliance, period, days))).all()
    craftsmen = [
        {
            "craftsman": {
                "id": row.craftsman_id,
                "name": row.craftsman_name,
                "external_id": row.external_id,
            },
            "unit": {"id": row.unit_id, "code": row.unit_code, "name": row.unit_name},
            **_figures(row),
            "idle": bool(row.idle),
        }
        for row in rows
        if row.level == 0
    ]
    units = [
        {
            "unit": {"id": row.unit_id, "code": row.unit_code, "name": row.unit_name},
            "craftsmen": int(row.craftsmen),
            "idle_craftsmen": int(row.idle_craftsmen),
            **_figures(row),
            "idle": int(row.craftsmen) > 0 and int(row.idle_craftsmen) == int(row.craftsmen),
        }
        for row in rows
        if row.level == 1
    ]
    return {
        "alliance_id": alliance.id,
        "from": first,
        "to": last,
        "idle_months": alliance.idle_months,
        "craftsmen": craftsmen,
        "units": units,
    }


XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The workbook's column headers (Chinese: what the alliances' offices read; Excel and WPS open
# it as they are), beside each figure of the JSON.
FIGURE_HEADERS = (
    ("active", "在带师徒数"),
    ("completed", "出师数"),
    ("ended", "提前终止数"),
    ("summaries_due", "应交总结"),
    ("summaries_on_time", "按时提交"),
    ("summaries_late", "逾期或未交"),
    ("hours", "培训学时"),
    ("apprentices_passed", "考核合格学徒"),
    ("mean_rating", "平均反馈评分"),
)


def activity_workbook(report: dict[str, Any]) -> bytes:
    """The assessment as an XLSX workbook: a sheet of craftsmen, a sheet of units, the same
    figures as the JSON (numbers as numbers)."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    craftsmen = book.active
    craftsmen.title = "工匠"
    header = ["工匠", "工号", "单位", *(label for _, label in FIGURE_HEADERS), "待审查（闲置）"]
    craftsmen.append(header)
    for row in report["craftsmen"]:
        craftsmen.append(
            [
                row["craftsman"]["name"],
                row["craftsman"]["external_id"],
                row["unit"]["name"],
                *(row[name] for name, _ in FIGURE_HEADERS),
                "是" if row["idle"] else "否",
            ]
        )
    units = book.create_sheet("单位")
    units.append(
        ["单位", "代码", "工匠数", "闲置工匠数", *(label for _, label in FIGURE_HEADERS), "待审查"]
    )
    for row in report["units"]:
        units.append(
            [
                row["unit"]["name"],
                row["unit"]["code"],
                row["craftsmen"],
                row["idle_craftsmen"],
                *(row[name] for name, _ in FIGURE_HEADERS),
                "是" if row["idle"] else "否",
            ]
        )
    about = book.create_sheet("说明")
    about.append(["期间", f"{report['from'].isoformat()} 至 {report['to'].isoformat()}"])
    about.append(["闲置标准（月）", report["idle_months"]])
    for sheet in (craftsmen, units):
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
