"""The programme's pages: the check-in form reached from its email (``/check-in/{token}``), a
mentorship's own page for coordinators (``/mentorships/{id}``), and the public certificate check
(``/certificates/{code}``, its JSON and its A4 PDF)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import marshmallow as ma
from flask import Blueprint, Response, request
from flask_babel import force_locale, gettext
from sqlalchemy import select

from matcher.api.programme import CheckInInputSchema
from matcher.errors import DomainError, NotFound
from matcher.extensions import db, state
from matcher.i18n import DEFAULT_LOCALE, catalog_name
from matcher.models import Alliance, Assessment, CheckIn, Mentorship, TrainingSummary, Unit
from matcher.services import access
from matcher.services.activity import FIGURES, XLSX_MEDIA_TYPE, activity, activity_workbook
from matcher.services.mentorships import add_months, local_today, overdue_periods
from matcher.services.programme import (
    CertificateView,
    CheckInInput,
    add_check_in,
    certificate_of,
    count_public_request,
    verify_certificate,
)
from matcher.services.summary_links import read_check_in_token
from matcher.web import charts, page_errors, render_page
from matcher.web.auth import sign_in_required, signed_in_user
from matcher.web.summary import field_messages

blp = Blueprint("programme_pages", __name__)
page_errors(blp)
# The public pages have no form and no session: no CSRF check, no sign-in.
public = Blueprint("certificates", __name__)


def check_in_payload(form: Any, author: str, occasion: str) -> dict[str, Any]:
    """The form's strings in the shapes the API takes, for the API's own schema to judge; the
    author and the occasion come from the signed link."""
    payload: dict[str, Any] = {"author": author, "occasion": occasion}
    rating = form.get("rating", "").strip()
    if rating:
        payload["rating"] = int(rating) if rating.isdigit() else rating
    if "good_fit" in form:
        payload["good_fit"] = form["good_fit"] == "yes"
    comment = form.get("comment", "").strip()
    payload["comment"] = comment or None
    return payload


@blp.route("/check-in/<token>", methods=["GET", "POST"])
def check_in_form(token: str) -> Any:
    """Show the check-in form (GET) or hand it in (POST), as the link's author and occasion."""
    try:
        link = read_check_in_token(state().settings.secret_key, token)
        mentorship = db().get(Mentorship, link.mentorship_id)
        if mentorship is None:
            raise NotFound("This link is not valid.")
    except DomainError as exc:
        return render_page("web/message.html", locale="zh-CN", status=404, message=exc.detail)
    person = mentorship.craftsman if link.author == "craftsman" else mentorship.apprentice
    alliance = db().get_one(Alliance, mentorship.alliance_id)
    context: dict[str, Any] = {
        "mentorship": mentorship,
        "pair": access.pair_shown_to(mentorship, link.author),
        "alliance": alliance,
        "link": link,
    }
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            body = CheckInInputSchema().load(
                check_in_payload(request.form, link.author, link.occasion)
            )
        except ma.ValidationError as exc:
            errors = field_messages(exc.messages)
        else:
            try:
                add_check_in(
                    db(),
                    mentorship=mentorship,
                    check_in=CheckInInput(**body),
                    submitted_by=f"form:{link.author}",
                )
            except DomainError as exc:
                db().rollback()
                return render_page(
                    "web/message.html", locale=person.locale, status=exc.status, message=exc.detail
                )
            db().commit()
            return render_page("web/check_in_done.html", locale=person.locale, **context)
    return render_page(
        "web/check_in_form.html",
        locale=person.locale,
        status=422 if errors else 200,
        errors=errors,
        form=request.form,
        **context,
    )


@blp.get("/mentorships/<id:mentorship_id>")
@sign_in_required
def mentorship_page(mentorship_id: int) -> Any:
    """A mentorship's own page: the agreement and goals, its summaries, check-ins and
    assessment, and the certificate once passed."""
    user = signed_in_user()
    mentorship = access.mentorship_in_scope(db(), access.user_principal(user), mentorship_id)
    alliance = db().get_one(Alliance, mentorship.alliance_id)
    units = {
        u.id: u
        for u in db().scalars(
            select(Unit).where(
                Unit.id.in_([mentorship.craftsman.unit_id, mentorship.apprentice.unit_id])
            )
        )
    }
    summaries = (
        db()
        .scalars(
            select(TrainingSummary)
            .where(TrainingSummary.mentorship_id == mentorship.id)
            .order_by(TrainingSummary.period_index)
        )
        .all()
    )
    check_ins = (
        db()
        .scalars(select(CheckIn).where(CheckIn.mentorship_id == mentorship.id).order_by(CheckIn.id))
        .all()
    )
    assessment = (
        db()
        .scalars(select(Assessment).where(Assessment.mentorship_id == mentorship.id))
        .one_or_none()
    )
    today = local_today(alliance.timezone)
    return render_page(
        "web/mentorship.html",
        locale=user.locale,
        user=user,
        alliance=alliance,
        mentorship=mentorship,
        craftsman_unit=units[mentorship.craftsman.unit_id],
        apprentice_unit=units[mentorship.apprentice.unit_id],
        summaries=summaries,
        hours=sum(s.hours for s in summaries),
        check_ins=check_ins,
        assessment=assessment,
        certificate=certificate_of(db(), mentorship.id),
        overdue=overdue_periods(mentorship, today),
        today=today,
    )


