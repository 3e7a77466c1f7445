"""Every protocol in the catalog makes a valid plan for every classification it claims
to cover (its ``applies_to``), and together they cover every site and triage outcome.

Property tests: hypothesis draws injuries that triage to the claimed outcome, optional
Triad risk assessments, run days, times and time zones; every plan must keep the
planner's invariants — before any gate, and after a clinician has met every gate.

With ``PLANNER_PROTOCOLS_DIRS`` set, a clinic's own protocols are tested too
(docs/protocols.md): ``PLANNER_PROTOCOLS_DIRS=my/dir pytest tests/domain/test_catalog_coverage.py``.
"""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st

from planner.catalog import builtin_protocols_dir, load_catalog, protocol_dirs
from planner.domain import (
    InvalidInjury,
    Pathway,
    Plan,
    PlanRequest,
    Protocol,
    SessionKind,
    Site,
    Triage,
    Weekday,
    classify,
    make_plan,
)
from planner.domain.injury import SITE_PROFILES
from planner.domain.model import (
    NO_RUNNING_PHASES,
    NO_WALKING_PHASES,
    Clearance,
    EnergyAvailability,
    FractureSide,
    Preferences,
    RiskAssessment,
)
from planner.domain.planning import planning_context
from planner.domain.progress import Gate, revise
from planner.domain.selection import select_protocol, triage
from tests.builders import CREATED_AT, PLAN_ID, shipped_catalog

#: A clinic's own directories, when set: their protocols are property-tested too.
EXTRA_DIRS = protocol_dirs(os.environ.get("PLANNER_PROTOCOLS_DIRS"))
CATALOG = load_catalog(EXTRA_DIRS) if EXTRA_DIRS else shipped_catalog()
#: (protocol id, site, type, triage) for every classification a protocol claims.
CLAIMS = [
    (protocol.id, site, side, outcome)
    for protocol in CATALOG
    for site in protocol.applies_to.sites
    for side in (protocol.applies_to.types if site is Site.FEMORAL_NECK else (None,))
    for outcome in protocol.applies_to.triage
]
TIME_ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata"]
PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


def _claim_id(claim: tuple[str, Site, FractureSide | None, Triage]) -> str:
    protocol_id, site, side, outcome = claim
    return f"{protocol_id}:{site.value}{f'/{side.value}' if side else ''}:{outcome.value}"


# ------------------------------------------------------------------ strategies

maybe = st.sampled_from([None, None, False, True])


@st.composite
def grades(draw: st.DrawFn) -> dict[str, Any]:
    """A grade, its system and a stated line (possibly inconsistent: classify decides)."""
    system = draw(
        st.sampled_from([None, None, "nattiv", "arendt", "fredericson", "kaeding_miller"])
    )
    top = 5 if system == "kaeding_miller" else 4
    fields: dict[str, Any] = {"fracture_line": draw(maybe)}
    if system is not None or draw(st.booleans()):
        fields["mri_grade"] = draw(st.integers(1, top))
    if system is not None:
        fields["grading_system"] = system
    return fields


