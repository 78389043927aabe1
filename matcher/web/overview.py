"""``/``: the sign-in form for visitors, the alliance overview for a signed-in coordinator."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from matcher.extensions import db
from matcher.services import access
from matcher.services.consent import withdrawn_pairs
from matcher.services.mentorships import local_today
from matcher.services.overview import alliance_overview
from matcher.services.programme import programme_overview
from matcher.web import page_errors, render_page
from matcher.web.auth import current_user, sign_in_page

blp = Blueprint("overview", __name__)
page_errors(blp)


@blp.get("/")
def index() -> Any:
    """Units and their people, active and overdue mentorships, the latest match runs."""
    user = current_user()
    if user is None:
        return sign_in_page()
    alliance = access.alliance_in_scope(db(), access.user_principal(user), user.alliance_id)
    today = local_today(alliance.timezone)
    return render_page(
        "web/overview.html",
        locale=user.locale,
        user=user,
        alliance=alliance,
        today=today,
        overview=alliance_overview(db(), alliance=alliance, today=today),
        programme=programme_overview(db(), alliance_id=alliance.id, today=today),
        consent_withdrawn=withdrawn_pairs(db(), alliance_id=alliance.id),
    )
