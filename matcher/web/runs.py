"""``/runs/...``: start a match run, review its proposals (approve / reject / swap), commit it.

Views stay thin: decisions go through ``matcher.services.review`` like the API's, so the audit
trail records them with the user as the actor.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext
from werkzeug.datastructures import MultiDict

from matcher.algorithms import MatchParams
from matcher.api.fields import MAX_ID, Id, MultiLineText
from matcher.api.schemas import MatchParamsSchema
from matcher.errors import Conflict, DomainError, NotFound
from matcher.extensions import db, state
from matcher.models import Alliance, MatchRun, Proposal, User
from matcher.services import access
from matcher.services.matching import start_match_run, with_alliance_defaults
from matcher.services.mentorships import alliance_today
from matcher.services.offers import offers_by_proposal
from matcher.services.review import (
    CommitConflicts,
    commit_run,
    decide,
    decide_many,
    etag,
    swap,
)
from matcher.services.run_report import (
    SORTS,
    UnitCount,
    proposals_page,
    score_histogram,
    status_counts,
    swap_candidates,
    unit_shares,
    unmatched_count,
    unmatched_rows,
)
from matcher.web import charts, page_errors, refusal, render_page, say
from matcher.web.auth import actor, sign_in_required, signed_in_user

blp = Blueprint("runs", __name__)
page_errors(blp)

PAGE_SIZE = 100
UNMATCHED_SHOWN = 200  # the rest are in the API's list; a page of thousands helps nobody
NUMBER_PARAMS = (
    "min_fit",
    "related_credit",
    "region_bonus",
    "waiting_bonus",
    "preference_bonus",
)
# Whole numbers; blank: the rule is off (the form starts from the alliance's match defaults).
RULE_PARAMS = (
    "max_pairs_per_craftsman_unit",
    "max_pairs_per_unit_pair",
    "min_pairs_per_apprentice_unit",
)


class DecisionFormSchema(ma.Schema):
    """One row's form: approve or reject (with an optional comment), or swap the craftsman."""

    class Meta:
        unknown = ma.EXCLUDE  # the CSRF token and the page's sort and page ride along

    action = ma.fields.String(
        required=True, validate=ma.validate.OneOf(["approve", "reject", "swap"])
    )
    comment = MultiLineText(
        allow_blank=True, load_default="", validate=ma.validate.Length(max=2000)
    )
    craftsman_id = Id(strict=False)
    etag = ma.fields.String(required=True, validate=ma.validate.Length(max=100))

    @ma.validates_schema
    def _swap_needs_craftsman(self, data: dict[str, Any], **_: Any) -> None:
        if data["action"] == "swap" and "craftsman_id" not in data:
            raise ma.ValidationError("Choose a craftsman.", "craftsman_id")


def _user_run(user: User, run_id: int) -> MatchRun:
    """The run, if the user may review it: the same policy as a coordinator key's."""
    return access.match_run_in_scope(db(), access.user_principal(user), run_id)


def _view_args(values: MultiDict[str, str]) -> tuple[str, int]:
    """The table's sort and page, from the query string or a form; bad values fall back."""
    sort = values.get("sort", "score")
    page = values.get("page", "1")
    if sort not in SORTS:
        sort = "score"
    number = int(page) if page.isascii() and page.isdigit() and len(page) <= 10 else 1
    # Beyond MAX_ID pages the offset would not fit the database's integers: 5xx, not a page.
    return sort, number if 1 <= number <= MAX_ID else 1


def _run_url(run: MatchRun, sort: str, page: int, anchor: str | None = None) -> str:
    return url_for("runs.run_page", run_id=run.id, sort=sort, page=page, _anchor=anchor)


