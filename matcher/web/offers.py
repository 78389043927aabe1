"""The offer page a craftsman reaches from the offer email (``/offer/{token}``), and the run
page's buttons with which a coordinator answers for a craftsman who said so by phone."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext

from matcher.api.offers import DeclineSchema
from matcher.db import utcnow
from matcher.errors import DomainError, NotFound
from matcher.extensions import db, state
from matcher.i18n import DEFAULT_LOCALE, Message
from matcher.models import (
    OFFER_ACCEPTED,
    OFFER_EXPIRED,
    OFFER_OFFERED,
    Alliance,
    Offer,
    Proposal,
)
from matcher.services.emails import apprentice_context, offered_apprentice
from matcher.services.offers import LINK_ACTOR, accept_offer, decline_offer
from matcher.services.summary_links import read_offer_token
from matcher.web import page_errors, refusal, render_page
from matcher.web.auth import actor, sign_in_required, signed_in_user
from matcher.web.summary import field_messages

blp = Blueprint("offer_pages", __name__)
page_errors(blp)


class OfferFormSchema(ma.Schema):
    """The page's answer: accept, or decline with an optional reason."""

    class Meta:
        unknown = ma.EXCLUDE  # the CSRF token rides along

    answer = ma.fields.String(required=True, validate=ma.validate.OneOf(["accept", "decline"]))


def _refused(message: Message, locale: str, status: int) -> Any:
    return render_page(
        "web/message.html", locale=locale, status=status, message=message.render(locale)
    )


@blp.route("/offer/<token>", methods=["GET", "POST"])
def offer_page(token: str) -> Any:
    """The apprentice offered (name, unit, wanted skills, why the pair fits) with Accept /
    Decline; a forged, expired or answered offer's link is refused with a page saying which."""
    try:
        offer_id = read_offer_token(state().settings.secret_key, token)
    except NotFound as exc:
        return _refused(exc.message or Message("offer.link_invalid"), DEFAULT_LOCALE, 404)
    offer = db().get(Offer, offer_id)
    if offer is None:
        return _refused(Message("offer.link_invalid"), DEFAULT_LOCALE, 404)
    locale = offer.craftsman.locale
    if offer.status != OFFER_OFFERED or offer.expires_at <= utcnow():
        return _answered_page(offer, locale)
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            form = OfferFormSchema().load(request.form)
            reason = None
            if form["answer"] == "decline":
                reason = DeclineSchema().load({"reason": request.form.get("reason") or None})[
                    "reason"
                ]
        except ma.ValidationError as exc:
            errors = field_messages(exc.messages)
        else:
            try:
                if form["answer"] == "accept":
                    accept_offer(db(), offer=offer, actor=LINK_ACTOR)
                else:
                    decline_offer(db(), offer=offer, reason=reason, actor=LINK_ACTOR)
            except DomainError as exc:
                db().rollback()
                message = exc.message or Message("offer.link_invalid")
                return _refused(message, locale, exc.status)
            db().commit()
            return render_page(
                "web/offer_done.html", locale=locale, offer=offer, **_context(offer, locale)
            )
    return render_page(
        "web/offer.html",
        locale=locale,
        status=422 if errors else 200,
        errors=errors,
        offer=offer,
        **_context(offer, locale),
    )


def _answered_page(offer: Offer, locale: str) -> Any:
    """A link used again, or too late: what became of the offer, refused (409; 410 expired)."""
    if offer.status in (OFFER_OFFERED, OFFER_EXPIRED):  # offered: past expires_at, not swept
        return _refused(Message("offer.refused.expired", {"id": offer.id}), locale, 410)
    if offer.status == OFFER_ACCEPTED:
        return _refused(Message("offer.refused.accepted", {"id": offer.id}), locale, 409)
    return _refused(Message("offer.refused.declined", {"id": offer.id}), locale, 409)


def _context(offer: Offer, locale: str) -> dict[str, Any]:
    """What the page shows of the apprentice: what another unit may see (privacy.md)."""
    proposal = db().get_one(Proposal, offer.proposal_id)
    return {
        "alliance": db().get_one(Alliance, offer.alliance_id),
        **apprentice_context(offered_apprentice(offer, locale)),
        "explanation": proposal.explanation,
    }


@blp.post("/runs/<id:run_id>/offers/<id:offer_id>")
@sign_in_required
def answer_for_craftsman(run_id: int, offer_id: int) -> Any:
    """Accept or decline an offer of the run for its craftsman (audited with the coordinator's
    name); a refusal is flashed above the run's pairs."""
    user = signed_in_user()
    offer = db().get(Offer, offer_id)
    proposal = db().get(Proposal, offer.proposal_id) if offer else None
    if (
        offer is None
        or proposal is None
        or proposal.match_run_id != run_id
        or offer.alliance_id != user.alliance_id
    ):
        raise NotFound(f"No offer {offer_id} in this run.")
    try:
        form = OfferFormSchema().load(request.form)
        reason = DeclineSchema().load({"reason": request.form.get("reason") or None})["reason"]
        if form["answer"] == "accept":
            accept_offer(db(), offer=offer, actor=actor(user))
        else:
            decline_offer(db(), offer=offer, reason=reason, actor=actor(user))
    except ma.ValidationError as exc:
        messages = field_messages(exc.messages)
        flash(" ".join(f"{name}: {' '.join(text)}" for name, text in messages.items()))
        return redirect(url_for("runs.run_page", run_id=run_id, _anchor=f"p{proposal.id}"), 303)
    except DomainError as exc:
        db().rollback()
        flash(refusal(exc))
        return redirect(url_for("runs.run_page", run_id=run_id, _anchor=f"p{proposal.id}"), 303)
    db().commit()
    names = {"craftsman": offer.craftsman.name, "apprentice": offer.apprentice.name}
    if form["answer"] == "accept":
        flash(gettext("flash.offer_accepted", **names))
    else:
        flash(gettext("flash.offer_declined", **names))
    return redirect(url_for("runs.run_page", run_id=run_id, _anchor=f"p{proposal.id}"), 303)
