"""Match runs: load an alliance into arrays, solve, store proposals and the unmatched with reasons.

The solving itself is ``matcher.algorithms`` (numpy/scipy only); this module turns rows into arrays
and results back into rows, with set-based queries and no per-pair Python loops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, Select, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from matcher.algorithms import (
    Explanation,
    MatchParams,
    MatchProblem,
    MatchResult,
    PairVerdict,
    PinnedCapError,
    PinnedPairError,
    explain_pairs,
    pair_verdict,
    solve_match,
)
from matcher.algorithms.fairness import pin_cap_breaches
from matcher.db import utcnow
from matcher.errors import Conflict, ValidationFailed
from matcher.metrics import MATCH_RUN_SECONDS
from matcher.models import (
    ACTIVE_RUN_INDEX,
    ACTIVE_RUN_STATUSES,
    MENTORSHIP_ACTIVE,
    OFFER_OFFERED,
    PROPOSAL_PENDING,
    RUN_FAILED,
    RUN_PROPOSED,
    RUN_QUEUED,
    RUN_RUNNING,
    Alliance,
    Apprentice,
    ApprenticePreference,
    ApprenticeWant,
    Craftsman,
    CraftsmanSkill,
    MatchRun,
    Mentorship,
    Offer,
    Proposal,
    RejectedPair,
    Skill,
    Unit,
    UnmatchedApprentice,
)
from matcher.services.capacity import available_on, free_slots, is_available
from matcher.services.consent import consent_given, person_consents
from matcher.services.mentorships import local_today
from matcher.services.webhooks import Change, emit_for

Progress = Callable[[str, float], None]


class PinnedPairFailure(Exception):
    """A pinned pair that cannot take part; the run fails with this message."""


@dataclass(frozen=True)
class LoadedProblem:
    """A match problem and the ids its array positions stand for."""

    problem: MatchProblem
    craftsman_ids: NDArray[np.int64]
    apprentice_ids: NDArray[np.int64]
    skill_ids: NDArray[np.int64]
    skill_names: list[str]
    build_seconds: float


def _positions(ids: NDArray[np.int64], wanted: NDArray[np.int64]) -> NDArray[np.int64]:
    """Positions of ``wanted`` in ``ids`` (any order; every wanted id must be present)."""
    order = np.argsort(ids, kind="stable")
    return order[np.searchsorted(ids[order], wanted)].astype(np.int64)


def _sparse(
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    values: NDArray[np.float64],
    shape: tuple[int, int],
) -> sp.csr_array:
    return sp.csr_array((values, (rows, cols)), shape=shape)


@dataclass(frozen=True)
class Taxonomy:
    """Skill tags as array positions: ``skill_parent`` is what ``MatchProblem`` takes."""

    skill_ids: NDArray[np.int64]  # (S,) ascending
    skill_parent: NDArray[np.int64]  # (S,) parent position or -1
    skill_names: list[str]  # (S,)

    def positions(self, skill_ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Positions of skill ids (every one must be a tag of the taxonomy)."""
        return _positions(self.skill_ids, skill_ids)


def load_taxonomy(session: Session, alliance_ids: Iterable[int]) -> Taxonomy:
    """The alliances' skill tags by id: a parent is always a tag of the same alliance, so every
    parent id is among them."""
    rows = session.execute(
        select(Skill.id, Skill.parent_id, Skill.name)
        .where(Skill.alliance_id.in_(sorted(alliance_ids)))
        .order_by(Skill.id)
    ).all()
    skill_ids = np.array([row[0] for row in rows], dtype=np.int64)
    parent_ids = np.array([row[1] if row[1] is not None else -1 for row in rows], dtype=np.int64)
    parent = np.where(parent_ids >= 0, _positions(skill_ids, np.maximum(parent_ids, 0)), -1)
    return Taxonomy(skill_ids, parent.astype(np.int64), [row[2] for row in rows])


def _unit_filter(alliance: Alliance, params: MatchParams) -> ColumnElement[bool]:
    """The units a run considers: the alliance's, or the chosen ones of them."""
    unit_filter = Unit.alliance_id == alliance.id
    if params.unit_ids:
        unit_filter = unit_filter & Unit.id.in_(params.unit_ids)
    return unit_filter


def _craftsmen_query(alliance: Alliance, params: MatchParams) -> Select[int, int, str | None, int]:
    """The craftsmen taking part (active, accepting apprentices and not paused on the run's
    date, with a free slot) as (id, unit_id, region, free)."""
    free = free_slots()
    return (
        select(Craftsman.id, Craftsman.unit_id, Craftsman.region, free)
        .join(Unit, Craftsman.unit_id == Unit.id)
        .where(
            _unit_filter(alliance, params),
            Craftsman.active.is_(True),
            available_on(local_today(alliance.timezone)),
            free > 0,
        )
        .where(consent_given(Craftsman, alliance))
        # The HR systems' identity, not the id: the same data gives the same pairs whatever
        # order it was inserted in.
        .order_by(Craftsman.unit_id, Craftsman.external_id)
    )


# When an apprentice's last mentorship ended (None: never had one ended), for the waiting bonus.
_LAST_ENDED = (
    select(func.max(Mentorship.ended_on))
    .where(Mentorship.apprentice_id == Apprentice.id)
    .correlate(Apprentice)
    .scalar_subquery()
)