@st.composite
def injury_for(draw: st.DrawFn, site: Site, side: FractureSide | None, outcome: Triage) -> Any:
    fields: dict[str, Any] = {
        "site": site.value,
        "laterality": draw(st.sampled_from([None, "left", "right"])),
        **draw(grades()),
    }
    if site is Site.FEMORAL_NECK:
        fields["type"] = side.value if side else "compression"
        fields["fracture_line_pct"] = draw(st.one_of(st.none(), st.integers(0, 49)))
    if outcome is Triage.EMERGENCY_CARE:
        finding = draw(st.sampled_from(["displaced", "can_bear_weight"]))
        fields[finding] = finding == "displaced"
    elif outcome is Triage.URGENT_SURGICAL_REFERRAL and side is FractureSide.COMPRESSION:
        finding = draw(
            st.sampled_from(
                ["complete", "pct", "hip_effusion", "progression_on_imaging", "non_union"]
            )
        )
        if finding == "pct":
            fields["fracture_line_pct"] = draw(st.integers(50, 100))
        elif finding == "non_union":
            fields.update(mri_grade=5, grading_system="kaeding_miller", fracture_line=None)
        else:
            fields[finding] = True
    elif outcome is Triage.SPECIALIST_REFERRAL and not SITE_PROFILES[site].high_risk:
        if draw(st.booleans()):
            fields["progression_on_imaging"] = True
        else:
            fields.update(mri_grade=5, grading_system="kaeding_miller", fracture_line=None)
    elif site is not Site.FEMORAL_NECK or outcome is Triage.CONSERVATIVE:
        fields["progression_on_imaging"] = draw(st.sampled_from([None, False]))
    if site is Site.FEMORAL_HEAD:
        fields["hip_effusion"] = draw(maybe)
    if site is Site.FEMORAL_NECK and outcome is Triage.CONSERVATIVE:
        fields["hip_effusion"] = draw(st.sampled_from([None, False]))
    try:
        found = classify(**{k: v for k, v in fields.items() if v is not None})
    except InvalidInjury:
        reject()
    assume(triage(found)[0].triage is outcome)
    return found


@st.composite
def assessments(draw: st.DrawFn) -> RiskAssessment | None:
    if draw(st.booleans()):
        return None
    prior = draw(st.one_of(st.none(), st.integers(0, 4)))
    return RiskAssessment(
        energy_availability=draw(st.one_of(st.none(), st.sampled_from(list(EnergyAvailability)))),
        bmi=draw(st.one_of(st.none(), st.floats(14, 26))),
        weight_loss_pct_month=draw(st.one_of(st.none(), st.floats(0, 15))),
        menarche_age=draw(st.one_of(st.none(), st.floats(10, 18))),
        menses_last_12_months=draw(st.one_of(st.none(), st.integers(0, 13))),
        bmd_z_score=draw(st.one_of(st.none(), st.floats(-3.5, 2))),
        prior_bsi_count=prior,
        prior_high_risk_bsi=None if prior == 0 else draw(maybe),
    )


@st.composite
def requests_for(
    draw: st.DrawFn, site: Site, side: FractureSide | None, outcome: Triage
) -> PlanRequest:
    diagnosis = draw(st.dates(date(2020, 1, 1), date(2040, 12, 31)))
    run_days = draw(st.sets(st.sampled_from(list(Weekday)), min_size=1))
    return PlanRequest(
        diagnosis_date=diagnosis,
        start_date=diagnosis + timedelta(days=draw(st.integers(0, 10))),
        injury=draw(injury_for(site, side, outcome)),
        risk_assessment=draw(assessments()),
        preferences=Preferences(
            run_days=tuple(sorted(run_days, key=lambda d: d.iso_index)),
            session_time=draw(st.sampled_from([None, "06:30", "18:00", "23:45"])),
            timezone=draw(st.sampled_from(TIME_ZONES)),
        ),
    )


# ------------------------------------------------------------------ invariants


