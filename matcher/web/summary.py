"""``/summary/{token}``: the form a craftsman or apprentice reaches from a reminder email."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Blueprint, request
from werkzeug.datastructures import MultiDict

from matcher.api.mentorships import SummaryInputSchema
from matcher.errors import DomainError, NotFound
from matcher.extensions import db, state
from matcher.models import Alliance, Mentorship
from matcher.services import access
from matcher.services.mentorships import SummaryInput, add_summary, due_on
from matcher.services.summary_links import SummaryLink, read_token
from matcher.web import page_errors, render_page

blp = Blueprint("summary", __name__)
page_errors(blp)


def summary_payload(form: MultiDict[str, str], author: str) -> dict[str, Any]:
    """The form's strings in the shapes the API takes (``POST /mentorships/{id}/summaries``),
    for the API's own schema to judge: the page refuses exactly what the API refuses.

    The author comes from the signed link, not from the form; skills are typed comma-separated.
    """
    payload: dict[str, Any] = {"author": author}
    if "content" in form:
        payload["content"] = form["content"]
    hours = form.get("hours", "").strip()
    if hours:
        try:
            payload["hours"] = float(hours)
        except ValueError:
            payload["hours"] = hours  # the schema's "Not a valid number."
    skills = form.get("skills", "").replace("，", ",").split(",")
    payload["skills"] = [skill.strip() for skill in skills if skill.strip()]
    return payload


def field_messages(messages: Any) -> dict[str, list[str]]:
    """A schema's errors as one list of messages per form field (a skill's own errors under
    ``skills``)."""
    if not isinstance(messages, dict):
        return {"content": [str(messages)]}

    def flat(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [m for inner in value.values() for m in flat(inner)]
        if isinstance(value, list):
            return [m for inner in value for m in flat(inner)]
        return [str(value)]

    return {str(field): flat(value) for field, value in messages.items()}


def _open(token: str) -> tuple[SummaryLink, Mentorship, Alliance, str]:
    link = read_token(state().settings.secret_key, token)
    mentorship = db().get(Mentorship, link.mentorship_id)
    if mentorship is None:
        raise NotFound("This link is not valid.")
    alliance = db().get_one(Alliance, mentorship.alliance_id)
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
        "pair": access.pair_shown_to(mentorship, link.author),
        "alliance": alliance,
        "link": link,
        "due": due_on(mentorship, link.period).isoformat(),
    }
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            body = SummaryInputSchema().load(summary_payload(request.form, link.author))
        except ma.ValidationError as exc:
            errors = field_messages(exc.messages)
        else:
            try:
                summary = add_summary(
                    db(),
                    mentorship=mentorship,
                    summary=SummaryInput(**body),
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