def waited_days(
    rows: Sequence[tuple[datetime, date | None]], *, timezone: str, today: date
) -> NDArray[np.float64]:
    """Days each apprentice has waited to be paired (matching.md, ``waiting_bonus``): since
    they were created or, later, since their last mentorship ended, in the alliance's
    timezone; ``rows`` are (created_at, last ended_on)."""
    zone = ZoneInfo(timezone)
    return np.array(
        [
            max(0, (today - max(created.astimezone(zone).date(), ended or date.min)).days)
            for created, ended in rows
        ],
        dtype=np.float64,
    )


def _apprentices_query(
    alliance: Alliance, params: MatchParams
) -> Select[int, int, str | None, datetime, date | None]:
    """The apprentices taking part (active, with wanted skills, not mentored unless
    ``include_mentored``) as (id, unit_id, region, created_at, last ended_on)."""
    stmt = (
        select(
            Apprentice.id,
            Apprentice.unit_id,
            Apprentice.region,
            Apprentice.created_at,
            _LAST_ENDED.label("last_ended_on"),
        )
        .join(Unit, Apprentice.unit_id == Unit.id)
        .where(*_apprentices_taking_part_but_for_consent(alliance, params))
        .where(consent_given(Apprentice, alliance))
        .order_by(Apprentice.unit_id, Apprentice.external_id)
    )
    return stmt


def _apprentices_taking_part_but_for_consent(
    alliance: Alliance, params: MatchParams
) -> list[ColumnElement[bool]]:
    """The conditions (over ``Apprentice`` joined to its ``Unit``) of the apprentices who take
    part but for consent: active, with wanted skills, in the considered units, not mentored
    unless ``include_mentored``."""
    has_wants = select(ApprenticeWant.apprentice_id).distinct()
    conditions = [
        _unit_filter(alliance, params),
        Apprentice.active.is_(True),
        Apprentice.id.in_(has_wants),
    ]
    if not params.include_mentored:
        mentored = select(Mentorship.apprentice_id).where(Mentorship.status == MENTORSHIP_ACTIVE)
        # An apprentice offered to a craftsman who has not answered yet waits for that answer.
        offered = select(Offer.apprentice_id).where(Offer.status == OFFER_OFFERED)
        conditions += [Apprentice.id.not_in(mentored), Apprentice.id.not_in(offered)]
    return conditions


def _apprentices_without_consent(
    session: Session, alliance: Alliance, params: MatchParams
) -> list[int]:
    """The apprentices left out of a run for want of consent alone (reason ``no_consent``)."""
    if not alliance.consent_required:
        return []
    stmt = (
        select(Apprentice.id)
        .join(Unit, Apprentice.unit_id == Unit.id)
        .where(*_apprentices_taking_part_but_for_consent(alliance, params))
        .where(~consent_given(Apprentice, alliance))
        .order_by(Apprentice.id)
    )
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class People:
    """The craftsmen and apprentices taking part, as the arrays of ``MatchProblem``."""

    craftsman_ids: NDArray[np.int64]  # (M,)
    craftsman_unit: NDArray[np.int64]
    craftsman_region: NDArray[np.int64]
    craftsman_free: NDArray[np.int64]
    craftsman_skills: sp.csr_array  # (M, S) level
    apprentice_ids: NDArray[np.int64]  # (A,)
    apprentice_unit: NDArray[np.int64]
    apprentice_region: NDArray[np.int64]
    apprentice_wants: sp.csr_array  # (A, S) target level
    apprentice_weights: sp.csr_array  # (A, S) weight
    apprentice_waited_days: NDArray[np.float64]  # (A,)