def _render_run(
    user: User,
    run: MatchRun,
    *,
    status: int = 200,
    row_errors: dict[int, str] | None = None,
    page_error: tuple[str, str] | None = None,
) -> Any:
    """The run page: its state, charts, proposals (one page), the unmatched."""
    sort, page = _view_args(request.values)

    context: dict[str, Any] = {}
    if run.status in ("proposed", "committed"):
        shares = unit_shares(db(), run=run)
        params = MatchParams.from_json(run.params or {})
        listing = proposals_page(db(), run=run, sort=sort, page=page, page_size=PAGE_SIZE)
        context = {
            "listing": listing,
            "counts": status_counts(db(), run=run),
            "candidates": swap_candidates(db(), run=run, proposals=listing.proposals)
            if run.status == "proposed"
            else {},
            "unmatched": unmatched_rows(db(), run=run, limit=UNMATCHED_SHOWN),
            "unmatched_total": unmatched_count(db(), run=run),
            "histogram": charts.histogram(
                score_histogram(db(), run=run), title=gettext("run.histogram")
            ),
            "unit_chart": charts.unit_bars(
                [UnitCount(s.unit, s.given, s.received) for s in shares],
                title=gettext("run.unit_chart"),
                craftsmen=gettext("run.unit_chart.craftsmen"),
                apprentices=gettext("run.unit_chart.apprentices"),
                cap=params.max_pairs_per_craftsman_unit,
                floor=params.min_pairs_per_apprentice_unit or None,
                cap_label=gettext("param.max_pairs_per_craftsman_unit"),
                floor_label=gettext("param.min_pairs_per_apprentice_unit"),
            ),
            "shares": shares,
            "run_params": params,
            # Once committed where consent is required: each approved pair's offer.
            "offers": offers_by_proposal(db(), [p.id for p in listing.proposals])
            if run.status == "committed"
            else {},
        }
    return render_page(
        "web/run.html",
        locale=user.locale,
        status=status,
        user=user,
        alliance=db().get(Alliance, run.alliance_id),
        run=run,
        sort=sort,
        page=page,
        etag=etag,
        row_errors=row_errors or {},
        page_error=page_error,
        **context,
    )


def _params_from_form(
    form: MultiDict[str, str], alliance: Alliance
) -> tuple[MatchParams, dict[str, Any]]:
    """Form strings to typed params, then the API's own schema, over the alliance's match
    defaults (a blank number keeps the default; a blank rule turns it off): (params, errors)."""
    raw: dict[str, Any] = {"include_mentored": form.get("include_mentored") == "on"}
    errors: dict[str, Any] = {}
    if form.get("objective"):
        raw["objective"] = form["objective"]
    for name in NUMBER_PARAMS:
        text = form.get(name, "").strip()
        if not text:
            continue  # blank: the default
        try:
            raw[name] = float(text)
        except ValueError:
            errors[name] = [gettext("form.not_number")]
    for name in RULE_PARAMS:
        text = form.get(name, "").strip()
        if not text:
            raw[name] = None
        elif text.isascii() and text.isdigit() and len(text) <= 9:
            raw[name] = int(text)
        else:
            errors[name] = [gettext("form.not_whole_number")]
    try:
        loaded: MatchParams = MatchParamsSchema().load(raw)
        params = with_alliance_defaults(alliance, params=loaded, given=raw)
    except ma.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_": exc.messages}
        # The field's rule in the user's language says more than marshmallow's English.
        errors.update({name: [gettext(f"param.{name}.hint")] for name in messages})
        params = MatchParams()
    return params, errors


@blp.route("/runs/new", methods=["GET", "POST"])
@sign_in_required
def new_run() -> Any:
    """The parameters form; a valid one starts the run and leads to its page."""
    user = signed_in_user()
    alliance = access.alliance_in_scope(db(), access.user_principal(user), user.alliance_id)
    errors: dict[str, Any] = {}
    if request.method == "POST":
        params, errors = _params_from_form(request.form, alliance)
        if not errors:
            try:
                run = start_match_run(
                    db(),
                    alliance=alliance,
                    params=params,
                    created_by=actor(user),
                    inline_max_cells=state().settings.match_inline_max_cells,
                )
            except DomainError as exc:
                db().rollback()
                errors = {"_": [exc.detail]}
            else:
                db().commit()
                return redirect(url_for("runs.run_page", run_id=run.id), 303)
    form = request.form if request.method == "POST" else MultiDict()
    return render_page(
        "web/run_new.html",
        locale=user.locale,
        status=422 if errors else 200,
        user=user,
        alliance=alliance,
        errors=errors,
        form=form,
        defaults=with_alliance_defaults(alliance, params=MatchParams(), given=()),
        number_params=NUMBER_PARAMS,
        checked=form.get("include_mentored") == "on",
    )


@blp.get("/runs/<id:run_id>")
@sign_in_required
def run_page(run_id: int) -> Any:
    """A run's proposals to review; a queued or running run shows its progress instead."""
    user = signed_in_user()
    return _render_run(user, _user_run(user, run_id))