def check_plan(made: Plan, request: PlanRequest) -> None:
    """Phases contiguous, sessions inside phases, and the running rules."""
    phases = {p.key: p for p in made.phases}
    assert len(phases) == len(made.phases), "phase keys are unique"
    assert made.phases[0].start_date == request.effective_start
    for phase in made.phases:
        assert phase.end_date >= phase.start_date
    for previous, following in zip(made.phases, made.phases[1:], strict=False):
        assert following.start_date == previous.end_date + timedelta(days=1)
    for s in made.sessions:
        assert phases[s.phase].contains(s.date), s.key
    assert [s.date for s in made.sessions] == sorted(s.date for s in made.sessions)
    assert len({s.uid for s in made.sessions}) == len(made.sessions)

    run_days = {d.iso_index for d in request.preferences.run_days}
    runs = [s for s in made.sessions if s.kind.is_running]
    assert all(s.date.weekday() in run_days for s in runs)
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert (later.date - earlier.date).days >= 2, (earlier.key, later.key)
    for s in made.sessions:
        if s.phase in NO_RUNNING_PHASES:
            assert not s.kind.is_running, s.key
        if s.phase in NO_WALKING_PHASES:
            assert s.kind is not SessionKind.WALK, s.key
    assert made.expected_return_to_run_date == (runs[0].date if runs else None)
    if runs:
        assert runs[0].kind is SessionKind.RUN_WALK
        # running only ever follows a clinician's review
        assert any(s.kind is SessionKind.REVIEW and s.date < runs[0].date for s in made.sessions)

    loading = [
        s
        for s in made.sessions
        if s.kind in (SessionKind.WALK, *(k for k in SessionKind if k.is_running))
    ]
    if made.pathway is Pathway.SURGICAL_REFERRAL:
        assert not loading
    triad = made.triad
    if triad is not None and triad.clearance is Clearance.RESTRICTED and not made.progress.gates:
        assert not runs


def _gated_phases(made: Plan) -> list[str]:
    return [
        p.key
        for p in made.phases
        if any(
            s.phase == p.key and s.kind is SessionKind.REVIEW and s.date == p.end_date
            for s in made.sessions
        )
    ]


def meet_every_gate(made: Plan, protocol: Protocol) -> Plan:
    """A clinician meets each gate on its review day, hold phases included."""
    context = planning_context(made.request.injury, made.selection)
    done: set[str] = set()
    while True:
        pending = [k for k in _gated_phases(made) if k not in done]
        if not pending:
            return made
        key = pending[0]
        on = made.phase(key).end_date
        made, _ = revise(
            made, protocol, Gate(key, True, on), context=context, today=on, at=CREATED_AT
        )
        done.add(key)


# ------------------------------------------------------------------ properties


@pytest.mark.parametrize("claim", CLAIMS, ids=_claim_id)
@PROPERTY
@given(data=st.data())
def test_every_protocol_plans_every_classification_it_claims(
    claim: tuple[str, Site, FractureSide | None, Triage], data: st.DataObject
) -> None:
    protocol_id, site, side, outcome = claim
    protocol = CATALOG.get(protocol_id)
    request = data.draw(requests_for(site, side, outcome))
    made = make_plan(request, CATALOG, plan_id=PLAN_ID, created_at=CREATED_AT, protocol=protocol)

    if not EXTRA_DIRS:  # a clinic's protocol may take a classification over (lowest id)
        selected = select_protocol(request.injury, made.selection, CATALOG)
        assert selected.id == protocol_id, "the catalog selects the protocol that claims it"
    assert made.selection.triage is outcome and made.pathway is protocol.pathway
    check_plan(made, request)
    if protocol.pathway is Pathway.SPECIALIST_REFERRAL:
        assert [p.key for p in made.phases] == ["specialist_referral"]
        assert not made.expected_return_to_run_date

    cleared = meet_every_gate(made, protocol)
    check_plan(cleared, request)
    if protocol.pathway is not Pathway.SURGICAL_REFERRAL:
        # with every gate met (the Triad hold included), the plan reaches running
        assert cleared.expected_return_to_run_date is not None
        assert [p.key for p in cleared.phases][-2:] == ["graded_running", "return_to_training"]


# ------------------------------------------------------------------ coverage


def _reachable(site: Site) -> set[tuple[Site, FractureSide | None, Triage]]:
    if site is Site.FEMORAL_NECK:
        return {
            (site, FractureSide.COMPRESSION, Triage.CONSERVATIVE),
            (site, FractureSide.COMPRESSION, Triage.URGENT_SURGICAL_REFERRAL),
            (site, FractureSide.COMPRESSION, Triage.EMERGENCY_CARE),
            (site, FractureSide.TENSION, Triage.URGENT_SURGICAL_REFERRAL),
            (site, FractureSide.TENSION, Triage.EMERGENCY_CARE),
        }
    outcomes = {Triage.EMERGENCY_CARE, Triage.SPECIALIST_REFERRAL}
    if not SITE_PROFILES[site].high_risk:
        outcomes.add(Triage.CONSERVATIVE)
    return {(site, None, outcome) for outcome in outcomes}