class RegionCodes:
    """One integer code per region name, shared by craftsmen and apprentices; -1 for none."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def of(self, values: Sequence[str | None]) -> NDArray[np.int64]:
        """The codes of ``values``, new names numbered in order of appearance."""
        return np.array(
            [-1 if not v else self.codes.setdefault(v, len(self.codes)) for v in values],
            dtype=np.int64,
        )


def _craftsman_skill_rows(
    session: Session, *, unit_filter: ColumnElement[bool], craftsman_ids: NDArray[np.int64]
) -> NDArray[np.float64]:
    """(K, 3) [craftsman id, skill id, level] of the craftsmen taking part."""
    rows = np.array(
        session.execute(
            select(
                CraftsmanSkill.craftsman_id, CraftsmanSkill.skill_id, CraftsmanSkill.level
            ).where(
                CraftsmanSkill.craftsman_id.in_(select(Craftsman.id).join(Unit).where(unit_filter))
            )
        ).all(),
        dtype=np.float64,
    ).reshape(-1, 3)
    kept: NDArray[np.float64] = rows[np.isin(rows[:, 0].astype(np.int64), craftsman_ids)]
    return kept


def _apprentice_want_rows(
    session: Session, *, unit_filter: ColumnElement[bool], apprentice_ids: NDArray[np.int64]
) -> NDArray[np.float64]:
    """(K, 4) [apprentice id, skill id, target level, weight] of the apprentices taking part."""
    rows = np.array(
        session.execute(
            select(
                ApprenticeWant.apprentice_id,
                ApprenticeWant.skill_id,
                ApprenticeWant.level,
                ApprenticeWant.weight,
            ).where(
                ApprenticeWant.apprentice_id.in_(
                    select(Apprentice.id).join(Unit).where(unit_filter)
                )
            )
        ).all(),
        dtype=np.float64,
    ).reshape(-1, 4)
    kept: NDArray[np.float64] = rows[np.isin(rows[:, 0].astype(np.int64), apprentice_ids)]
    return kept


def _person_skill_matrix(
    rows: NDArray[np.float64],
    *,
    person_ids: NDArray[np.int64],
    taxonomy: Taxonomy,
    value_column: int,
) -> sp.csr_array:
    """(people, S) sparse matrix of one column of skill rows ``[person id, skill id, ...]``."""
    return _sparse(
        _positions(person_ids, rows[:, 0].astype(np.int64)),
        taxonomy.positions(rows[:, 1].astype(np.int64)),
        rows[:, value_column],
        (len(person_ids), len(taxonomy.skill_ids)),
    )


def _load_people(
    session: Session, *, alliance: Alliance, params: MatchParams, taxonomy: Taxonomy
) -> People:
    """Who takes part, their units, regions, free slots, skills and wants, in a stable order."""
    unit_filter = _unit_filter(alliance, params)
    craftsmen = session.execute(_craftsmen_query(alliance, params)).all()
    craftsman_ids = np.array([row[0] for row in craftsmen], dtype=np.int64)
    apprentices = session.execute(_apprentices_query(alliance, params)).all()
    apprentice_ids = np.array([row[0] for row in apprentices], dtype=np.int64)
    regions = RegionCodes()
    skills = _craftsman_skill_rows(session, unit_filter=unit_filter, craftsman_ids=craftsman_ids)
    wants = _apprentice_want_rows(session, unit_filter=unit_filter, apprentice_ids=apprentice_ids)
    return People(
        craftsman_ids=craftsman_ids,
        craftsman_unit=np.array([row[1] for row in craftsmen], dtype=np.int64),
        craftsman_region=regions.of([row[2] for row in craftsmen]),
        craftsman_free=np.array([row[3] for row in craftsmen], dtype=np.int64),
        craftsman_skills=_person_skill_matrix(
            skills, person_ids=craftsman_ids, taxonomy=taxonomy, value_column=2
        ),
        apprentice_ids=apprentice_ids,
        apprentice_unit=np.array([row[1] for row in apprentices], dtype=np.int64),
        apprentice_region=regions.of([row[2] for row in apprentices]),
        apprentice_wants=_person_skill_matrix(
            wants, person_ids=apprentice_ids, taxonomy=taxonomy, value_column=2
        ),
        apprentice_weights=_person_skill_matrix(
            wants, person_ids=apprentice_ids, taxonomy=taxonomy, value_column=3
        ),
        apprentice_waited_days=waited_days(
            [(row[3], row[4]) for row in apprentices],
            timezone=alliance.timezone,
            today=local_today(alliance.timezone),
        ),
    )


@dataclass(frozen=True)
class Constraints:
    """Pairs as position pairs (K, 2) [craftsman, apprentice]."""

    excluded: NDArray[np.int64]  # standing rejections and the run's excluded pairs
    pinned: NDArray[np.int64]
    avoided: NDArray[np.int64]  # on the apprentice's avoid list
    preference_rank: sp.csr_array | None  # (A, M) rank 1-3 of ranked craftsmen; None: none


def _load_preferences(
    session: Session, *, unit_filter: ColumnElement[bool], people: People
) -> tuple[NDArray[np.int64], sp.csr_array | None]:
    """The avoided pairs (positions) and the (A, M) sparse ranks of the people taking part."""
    rows = np.array(
        session.execute(
            select(
                ApprenticePreference.craftsman_id,
                ApprenticePreference.apprentice_id,
                func.coalesce(ApprenticePreference.rank, 0),
            ).where(
                ApprenticePreference.apprentice_id.in_(
                    select(Apprentice.id).join(Unit).where(unit_filter)
                )
            )
        ).all(),
        dtype=np.int64,
    ).reshape(-1, 3)
    rows = rows[_taking_part(rows[:, :2], people.craftsman_ids, people.apprentice_ids)]
    avoided = _pairs_in(rows[rows[:, 2] == 0, :2], people.craftsman_ids, people.apprentice_ids)
    ranked = rows[rows[:, 2] > 0]
    if ranked.shape[0] == 0:
        return avoided, None
    ranks = sp.csr_array(
        (
            ranked[:, 2],
            (
                _positions(people.apprentice_ids, ranked[:, 1]),
                _positions(people.craftsman_ids, ranked[:, 0]),
            ),
        ),
        shape=(people.apprentice_ids.size, people.craftsman_ids.size),
        dtype=np.int64,
    )
    return avoided, ranks


def _load_constraints(
    session: Session, *, params: MatchParams, people: People, unit_filter: ColumnElement[bool]
) -> Constraints:
    """The run's excluded and pinned pairs and the standing rejections, among who takes part;
    a pinned pair whose people do not take part fails the run (``PinnedPairFailure``)."""
    craftsman_ids, apprentice_ids = people.craftsman_ids, people.apprentice_ids
    rejected = session.execute(
        select(RejectedPair.craftsman_id, RejectedPair.apprentice_id).where(
            RejectedPair.cleared_at.is_(None)
        )
    ).all()
    excluded = np.array([tuple(p) for p in rejected] + list(params.excluded), dtype=np.int64)
    pinned = np.array(params.pinned, dtype=np.int64).reshape(-1, 2)
    for craftsman_id, apprentice_id in pinned:
        if craftsman_id not in craftsman_ids or apprentice_id not in apprentice_ids:
            raise PinnedPairFailure(
                f"Pinned pair [{craftsman_id}, {apprentice_id}] cannot take part: the craftsman "
                "must be active, accepting apprentices and not paused, with free capacity, and "
                "the apprentice active, with wanted skills, no active mentorship and, where "
                "required, consent, both in the considered units."
            )
    avoided, ranks = _load_preferences(session, unit_filter=unit_filter, people=people)
    return Constraints(
        excluded=_pairs_in(excluded, craftsman_ids, apprentice_ids),
        pinned=_pairs_in(pinned, craftsman_ids, apprentice_ids),
        avoided=avoided,
        preference_rank=ranks,
    )


def _taking_part(
    pairs: NDArray[np.int64], craftsman_ids: NDArray[np.int64], apprentice_ids: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """(K,) which id pairs [craftsman, apprentice] have both people taking part."""
    pairs = pairs.reshape(-1, 2)
    known: NDArray[np.bool_] = np.isin(pairs[:, 0], craftsman_ids) & np.isin(
        pairs[:, 1], apprentice_ids
    )
    return known


def _pairs_in(
    pairs: NDArray[np.int64], craftsman_ids: NDArray[np.int64], apprentice_ids: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Id pairs turned into position pairs, keeping those whose two people take part."""
    pairs = pairs.reshape(-1, 2)
    pairs = pairs[_taking_part(pairs, craftsman_ids, apprentice_ids)]
    return np.column_stack(
        [_positions(craftsman_ids, pairs[:, 0]), _positions(apprentice_ids, pairs[:, 1])]
    ).astype(np.int64)


