"""Message ids the pages look up under a name built from a value: ``_("status." ~ run.status)``
in the templates, ``gettext(f"flash.{action}")`` in the views, ``conflict.<kind>`` of a commit.

``pybabel extract`` reads literal ids only, so each family is written out here: extraction
keeps them in the catalogs, and ``tests/test_i18n.py`` checks each family against the values
the code can give it (the models' statuses, the schemas' choices, ...).
"""

from __future__ import annotations

from matcher.i18n import N_

FAMILIES: dict[str, tuple[str, ...]] = {
    # run and proposal statuses (badges)
    "status": (
        N_("status.queued"),
        N_("status.running"),
        N_("status.proposed"),
        N_("status.committed"),
        N_("status.failed"),
        N_("status.pending"),
        N_("status.approved"),
        N_("status.rejected"),
    ),
    "objective": (N_("objective.score"), N_("objective.coverage")),
    # a match parameter's label, and its hint (also the new-run form's message for a bad value)
    "param": (
        N_("param.objective"),
        N_("param.min_fit"),
        N_("param.related_credit"),
        N_("param.region_bonus"),
        N_("param.waiting_bonus"),
        N_("param.preference_bonus"),
        N_("param.include_mentored"),
        N_("param.max_pairs_per_craftsman_unit"),
        N_("param.max_pairs_per_unit_pair"),
        N_("param.min_pairs_per_apprentice_unit"),
    ),
    "param_hint": (
        N_("param.objective.hint"),
        N_("param.min_fit.hint"),
        N_("param.related_credit.hint"),
        N_("param.region_bonus.hint"),
        N_("param.waiting_bonus.hint"),
        N_("param.preference_bonus.hint"),
        N_("param.include_mentored.hint"),
        N_("param.max_pairs_per_craftsman_unit.hint"),
        N_("param.max_pairs_per_unit_pair.hint"),
        N_("param.min_pairs_per_apprentice_unit.hint"),
    ),
    # a running match's progress; a stage without a label is shown as it is
    "stage": (
        N_("stage.queued"),
        N_("stage.loading"),
        N_("stage.solving"),
        N_("stage.storing"),
        N_("stage.scoring"),
        N_("stage.reasons"),
        N_("stage.done"),
    ),
    "sort": (N_("sort.score"), N_("sort.unit")),
    "reason": (
        N_("reason.no_eligible_craftsman"),
        N_("reason.capacity_exhausted"),
        N_("reason.excluded"),
        N_("reason.unit_cap"),
        N_("reason.no_consent"),
    ),
    # the summary form: who hands it in, and the fields its errors name
    "author": (N_("craftsman"), N_("apprentice")),
    "summary_field": (N_("summary.content"), N_("summary.hours"), N_("summary.skills")),
    "flash": (N_("flash.approve"), N_("flash.reject"), N_("flash.swap")),
    "conflict": (
        N_("conflict.craftsman_inactive"),
        N_("conflict.apprentice_inactive"),
        N_("conflict.apprentice_mentored"),
        N_("conflict.no_slot"),
    ),
    # the programme (programme.md): a mentorship's status, why it ended, check-in occasions
    "mentorship_status": (
        N_("mentorship.status.active"),
        N_("mentorship.status.ended"),
        N_("mentorship.status.completed"),
    ),
    "end_reason": (
        N_("end_reason.not_a_fit"),
        N_("end_reason.left_unit"),
        N_("end_reason.craftsman_unavailable"),
        N_("end_reason.other"),
    ),
    "occasion": (N_("occasion.first_summary"), N_("occasion.mid_term")),
    # an offer's status on the run page (programme.md, "Two-way choice")
    "offer_status": (
        N_("offer.status.offered"),
        N_("offer.status.accepted"),
        N_("offer.status.declined"),
        N_("offer.status.expired"),
    ),
    "assessment_result": (N_("assessment.result.pass"), N_("assessment.result.fail")),
    "check_in_field": (N_("check_in.rating"), N_("check_in.good_fit"), N_("check_in.comment")),
    # the activity page: its columns (sort keys) and its charts' figures
    "activity": (
        N_("activity.unit"),
        N_("activity.craftsman"),
        N_("activity.active"),
        N_("activity.completed"),
        N_("activity.ended"),
        N_("activity.summaries_due"),
        N_("activity.summaries_on_time"),
        N_("activity.summaries_late"),
        N_("activity.hours"),
        N_("activity.apprentices_passed"),
        N_("activity.mean_rating"),
        N_("activity.idle"),
    ),
}