def test_catalog_covers_every_site_and_outcome_exactly_once() -> None:
    """What GET /v1/protocols shows a clinic: every reachable classification has one
    shipped protocol, and no two protocols claim the same one."""
    shipped = shipped_catalog()
    claimed = [
        (site, side, outcome)
        for protocol in shipped
        for site in protocol.applies_to.sites
        for side in (protocol.applies_to.types if site is Site.FEMORAL_NECK else (None,))
        for outcome in protocol.applies_to.triage
    ]
    reachable = set().union(*(_reachable(site) for site in Site))
    assert set(claimed) == reachable
    assert len(claimed) == len(set(claimed))


@pytest.mark.parametrize("protocol", list(shipped_catalog()), ids=lambda p: p.id)
def test_every_shipped_protocol_cites_and_marks_product_defaults(protocol: Protocol) -> None:
    text = (builtin_protocols_dir() / f"{protocol.id}.toml").read_text(encoding="utf-8")
    assert protocol.references
    cited = {key for phase in protocol.phases for key in phase.evidence}
    assert cited and cited <= {r.key for r in protocol.references}
    assert "product default" in text.lower(), "say where a number is a product default"


# ------------------------------------------------------------------ a clinic's own protocol


def test_a_clinic_protocol_in_an_extra_directory_is_validated_and_chosen(tmp_path: Path) -> None:
    """docs/protocols.md: a clinic drops its file into PLANNER_PROTOCOLS_DIRS; when it
    claims the same classification as a shipped one, the lowest id wins."""
    text = (builtin_protocols_dir() / "low-risk-bsi-conservative.toml").read_text(encoding="utf-8")
    text = text.replace('id = "low-risk-bsi-conservative"', 'id = "a-clinic-tibia"')
    text = text.replace('\n    "fibula",', "").replace("days = 7\n", "days = 10\n")
    (tmp_path / "a-clinic-tibia.toml").write_text(text, encoding="utf-8")
    catalog = load_catalog(extra_dirs=[tmp_path])
    clinic = catalog.get("a-clinic-tibia")
    assert Site.FIBULA not in clinic.applies_to.sites

    tibia = classify(site="tibia_posteromedial")
    selection, _ = triage(tibia)
    assert select_protocol(tibia, selection, catalog).id == "a-clinic-tibia"
    fibula = classify(site="fibula")
    assert select_protocol(fibula, triage(fibula)[0], catalog).id == "low-risk-bsi-conservative"

    shutil.copy(tmp_path / "a-clinic-tibia.toml", tmp_path / "broken.toml")
    with pytest.raises(Exception) as caught:
        load_catalog(extra_dirs=[tmp_path])
    assert "broken.toml" in str(caught.value)


def test_the_authoring_guide_example_is_a_valid_protocol(tmp_path: Path) -> None:
    """docs/protocols.md's clinic example loads and takes navicular injuries over."""
    import re

    guide = Path(__file__).resolve().parents[2] / "docs" / "protocols.md"
    example = re.search(
        r'```toml\n(id = "clinic-navicular".*?)```', guide.read_text(encoding="utf-8"), re.S
    )
    assert example is not None
    (tmp_path / "clinic-navicular.toml").write_text(example.group(1), encoding="utf-8")
    catalog = load_catalog(extra_dirs=[tmp_path])
    navicular, talus = classify(site="navicular"), classify(site="talus")
    assert select_protocol(navicular, triage(navicular)[0], catalog).id == "clinic-navicular"
    assert (
        select_protocol(talus, triage(talus)[0], catalog).id == "high-risk-bsi-specialist-referral"
    )