def _considered_units(
    session: Session, *, alliance: Alliance, params: MatchParams
) -> NDArray[np.int64]:
    """(U,) the ids of the units the run considers, ascending (for ``stats.units``)."""
    ids = session.scalars(select(Unit.id).where(_unit_filter(alliance, params)).order_by(Unit.id))
    return np.array(list(ids), dtype=np.int64)


def load_problem(session: Session, *, alliance: Alliance, params: MatchParams) -> LoadedProblem:
    """Every craftsman and apprentice taking part, and the pair constraints, as arrays."""
    started = time.perf_counter()
    taxonomy = load_taxonomy(session, [alliance.id])
    people = _load_people(session, alliance=alliance, params=params, taxonomy=taxonomy)
    constraints = _load_constraints(
        session, params=params, people=people, unit_filter=_unit_filter(alliance, params)
    )
    problem = MatchProblem(
        craftsman_unit=people.craftsman_unit,
        craftsman_region=people.craftsman_region,
        craftsman_free=people.craftsman_free,
        craftsman_skills=people.craftsman_skills,
        apprentice_unit=people.apprentice_unit,
        apprentice_region=people.apprentice_region,
        apprentice_wants=people.apprentice_wants,
        apprentice_weights=people.apprentice_weights,
        skill_parent=taxonomy.skill_parent,
        excluded=constraints.excluded,
        pinned=constraints.pinned,
        units=_considered_units(session, alliance=alliance, params=params),
        apprentice_waited_days=people.apprentice_waited_days,
        preference_rank=constraints.preference_rank,
        avoided=constraints.avoided,
    )
    return LoadedProblem(
        problem=problem,
        craftsman_ids=people.craftsman_ids,
        apprentice_ids=people.apprentice_ids,
        skill_ids=taxonomy.skill_ids,
        skill_names=taxonomy.skill_names,
        build_seconds=time.perf_counter() - started,
    )


def validate_params(
    session: Session, *, alliance: Alliance, params: MatchParams, field: str = "params"
) -> MatchParams:
    """The parameters, if their unit and person ids belong to the alliance and the pins alone
    break no fair-share cap (else 422, the messages under ``field``)."""
    errors: dict[str, Any] = {}
    if params.unit_ids:
        found = set(
            session.scalars(
                select(Unit.id).where(Unit.alliance_id == alliance.id, Unit.id.in_(params.unit_ids))
            )
        )
        missing = [u for u in params.unit_ids if u not in found]
        if missing:
            errors["unit_ids"] = [f"Not units of this alliance: {missing}."]
    for name, pairs in (("pinned", params.pinned), ("excluded", params.excluded)):
        if not pairs:
            continue
        craftsmen = set(
            session.scalars(
                select(Craftsman.id)
                .join(Unit)
                .where(Unit.alliance_id == alliance.id, Craftsman.id.in_({p[0] for p in pairs}))
            )
        )
        apprentices = set(
            session.scalars(
                select(Apprentice.id)
                .join(Unit)
                .where(Unit.alliance_id == alliance.id, Apprentice.id.in_({p[1] for p in pairs}))
            )
        )
        bad = {
            str(i): [f"No craftsman {c} or no apprentice {a} in this alliance."]
            for i, (c, a) in enumerate(pairs)
            if c not in craftsmen or a not in apprentices
        }
        if bad:
            errors[name] = bad
    avoided_pins = _pins_avoided(session, params=params)
    if avoided_pins:
        errors.setdefault("pinned", {}).update(avoided_pins)
    errors.update(_pins_over_caps(session, params=params))
    if errors:
        raise ValidationFailed(
            "Some match parameters do not fit this alliance.", errors={field: errors}
        )
    return params


