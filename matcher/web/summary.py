"""``/summary/{token}``: the form a craftsman or apprentice reaches from a reminder email."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Blueprint, request

from matcher.api.fields import Text, text
from matcher.errors import DomainError, NotFound
from matcher.extensions import db, state
from matcher.models import Alliance, Mentorship
from matcher.services.mentorships import SummaryInput, add_summary, due_on
from matcher.services.summary_links import SummaryLink, read_token
from matcher.web import page_errors, render_page

blp = Blueprint("summary", __name__)
page_errors(blp)


class SummaryFormSchema(ma.Schema):
    """The form's fields; the author comes from the signed link, not from the form."""

    class Meta:
        unknown = ma.EXCLUDE  # the CSRF token rides along

    content = text(min_length=1, max_length=20_000, multi_line=True, required=True)
    hours = ma.fields.Float(
        required=True, validate=ma.validate.Range(min=0, max=1000, min_inclusive=False)
    )
    skills = Text(allow_blank=True, load_default="", validate=ma.validate.Length(max=2000))


def _open(token: str) -> tuple[SummaryLink, Mentorship, Alliance, str]:
    link = read_token(state().settings.secret_key, token)
    mentorship = db().get(Mentorship, link.mentorship_id)
    if mentorship is None:
        raise NotFound("This link is not valid.")
    alliance = db().get(Alliance, mentorship.alliance_id)
    assert alliance is not None
    person = mentorship.craftsman if link.author == "craftsman" else mentorship.apprentice
    return link, mentorship, alliance, person.locale


@blp.route("/summary/<token>", methods=["GET", "POST"])
def summary_form(token: str) -> Any:
    """Show the form (GET) or hand the summary in (POST) for the period the link names."""
    try:
        link, mentorship, alliance, locale = _open(token)
    except DomainError as exc:
        return render_page("web/message.html", locale="zh-CN", status=404, message=exc.detail)
    context: dict[str, Any] = {
        "mentorship": mentorship,
        "alliance": alliance,
        "link": link,
        "due": due_on(mentorship, link.period).isoformat(),
    }
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            form = SummaryFormSchema().load(request.form)
        except ma.ValidationError as exc:
            errors = exc.messages if isinstance(exc.messages, dict) else {"form": exc.messages}
        else:
            skills = [s for s in form["skills"].replace("，", ",").split(",") if s.strip()]
            try:
                summary = add_summary(
                    db(),
                    mentorship=mentorship,
                    summary=SummaryInput(
                        author=link.author,
                        content=form["content"],
                        hours=form["hours"],
                        skills=skills,
                    ),
                    submitted_by=f"form:{link.author}",
                    period=link.period,
                )
            except DomainError as exc:
                db().rollback()
                return render_page(
                    "web/message.html", locale=locale, status=exc.status, message=exc.detail
                )
            db().commit()
            return render_page("web/summary_done.html", locale=locale, summary=summary, **context)
    return render_page(
        "web/summary_form.html",
        locale=locale,
        status=422 if errors else 200,
        errors=errors,
        form=request.form,
        **context,
    )
