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
}