def _pins_avoided(session: Session, *, params: MatchParams) -> dict[str, list[str]]:
    """Per pinned pair on its apprentice's avoid list (hard constraint 6), a message naming it."""
    if not params.pinned:
        return {}
    avoided = {
        (int(c), int(a))
        for c, a in session.execute(
            select(ApprenticePreference.craftsman_id, ApprenticePreference.apprentice_id).where(
                ApprenticePreference.apprentice_id.in_({a for _, a in params.pinned}),
                ApprenticePreference.rank.is_(None),
            )
        )
    }
    return {
        str(i): [f"Apprentice {a} asked to avoid craftsman {c}: pair [{c}, {a}] cannot be pinned."]
        for i, (c, a) in enumerate(params.pinned)
        if (c, a) in avoided
    }


def _units_of(
    session: Session, model: type[Craftsman] | type[Apprentice], ids: set[int]
) -> dict[int, int]:
    """Person id -> unit id, for the people of ``ids`` that exist."""
    rows = session.execute(select(model.id, model.unit_id).where(model.id.in_(ids)))
    return {row[0]: row[1] for row in rows}


def _pins_over_caps(session: Session, *, params: MatchParams) -> dict[str, list[str]]:
    """Per fair-share cap that the pinned pairs alone exceed, a message naming the units."""
    if not params.pinned or not params.has_fair_shares:
        return {}
    craftsman_unit = _units_of(session, Craftsman, {c for c, _ in params.pinned})
    apprentice_unit = _units_of(session, Apprentice, {a for _, a in params.pinned})
    known = [(c, a) for c, a in params.pinned if c in craftsman_unit and a in apprentice_unit]
    breaches = pin_cap_breaches(
        np.array([craftsman_unit[c] for c, _ in known], dtype=np.int64),
        np.array([apprentice_unit[a] for _, a in known], dtype=np.int64),
        params,
    )
    errors: dict[str, list[str]] = {}
    for breach in breaches:
        errors.setdefault(breach.cap, []).append(breach.message())
    return errors


def with_alliance_defaults(
    alliance: Alliance, *, params: MatchParams, given: Iterable[str]
) -> MatchParams:
    """The parameters a run uses: the alliance's ``match_defaults``, overridden key by key by
    the ones the run was given (``given`` names them; ``params`` holds their values)."""
    own = params.to_json()
    chosen = {name: own[name] for name in given if name in own}
    return MatchParams.from_json({**(alliance.match_defaults or {}), **chosen})


def estimate_cells(session: Session, *, alliance: Alliance, params: MatchParams) -> int:
    """Free slots × apprentices: the size of the dense problem, to decide inline vs queued.

    Counted over the same craftsmen, free slots and apprentices as ``load_problem`` (before
    pins, which only move slots around)."""
    craftsmen = _craftsmen_query(alliance, params).order_by(None).subquery()
    apprentices = _apprentices_query(alliance, params).order_by(None).subquery()
    slots = session.scalar(select(func.coalesce(func.sum(craftsmen.c[3]), 0))) or 0
    people = session.scalar(select(func.count()).select_from(apprentices)) or 0
    return int(slots) * int(people)


def _active_run_conflict(session: Session, alliance: Alliance) -> Conflict | None:
    """409 if a run of the alliance is queued or running: one run at a time per alliance."""
    active = session.execute(
        select(MatchRun.id, MatchRun.status)
        .where(MatchRun.alliance_id == alliance.id, MatchRun.status.in_(ACTIVE_RUN_STATUSES))
        .limit(1)
    ).first()
    if active is None:
        return None
    return Conflict(
        f"Match run {active.id} of this alliance is still {active.status}; an alliance has one "
        f"run at a time. Wait until it is done (GET /api/v1/match-runs/{active.id}), then start "
        "this one again. Nothing was written."
    )


def create_match_run(
    session: Session, *, alliance: Alliance, params: MatchParams, created_by: str | None
) -> MatchRun:
    """A queued run with validated parameters; 409 while another run of the alliance is queued
    or running (a partial unique index keeps that true for concurrent requests too)."""
    conflict = _active_run_conflict(session, alliance)
    if conflict is not None:
        raise conflict
    run = MatchRun(
        alliance_id=alliance.id,
        status=RUN_QUEUED,
        params=validate_params(session, alliance=alliance, params=params).to_json(),
        stats={},
        progress={"stage": "queued", "fraction": 0.0},
        created_by=created_by,
    )
    session.add(run)
    try:
        session.flush()
    except IntegrityError as exc:
        # A concurrent request started a run of the alliance between the check and the insert.
        if not any(n in str(exc.orig) for n in (ACTIVE_RUN_INDEX, "match_runs.alliance_id")):
            raise
        session.rollback()
        raise _active_run_conflict(session, alliance) or Conflict(
            "Another run of this alliance was started at the same time; nothing was written."
        ) from exc
    return run


def begin_solving(run: MatchRun) -> None:
    """Mark a run as being solved by this process (``running``, progress from the start)."""
    run.status = RUN_RUNNING
    run.progress = {"stage": "loading", "fraction": 0.0}
    run.updated_at = utcnow()