def _limited() -> Response | None:
    """429 once this client address has used its minute's budget of the public pages."""
    settings = state().settings
    retry_after = count_public_request(
        db(),
        client=request.remote_addr or "unknown",
        now=time.time(),
        per_minute=settings.public_rate_limit_per_minute,
    )
    db().commit()
    if not retry_after:
        return None
    response = Response(
        f"Too many requests; retry in {retry_after} s.\n", status=429, mimetype="text/plain"
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


def _public_url(code: str) -> str:
    return f"{state().settings.base_url.rstrip('/')}/certificates/{code}"


def _certificate_or_404(code: str) -> CertificateView | Response:
    try:
        return verify_certificate(db(), code)
    except NotFound:
        if _wants_json():
            return Response(
                '{"status": 404, "title": "Not Found", "detail": "No certificate has this code."}',
                status=404,
                mimetype="application/problem+json",
            )
        with force_locale(catalog_name(DEFAULT_LOCALE)):
            message = gettext("certificate.not_found")
        html, status = render_page("web/message.html", locale="zh-CN", status=404, message=message)
        return Response(html, status=status, mimetype="text/html")


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes["application/json"] > 0


@public.get("/certificates/<code>.pdf")
def certificate_pdf(code: str) -> Response:
    """The A4 certificate, Chinese text embedded, with its code and public URL."""
    refused = _limited()
    if refused is not None:
        return refused
    view = _certificate_or_404(code)
    if isinstance(view, Response):
        return view
    from matcher.web.certificate_pdf import render_certificate_pdf

    pdf = render_certificate_pdf(view, _public_url(view.code))
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="certificate-{view.code}.pdf"'
    return response


@public.get("/certificates/<code>")
def certificate_page(code: str) -> Any:
    """The public verification of a certificate (JSON with ``Accept: application/json``): who,
    which units and alliance, the skills reached and the date; nothing else."""
    refused = _limited()
    if refused is not None:
        return refused
    view = _certificate_or_404(code)
    if isinstance(view, Response):
        return view
    if _wants_json():
        return view.as_json()
    html, status = render_page(
        "web/certificate.html", locale="zh-CN", certificate=view, url=_public_url(view.code)
    )
    return Response(html, status=status, mimetype="text/html")


ACTIVITY_SORTS = ("unit", "craftsman", *FIGURES, "idle")


class ActivityPageArgsSchema(ma.Schema):
    """The page's period (default: the twelve months up to today) and sort."""

    class Meta:
        unknown = ma.EXCLUDE

    first = ma.fields.Date(data_key="from", load_default=None)
    last = ma.fields.Date(data_key="to", load_default=None)
    sort = ma.fields.String(load_default="unit", validate=ma.validate.OneOf(ACTIVITY_SORTS))


def _sort_key(name: str) -> Any:
    if name == "unit":
        return lambda row: (row["unit"]["code"], row["craftsman"]["name"])
    if name == "craftsman":
        return lambda row: row["craftsman"]["name"]
    # Figures: the largest first (a missing mean rating last).
    return lambda row: (row[name] is None, -(row[name] or 0))


@blp.get("/activity")
@sign_in_required
def activity_page() -> Any:
    """The activity assessment as a sortable table, a chart per unit, the idle ones marked."""
    user = signed_in_user()
    alliance = access.alliance_in_scope(db(), access.user_principal(user), user.alliance_id)
    try:
        args = ActivityPageArgsSchema().load(request.args)
    except ma.ValidationError:
        args = {"first": None, "last": None, "sort": "unit"}
    today = local_today(alliance.timezone)
    last = args["last"] or today
    first = args["first"] or add_months(last, -12) + timedelta(days=1)
    error = None
    try:
        report = activity(db(), alliance=alliance, first=first, last=last)
    except DomainError as exc:
        error = exc.detail
        first, last = add_months(today, -12) + timedelta(days=1), today
        report = activity(db(), alliance=alliance, first=first, last=last)
    rows = sorted(report["craftsmen"], key=_sort_key(args["sort"]))
    charts_by_unit = {
        row["unit"]["id"]: charts.figure_bars(
            [(gettext(f"activity.{name}"), row[name] or 0) for name in CHART_FIGURES],
            title=row["unit"]["name"],
        )
        for row in report["units"]
    }
    return render_page(
        "web/activity.html",
        locale=user.locale,
        user=user,
        alliance=alliance,
        report=report,
        rows=rows,
        charts=charts_by_unit,
        sort=args["sort"],
        first=first,
        last=last,
        error=error,
        sorts=ACTIVITY_SORTS,
    )


@blp.get("/activity.xlsx")
@sign_in_required
def activity_xlsx() -> Any:
    """The page's assessment as the same XLSX workbook as the API's (signed-in session, no key)."""
    user = signed_in_user()
    alliance = access.alliance_in_scope(db(), access.user_principal(user), user.alliance_id)
    args = ActivityPageArgsSchema().load(request.args)
    today = local_today(alliance.timezone)
    last = args["last"] or today
    first = args["first"] or add_months(last, -12) + timedelta(days=1)
    report = activity(db(), alliance=alliance, first=first, last=last)
    response = Response(activity_workbook(report), mimetype=XLSX_MEDIA_TYPE)
    filename = f"activity-{first.isoformat()}-{last.isoformat()}.xlsx"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


CHART_FIGURES = ("active", "completed", "ended", "summaries_on_time", "summaries_late", "hours")