@blp.post("/runs/<id:run_id>/proposals/<id:proposal_id>")
@sign_in_required
def decide_proposal(run_id: int, proposal_id: int) -> Any:
    """Approve, reject or swap one proposal; a refusal is shown beside its row."""
    user = signed_in_user()
    run = _user_run(user, run_id)
    proposal = db().get(Proposal, proposal_id)
    if proposal is None or proposal.match_run_id != run.id:
        raise NotFound(f"No proposal {proposal_id} in this run.")
    sort, page = _view_args(request.form)
    try:
        form = DecisionFormSchema().load(request.form)
        if form["action"] == "swap":
            swap(
                db(),
                proposal=proposal,
                craftsman_id=form["craftsman_id"],
                actor=actor(user),
                expected_etag=form["etag"],
            )
        else:
            decide(
                db(),
                proposal=proposal,
                status="approved" if form["action"] == "approve" else "rejected",
                comment=form["comment"].strip() or None,
                actor=actor(user),
                expected_etag=form["etag"],
            )
    except ma.ValidationError as exc:
        return _render_run(user, run, status=422, row_errors={proposal_id: _messages(exc)})
    except DomainError as exc:
        db().rollback()
        if isinstance(exc, Conflict):  # the run itself moved on: say so above everything
            closed = (gettext("run.closed"), exc.detail)
            return _render_run(user, run, status=exc.status, page_error=closed)
        message = refusal(exc)
        return _render_run(user, run, status=exc.status, row_errors={proposal_id: message})
    db().commit()
    flash(
        gettext(
            f"flash.{form['action']}",
            craftsman=proposal.craftsman.name,
            apprentice=proposal.apprentice.name,
        )
    )
    return redirect(_run_url(run, sort, page, anchor=f"p{proposal.id}"), 303)


def _messages(exc: ma.ValidationError) -> str:
    """Field messages of a refused form, on one line."""
    messages = exc.messages if isinstance(exc.messages, dict) else {"form": exc.messages}
    return " ".join(f"{field}: {' '.join(map(str, m))}" for field, m in messages.items())


class ApprovePendingFormSchema(ma.Schema):
    """The page's sweep: approve every pending proposal scoring at least ``min_score``."""

    class Meta:
        unknown = ma.EXCLUDE  # the CSRF token rides along

    min_score = ma.fields.Float(
        required=True, allow_nan=False, validate=ma.validate.Range(min=0, max=2)
    )
    comment = MultiLineText(
        allow_blank=True, load_default="", validate=ma.validate.Length(max=2000)
    )


@blp.post("/runs/<id:run_id>/approve-pending")
@sign_in_required
def approve_pending(run_id: int) -> Any:
    """Approve the pending proposals at or above a score in one go; decided ones stay as they
    are (each approval is audited like one made row by row)."""
    user = signed_in_user()
    run = _user_run(user, run_id)
    try:
        form = ApprovePendingFormSchema().load(request.form)
        changed = decide_many(
            db(),
            run=run,
            status="approved",
            comment=form["comment"].strip() or None,
            actor=actor(user),
            min_score=form["min_score"],
            pending_only=True,
        )
    except ma.ValidationError as exc:
        error = (gettext("bulk.invalid"), _messages(exc))
        return _render_run(user, run, status=422, page_error=error)
    except DomainError as exc:
        db().rollback()
        closed = (gettext("run.closed"), exc.detail)
        return _render_run(user, run, status=exc.status, page_error=closed)
    db().commit()
    flash(gettext("flash.bulk", n=changed, score=f"{form['min_score']:g}"))
    return redirect(url_for("runs.run_page", run_id=run.id), 303)


@blp.post("/runs/<id:run_id>/commit")
@sign_in_required
def commit(run_id: int) -> Any:
    """Approved proposals become mentorships; a conflict (409) is shown and nothing is written."""
    user = signed_in_user()
    run = _user_run(user, run_id)
    try:
        today = alliance_today(db(), run.alliance_id)
        result = commit_run(db(), run=run, actor=actor(user), today=today)
    except DomainError as exc:
        db().rollback()
        if isinstance(exc, CommitConflicts):  # say who and why, in the user's language
            reasons = " ".join(say(c.message()) for c in exc.conflicts)
        else:
            reasons = refusal(exc)
        conflict = (gettext("commit.conflict"), reasons)
        return _render_run(user, run, status=exc.status, page_error=conflict)
    db().commit()
    if result.offers_created:
        flash(gettext("flash.commit_offers", n=result.offers_created))
    else:
        flash(gettext("flash.commit", n=result.mentorships_created))
    return redirect(url_for("runs.run_page", run_id=run.id), 303)