def start_match_run(
    session: Session,
    *,
    alliance: Alliance,
    params: MatchParams,
    created_by: str,
    inline_max_cells: int,
) -> MatchRun:
    """Solve the run at once when small; a large one stays queued for the scheduler process.

    The same rule as the API's POST: a web worker is never blocked by a large solve. A run solved
    at once is committed as ``running`` first, so that another start for the alliance is refused
    (409) while it solves, and SQLite's write lock is not held meanwhile; the caller commits the
    result. A crash while solving is recorded on the run (``failed``) before it propagates.
    """
    run = create_match_run(session, alliance=alliance, params=params, created_by=created_by)
    if estimate_cells(session, alliance=alliance, params=params) > inline_max_cells:
        return run
    begin_solving(run)
    session.commit()
    try:
        return execute_match_run(session, run=run)
    except Exception:
        session.rollback()
        _fail(session, run, "Internal error while solving; the operator's log has details.")
        session.commit()
        raise


def claim_queued_run(session: Session, *, stale_after_seconds: int = 1800) -> MatchRun | None:
    """Take the oldest queued run (or one whose solver died) for this process, or ``None``.

    A compare-and-set UPDATE makes the claim safe with several schedulers on either database.
    The caller commits the claim before it solves the run.
    """
    stale = utcnow().timestamp() - stale_after_seconds
    candidates = session.execute(
        select(MatchRun.id, MatchRun.status, MatchRun.updated_at)
        .where(MatchRun.status.in_(ACTIVE_RUN_STATUSES))
        .order_by(MatchRun.id)
    ).all()
    for run_id, status, updated_at in candidates:
        if status == RUN_RUNNING and updated_at.timestamp() > stale:
            continue
        claimed = session.execute(
            update(MatchRun)
            .where(
                MatchRun.id == run_id, MatchRun.status == status, MatchRun.updated_at == updated_at
            )
            .values(
                status=RUN_RUNNING,
                updated_at=utcnow(),
                progress={"stage": "loading", "fraction": 0.0},
            )
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            return session.get(MatchRun, run_id)
    return None


def execute_match_run(
    session: Session, *, run: MatchRun, progress: Progress | None = None
) -> MatchRun:
    """Solve a run and store its proposals and unmatched; a failure is recorded on the run."""
    started = time.perf_counter()
    try:
        _solve_and_store(session, run=run, progress=progress)
    finally:
        method = str((run.stats or {}).get("method", "none")).split("+")[0]
        MATCH_RUN_SECONDS.labels(method, run.status).observe(time.perf_counter() - started)
    return run


def _solve_and_store(session: Session, *, run: MatchRun, progress: Progress | None) -> MatchRun:
    """Load, solve, store proposals and the unmatched; a pin that cannot hold fails the run."""
    alliance = session.get_one(Alliance, run.alliance_id)
    params = MatchParams.from_json(run.params)
    report = progress or (lambda _stage, _fraction: None)
    try:
        report("loading", 0.05)
        loaded = load_problem(session, alliance=alliance, params=params)
    except PinnedPairFailure as exc:
        return _fail(session, run, str(exc))
    try:
        report("solving", 0.3)
        result = solve_match(
            loaded.problem, params, progress=lambda stage, f: report(stage, 0.3 + 0.6 * f)
        )
    except PinnedPairError as exc:
        return _fail(session, run, _pinned_pair_message(loaded, exc))
    except PinnedCapError as exc:  # validate_params refuses these; the data changed since
        return _fail(session, run, str(exc))
    report("storing", 0.9)
    _store_proposals(session, run=run, loaded=loaded, result=result, params=params)
    _store_unmatched(session, run=run, loaded=loaded, result=result, params=params)
    without_consent = _store_without_consent(session, run=run, alliance=alliance, params=params)
    _mark_proposed(
        session,
        alliance=alliance,
        run=run,
        loaded=loaded,
        result=result,
        without_consent=without_consent,
    )
    return run


def _pinned_pair_message(loaded: LoadedProblem, error: PinnedPairError) -> str:
    """The solver's pin error with database ids instead of array positions."""
    return (
        f"Pinned pair [{int(loaded.craftsman_ids[error.craftsman])}, "
        f"{int(loaded.apprentice_ids[error.apprentice])}]: {error.reason}"
    )


def _mark_proposed(
    session: Session,
    *,
    alliance: Alliance,
    run: MatchRun,
    loaded: LoadedProblem,
    result: MatchResult,
    without_consent: int,
) -> None:
    """The run solved: its objective, stats (loading time counted as building) and status;
    the alliance's webhooks hear of it (``match_run.proposed``; its unmatched count, like the
    run report's, includes the apprentices left out for want of consent)."""
    run.status = RUN_PROPOSED
    run.objective = float(result.objective)
    run.stats = {
        **result.stats,
        "build_seconds": round(loaded.build_seconds + result.stats.get("build_seconds", 0.0), 4),
    }
    run.progress = {"stage": "done", "fraction": 1.0}
    run.updated_at = utcnow()
    session.flush()
    emit_for(
        session,
        alliance.id,
        lambda: [
            Change(
                type="match_run.proposed",
                alliance_id=alliance.id,
                unit_ids=(),
                data={
                    "match_run_id": run.id,
                    "alliance_id": alliance.id,
                    "alliance_code": alliance.code,
                    "status": run.status,
                    "proposals": len(result.apprentice),
                    "unmatched": len(result.unmatched) + without_consent,
                    "objective": run.objective,
                },
            )
        ],
    )


def _fail(session: Session, run: MatchRun, error: str) -> MatchRun:
    """Record the run as failed with ``error`` (the coordinator reads it on the run)."""
    run.status = RUN_FAILED
    run.error = error
    run.progress = {"stage": "failed", "fraction": 1.0}
    run.updated_at = utcnow()
    session.flush()
    return run


def _explanation_rows(
    skill_names: Sequence[str], explanation: Explanation, index: int
) -> list[dict[str, Any]]:
    """One pair's explanation, with skill names instead of positions."""
    rows = []
    for skill, wanted, weight, given, level, credit in explanation.rows(index):
        rows.append(
            {
                "skill": skill_names[skill],
                "wanted_level": int(wanted),
                "weight": float(weight),
                "craftsman_skill": skill_names[given] if given >= 0 else None,
                "craftsman_level": int(level) if given >= 0 else None,
                "credit": round(float(credit), 6),
            }
        )
    return rows


def _store_proposals(
    session: Session,
    *,
    run: MatchRun,
    loaded: LoadedProblem,
    result: MatchResult,
    params: MatchParams,
) -> None:
    """The chosen pairs as pending proposals with their explanations, in one bulk insert."""
    now = utcnow()
    explanation = explain_pairs(loaded.problem, params, result.craftsman, result.apprentice)
    proposals = [
        {
            "match_run_id": run.id,
            "craftsman_id": int(loaded.craftsman_ids[m]),
            "apprentice_id": int(loaded.apprentice_ids[a]),
            "score": float(result.score[i]),
            "fit": float(result.fit[i]),
            "explanation": _explanation_rows(loaded.skill_names, explanation, i),
            "preference_rank": _rank_or_none(explanation.preference_rank[i]),
            "status": PROPOSAL_PENDING,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for i, (m, a) in enumerate(zip(result.craftsman, result.apprentice, strict=True))
    ]
    if proposals:
        session.execute(insert(Proposal), proposals)


def _rank_or_none(rank: np.int64 | int) -> int | None:
    """A preference rank as the API shows it: 1-3, or None for a craftsman not ranked."""
    return int(rank) or None


UNMATCHED_MESSAGES = {
    "no_eligible_craftsman": "No craftsman of another unit reaches min_fit {min_fit} "
    "for the wanted skills.",
    "capacity_exhausted": "Eligible craftsmen exist, but their slots went to better overall pairs.",
    "excluded": "Every eligible pair was rejected before, excluded by the run's parameters, or "
    "is on the apprentice's avoid list.",
    "unit_cap": "Eligible craftsmen still have free slots, but a fair-share cap between units "
    "is full.",
    "no_consent": "The apprentice has not given (or has withdrawn) consent to be shown to other "
    "member units, which this alliance requires.",
}


def _store_without_consent(
    session: Session, *, run: MatchRun, alliance: Alliance, params: MatchParams
) -> int:
    """The apprentices who took no part for want of consent, unmatched as ``no_consent``; how
    many."""
    rows = [
        {
            "match_run_id": run.id,
            "apprentice_id": apprentice_id,
            "reason_code": "no_consent",
            "detail": {"message": UNMATCHED_MESSAGES["no_consent"]},
        }
        for apprentice_id in _apprentices_without_consent(session, alliance, params)
    ]
    if rows:
        session.execute(insert(UnmatchedApprentice), rows)
    return len(rows)


def _store_unmatched(
    session: Session,
    *,
    run: MatchRun,
    loaded: LoadedProblem,
    result: MatchResult,
    params: MatchParams,
) -> None:
    """The unmatched apprentices with their reasons (and blockers), in one bulk insert."""
    unmatched = []
    for position, (a, reason) in enumerate(
        zip(result.unmatched, result.unmatched_reason, strict=True)
    ):
        detail: dict[str, Any] = {
            "message": UNMATCHED_MESSAGES[str(reason)].format(min_fit=params.min_fit)
        }
        if str(reason) in ("capacity_exhausted", "unit_cap"):
            blockers = result.unmatched_blockers[position]
            detail["craftsman_ids"] = sorted(int(loaded.craftsman_ids[m]) for m in blockers)
        if str(reason) == "unit_cap":
            detail["caps"] = [
                {
                    "cap": cap["cap"],
                    "craftsman_unit_id": cap["craftsman_unit"],
                    "apprentice_unit_id": cap["apprentice_unit"],
                }
                for cap in result.unmatched_caps[position]
            ]
        unmatched.append(
            {
                "match_run_id": run.id,
                "apprentice_id": int(loaded.apprentice_ids[a]),
                "reason_code": str(reason),
                "detail": detail,
            }
        )
    if unmatched:
        session.execute(insert(UnmatchedApprentice), unmatched)


def rejected_before(session: Session, *, craftsman_id: int, apprentice_id: int) -> bool:
    """Whether a coordinator rejected this pair and nobody cleared the rejection."""
    count = session.scalar(
        select(func.count())
        .select_from(RejectedPair)
        .where(
            RejectedPair.craftsman_id == craftsman_id,
            RejectedPair.apprentice_id == apprentice_id,
            RejectedPair.cleared_at.is_(None),
        )
    )
    return bool(count)


@dataclass(frozen=True)
class PairJudgement:
    """What matching says of one pair, with the explanation as the API shows it."""

    verdict: PairVerdict
    explanation: list[dict[str, Any]]
    preference_rank: int | None  # where the apprentice ranked the craftsman (1-3), or None


def judge_pair(
    session: Session, *, craftsman: Craftsman, apprentice: Apprentice, params: MatchParams
) -> PairJudgement:
    """Fit, score and explanation of one pair under ``params``, and every hard constraint it
    breaks, by the solver's own rule (``pair_verdict``): rejected before, or excluded by
    ``params``, counts as excluded."""
    # Both people's alliances: an admin may ask about a pair across two alliances, whose skills
    # then simply share no tag (each alliance's tags are its own).
    taxonomy = load_taxonomy(session, {craftsman.unit.alliance_id, apprentice.unit.alliance_id})
    n = len(taxonomy.skill_ids)
    c_skills = [(s.skill_id, s.level) for s in craftsman.skills]
    wants = [(w.skill_id, w.level, w.weight) for w in apprentice.wants]

    def row(entries: list[tuple[Any, ...]], column: int) -> sp.csr_array:
        cols = taxonomy.positions(np.array([e[0] for e in entries], dtype=np.int64))
        values = np.array([e[column] for e in entries], dtype=np.float64)
        return _sparse(np.zeros(len(entries), dtype=np.int64), cols, values, (1, n))

    excluded = (craftsman.id, apprentice.id) in params.excluded or rejected_before(
        session, craftsman_id=craftsman.id, apprentice_id=apprentice.id
    )
    chosen = session.execute(
        select(ApprenticePreference.rank).where(
            ApprenticePreference.apprentice_id == apprentice.id,
            ApprenticePreference.craftsman_id == craftsman.id,
        )
    ).first()
    rank = chosen[0] if chosen is not None else None
    # Regions as codes: 0 for the craftsman's, 1 for any other, -1 for none.
    problem = MatchProblem(
        craftsman_unit=np.array([craftsman.unit_id], dtype=np.int64),
        craftsman_region=np.array([0 if craftsman.region else -1], dtype=np.int64),
        craftsman_free=np.array([1], dtype=np.int64),
        craftsman_skills=row(c_skills, 1),
        apprentice_unit=np.array([apprentice.unit_id], dtype=np.int64),
        apprentice_region=np.array(
            [
                0
                if apprentice.region and apprentice.region == craftsman.region
                else (1 if apprentice.region else -1)
            ],
            dtype=np.int64,
        ),
        apprentice_wants=row(wants, 1),
        apprentice_weights=row(wants, 2),
        skill_parent=taxonomy.skill_parent,
        excluded=np.array([[0, 0]] if excluded else [], dtype=np.int64).reshape(-1, 2),
        pinned=np.zeros((0, 2), dtype=np.int64),
        apprentice_waited_days=_waited_days_of(session, apprentice),
        preference_rank=(
            sp.csr_array(np.array([[rank]], dtype=np.int64)) if rank is not None else None
        ),
        avoided=np.array(
            [[0, 0]] if chosen is not None and rank is None else [], dtype=np.int64
        ).reshape(-1, 2),
    )
    verdict = pair_verdict(problem, params, 0, 0)
    return PairJudgement(
        verdict=verdict,
        explanation=_explanation_rows(taxonomy.skill_names, verdict.explanation, 0),
        preference_rank=_rank_or_none(verdict.explanation.preference_rank[0]),
    )


def _waited_days_of(session: Session, apprentice: Apprentice) -> NDArray[np.float64]:
    """(1,) :func:`waited_days` of one apprentice, as a run would count it today."""
    timezone = apprentice.unit.alliance.timezone
    last_ended = session.scalar(
        select(_LAST_ENDED.label("last_ended_on")).where(Apprentice.id == apprentice.id)
    )
    return waited_days(
        [(apprentice.created_at, last_ended)], timezone=timezone, today=local_today(timezone)
    )


def pair_score(
    session: Session,
    *,
    craftsman: Craftsman,
    apprentice: Apprentice,
    params: MatchParams | None = None,
) -> dict[str, Any]:
    """What the matcher would say of one pair (default parameters, or a run's), and what forbids
    it."""
    params = params or MatchParams()
    judged = judge_pair(session, craftsman=craftsman, apprentice=apprentice, params=params)
    verdict = judged.verdict
    forbidden = verdict.forbidden_by
    detail = {
        "same_unit": "Craftsman and apprentice belong to the same unit.",
        "below_min_fit": f"The fit is below min_fit {params.min_fit}.",
        "excluded": "A coordinator rejected this pair before (clear the rejection to allow it).",
        "avoided": "The apprentice asked to avoid this craftsman.",
        None: None,
    }[forbidden]
    if forbidden is None and not person_consents(craftsman):
        forbidden, detail = "craftsman_no_consent", "The craftsman has not consented (required)."
    if forbidden is None and not person_consents(apprentice):
        forbidden, detail = "apprentice_no_consent", "The apprentice has not consented (required)."
    if forbidden is None and not craftsman.active:
        forbidden, detail = "craftsman_inactive", "The craftsman is inactive."
    if forbidden is None and not apprentice.active:
        forbidden, detail = "apprentice_inactive", "The apprentice is inactive."
    today = local_today(craftsman.unit.alliance.timezone)
    if forbidden is None and not is_available(craftsman, today):
        forbidden, detail = (
            "craftsman_unavailable",
            "The craftsman is not accepting apprentices, or is paused, today.",
        )
    return {
        "craftsman": craftsman,
        "apprentice": apprentice,
        "eligible": forbidden is None,
        "forbidden_by": forbidden,
        "detail": detail,
        "score": float(verdict.score),
        "fit": float(verdict.fit),
        "explanation": judged.explanation,
        "preference_rank": judged.preference_rank,
    }
