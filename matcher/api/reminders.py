"""``/reminders``: the email outbox, for coordinators to see what went out and what failed."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from matcher.api.base import Blueprint, PageArgsSchema, paginate
from matcher.api.fields import Id
from matcher.extensions import db, principal
from matcher.models import REMINDER_KINDS, REMINDER_STATUSES, Reminder
from matcher.services import access

blp = Blueprint("reminders", __name__, description="The reminder email outbox")
BLUEPRINTS = [blp]


class ReminderSchema(ma.Schema):
    """One queued email and its delivery."""

    id = ma.fields.Integer()
    alliance_id = ma.fields.Integer()
    mentorship_id = ma.fields.Integer(allow_none=True)
    period_index = ma.fields.Integer(allow_none=True)
    kind = ma.fields.String(metadata={"enum": list(REMINDER_KINDS)})
    recipient = ma.fields.String()
    recipient_role = ma.fields.String()
    locale = ma.fields.String()
    due_on = ma.fields.Date(allow_none=True)
    status = ma.fields.String(metadata={"enum": list(REMINDER_STATUSES)})
    attempts = ma.fields.Integer()
    next_attempt_at = ma.fields.AwareDateTime()
    sent_at = ma.fields.AwareDateTime(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()


class ReminderQueryArgsSchema(PageArgsSchema):
    """Filters of the outbox."""

    status = ma.fields.String(validate=ma.validate.OneOf(REMINDER_STATUSES))
    kind = ma.fields.String(validate=ma.validate.OneOf(REMINDER_KINDS))
    mentorship_id = Id(strict=False)
    alliance_id = Id(strict=False)


@blp.route("/reminders")
class Reminders(MethodView):
    @blp.query(ReminderQueryArgsSchema)
    @blp.response(200, ReminderSchema(many=True))
    @blp.doc(operationId="listReminders")
    def get(self, args: dict[str, Any]) -> Any:
        """The outbox of the caller's alliance, newest first (coordinators and admins)."""
        caller = principal()
        access.require(caller, "reminders.read")
        stmt = access.where_visible(
            select(Reminder).order_by(Reminder.id.desc()), caller, alliance_id=Reminder.alliance_id
        )
        for name in ("status", "kind", "mentorship_id", "alliance_id"):
            if name in args:
                stmt = stmt.where(getattr(Reminder, name) == args[name])
        return paginate(db(), stmt, args)
