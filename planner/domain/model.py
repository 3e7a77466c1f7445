"""Value objects of the planning core: injuries, protocols and dated plans.

Everything here is immutable (frozen dataclasses holding tuples), so a plan can be
shared, cached and compared without defensive copies. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class Site(StrEnum):
    """Bone of the stress injury (stable API vocabulary, domain.md Part B §3.1).

    Mechanical risk and whether the Triad CRA counts a site as trabecular are in
    :data:`planner.domain.injury.SITE_PROFILES`.
    """

    FEMORAL_NECK = "femoral_neck"
    # low-risk sites [R22][R23][R63]
    TIBIA_POSTEROMEDIAL = "tibia_posteromedial"
    FIBULA = "fibula"
    METATARSAL_SHAFT = "metatarsal_shaft"  # 2nd–4th metatarsal shafts
    CALCANEUS = "calcaneus"
    PUBIC_RAMUS = "pubic_ramus"
    FEMORAL_SHAFT = "femoral_shaft"
    # high-risk sites [R13][R22][R23][R63]; femoral head by analogy (domain.md §3.1)
    TIBIA_ANTERIOR = "tibia_anterior"
    NAVICULAR = "navicular"
    METATARSAL_5_PROXIMAL = "metatarsal_5_proximal"
    MEDIAL_MALLEOLUS = "medial_malleolus"
    SESAMOID = "sesamoid"
    PATELLA = "patella"
    TALUS = "talus"
    FEMORAL_HEAD = "femoral_head"


class FractureSide(StrEnum):
    """Fullerton & Snowdy side of a femoral-neck stress injury."""

    COMPRESSION = "compression"
    TENSION = "tension"


class GradingSystem(StrEnum):
    """The MRI (or clinical + imaging) grading an ``mri_grade`` is stated in (Part B §1).

    ``nattiv`` and ``arendt``: 1–4, 4 = a visible fracture line. ``fredericson``: 1–4,
    where 4 is split by ``fracture_line`` (false = 4a, true = 4b). ``kaeding_miller``:
    I–V as 1–5, III = non-displaced line, IV = displaced, V = non-union.
    """

    NATTIV = "nattiv"
    FREDERICSON = "fredericson"
    ARENDT = "arendt"
    KAEDING_MILLER = "kaeding_miller"


class Laterality(StrEnum):
    LEFT = "left"
    RIGHT = "right"


class Pathway(StrEnum):
    CONSERVATIVE = "conservative"
    SURGICAL_REFERRAL = "surgical_referral"
    SPECIALIST_REFERRAL = "specialist_referral"


class Triage(StrEnum):
    """Outcome of the triage rules; protocols declare which outcomes they serve."""

    EMERGENCY_CARE = "emergency_care"
    URGENT_SURGICAL_REFERRAL = "urgent_surgical_referral"
    CONSERVATIVE = "conservative"
    SPECIALIST_REFERRAL = "specialist_referral"

    @property
    def pathway(self) -> Pathway:
        if self is Triage.CONSERVATIVE:
            return Pathway.CONSERVATIVE
        if self is Triage.SPECIALIST_REFERRAL:
            return Pathway.SPECIALIST_REFERRAL
        return Pathway.SURGICAL_REFERRAL


class SessionKind(StrEnum):
    CROSS_TRAINING = "cross_training"
    STRENGTH = "strength"
    WALK = "walk"
    RUN_WALK = "run_walk"
    RUN = "run"
    REVIEW = "review"

    @property
    def is_running(self) -> bool:
        return self in (SessionKind.RUN_WALK, SessionKind.RUN)


class Severity(StrEnum):
    URGENT = "urgent"
    WARNING = "warning"
    INFO = "info"


class RiskFactor(StrEnum):
    FEMALE = "female"
    PRIOR_BONE_STRESS_INJURY = "prior_bone_stress_injury"
    LOW_ENERGY_AVAILABILITY = "low_energy_availability"
    MENSTRUAL_IRREGULARITY = "menstrual_irregularity"
    LOW_BONE_DENSITY = "low_bone_density"


class PlanStatus(StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"  # a red flag: no more walking or running until a clinician says so
    CANCELLED = "cancelled"


class SessionStatus(StrEnum):
    PLANNED = "planned"
    CANCELLED = "cancelled"


class RedFlag(StrEnum):
    """Check-in answers that stop the plan and refer the runner (domain.md A5)."""

    PAIN_AT_REST = "pain_at_rest"
    NIGHT_PAIN = "night_pain"
    PAIN_UNLOADING = "pain_unloading"
    LIMP = "limp"
    CANNOT_BEAR_WEIGHT = "cannot_bear_weight"
    PAIN_WORSENING = "pain_worsening"


class Outcome(StrEnum):
    """What a check-in means for the runner's progression (domain.md A5)."""

    COUNT = "count"
    REPEAT = "repeat"
    REGRESS = "regress"
    STOP_AND_REFER = "stop_and_refer"


class Weekday(StrEnum):
    """RFC 5545 two-letter weekday codes, in ISO order (Monday = index 0)."""

    MO = "MO"
    TU = "TU"
    WE = "WE"
    TH = "TH"
    FR = "FR"
    SA = "SA"
    SU = "SU"

    @property
    def iso_index(self) -> int:
        return list(Weekday).index(self)


#: Phase keys whose sessions must never include running (design.md §3).
NO_RUNNING_PHASES = frozenset(
    {
        "non_weight_bearing",
        "walking",
        "surgical_referral",
        "specialist_referral",
        "relative_rest",
        "medical_clearance",
    }
)
#: Phase keys whose sessions must never include walks (design.md §3).
NO_WALKING_PHASES = frozenset({"non_weight_bearing", "surgical_referral", "specialist_referral"})
#: Key the planner reserves for the medical-clearance review and the Triad hold phase.
CLEARANCE_KEY = "medical_clearance"


# --------------------------------------------------------------------------- injury


@dataclass(frozen=True, slots=True)
class Injury:
    """A normalised, internally consistent MRI-based classification (domain.md A1).

    Build it with :func:`planner.domain.injury.classify`, which fills implied
    findings and rejects contradictions; the constructor itself trusts its input.
    """

    site: Site
    type: FractureSide | None = None
    laterality: Laterality | None = None
    mri_grade: int | None = None
    fracture_line: bool = False
    fracture_line_pct: int | None = None
    complete: bool = False
    displaced: bool = False
    hip_effusion: bool = False
    progression_on_imaging: bool = False
    can_bear_weight: bool = True
    grading_system: GradingSystem | None = None

    @property
    def non_union(self) -> bool:
        """Kaeding–Miller grade V: a stress fracture that has not united [R4][R57]."""
        return self.grading_system is GradingSystem.KAEDING_MILLER and self.mri_grade == 5


# --------------------------------------------------------------------------- Triad CRA


class EnergyAvailability(StrEnum):
    """The CRA's "low energy availability ± disordered eating" answer [R28]."""

    ADEQUATE = "adequate"  # no dietary restriction
    SOME_RESTRICTION = "some_restriction"  # some restriction, current or past disordered eating
    EATING_DISORDER = "eating_disorder"  # meets DSM-5 criteria for an eating disorder


class TriadRisk(StrEnum):
    LOW = "low"  # 0–1 points
    MODERATE = "moderate"  # 2–5 points
    HIGH = "high"  # ≥ 6 points


class Clearance(StrEnum):
    """The 2014 Triad Coalition clearance categories [R28]."""

    FULL = "full"
    PROVISIONAL = "provisional_limited"  # provisional or limited clearance
    RESTRICTED = "restricted"  # restricted from training and competition / disqualified


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """Structured answers for the Female Athlete Triad Cumulative Risk Assessment.

    Every answer is optional: ``None`` means not assessed (it scores 0 and is listed).
    """

    energy_availability: EnergyAvailability | None = None
    bmi: float | None = None
    weight_loss_pct_month: float | None = None
    menarche_age: float | None = None
    menses_last_12_months: int | None = None
    bmd_z_score: float | None = None
    prior_bsi_count: int | None = None
    prior_high_risk_bsi: bool | None = None


@dataclass(frozen=True, slots=True)
class TriadFactor:
    """One row of the CRA table: its points and what they were scored from."""

    factor: str
    points: int
    assessed: bool
    finding: str


@dataclass(frozen=True, slots=True)
class TriadAssessment:
    """The scored CRA (``planner.domain.triad.assess``) and what it means for the plan."""

    inputs: RiskAssessment
    factors: tuple[TriadFactor, ...]
    score: int
    risk_level: TriadRisk
    clearance: Clearance
    categorical_restriction: str | None
    not_assessed: tuple[str, ...]
    dxa_indicated: bool
    dxa_reasons: tuple[str, ...]
    referrals: tuple[str, ...]


# --------------------------------------------------------------------------- protocols


@dataclass(frozen=True, slots=True)
class Reference:
    key: str
    citation: str
    url: str | None = None


#: A condition on the planning context, e.g. ``{"fracture_line": (True,)}``: every
#: named fact must take one of the listed values. An empty condition always holds.
Condition = tuple[tuple[str, tuple[object, ...]], ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One block of an interval session: ``walk`` or ``run`` for some minutes."""

    activity: str
    minutes: int


@dataclass(frozen=True, slots=True)
class Level:
    """One rung of a progression: what a session at this level contains."""

    title: str
    duration_min: int | None = None
    steps: tuple[Step, ...] = ()
    repeat: int | None = None
    notes: str = ""
    kind: SessionKind | None = None  # overrides the template's kind for this level


@dataclass(frozen=True, slots=True)
class SessionTemplate:
    """How a phase fills its days with one kind of session.

    ``days`` picks the candidate days (``all``, ``run_days``, ``off_days``);
    ``per_week`` thins them to that many weekdays spread across the week;
    ``at`` (``start`` / ``end``) instead places a single session on the phase's
    first or last day. Levels advance after ``sessions_per_level`` sessions, or
    each calendar week when ``advance`` is ``weekly``; the last level repeats
    ``final_level_sessions`` times when the phase length comes from its programme,
    otherwise until the phase ends.
    """

    key: str
    kind: SessionKind
    levels: tuple[Level, ...]
    days: str = "all"
    per_week: int | None = None
    at: str | None = None
    sessions_per_level: int | None = None
    advance: str = "sessions"
    final_level_sessions: int | None = None
    no_consecutive_days: bool = False
    criteria: tuple[str, ...] = ()
    when: Condition = ()
    #: Upper-body or pool work that keeps the injured leg unloaded (non-weight-bearing):
    #: the only sessions that go on after a stop. Declared in the protocol, never guessed.
    unloaded: bool = False


@dataclass(frozen=True, slots=True)
class DurationRule:
    days: int
    when: Condition = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PhaseTemplate:
    """A protocol stage. ``days`` of ``None`` means the phase lasts as long as its
    programme template (the one with ``final_level_sessions``) needs."""

    key: str
    title: str
    goals: tuple[str, ...]
    advance_criteria: tuple[str, ...]
    guidance: tuple[str, ...]
    sessions: tuple[SessionTemplate, ...]
    days: int | None = None
    duration_rules: tuple[DurationRule, ...] = ()
    range_days: tuple[int, int] | None = None
    evidence: tuple[str, ...] = ()
    #: The phases after this one are laid out only once a clinician records this
    #: phase's gate as met (it must end with a review); until then the plan ends here.
    hold: bool = False


@dataclass(frozen=True, slots=True)
class PainStop:
    """When pain stops the plan and books an urgent review instead of a regression
    (domain.md Part B §7: severe pain, like being unable to bear weight, is urgent).

    ``severe_at_least``: pain (0–10) during, after or the next morning, any session.
    ``protection_phases``: the phases where the leg is protected (non-weight-bearing,
    protected weight bearing); there, next-morning pain of ``unsettled_at_least`` or
    more means it did not settle. ``evidence``: the protocol's reference keys.
    """

    severe_at_least: int
    protection_phases: tuple[str, ...] = ()
    unsettled_at_least: int = 1
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AppliesTo:
    sites: tuple[Site, ...]
    types: tuple[FractureSide, ...]
    triage: tuple[Triage, ...]


@dataclass(frozen=True, slots=True)
class Protocol:
    id: str
    version: str
    title: str
    summary: str
    pathway: Pathway
    applies_to: AppliesTo
    references: tuple[Reference, ...]
    phases: tuple[PhaseTemplate, ...]
    pain_rules: tuple[str, ...] = ()
    pain_stop: PainStop | None = None

    def reference(self, key: str) -> Reference:
        for ref in self.references:
            if ref.key == key:
                return ref
        raise KeyError(key)


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class Athlete:
    reference: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Preferences:
    """How the runner wants sessions laid out; defaults per domain.md A3."""

    run_days: tuple[Weekday, ...] = (Weekday.MO, Weekday.WE, Weekday.FR)
    session_time: str | None = None  # "HH:MM" local wall time, or None for all-day
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """Everything a plan is computed from; equal requests give equal plans."""

    diagnosis_date: date
    injury: Injury
    start_date: date | None = None
    athlete: Athlete = field(default_factory=Athlete)
    risk_factors: tuple[RiskFactor, ...] = ()
    preferences: Preferences = field(default_factory=Preferences)
    risk_assessment: RiskAssessment | None = None
    external_id: str | None = None  # the clinic's own id; carried, never used to plan

    @property
    def effective_start(self) -> date:
        return self.start_date or self.diagnosis_date


@dataclass(frozen=True, slots=True)
class Alert:
    code: str
    severity: Severity
    message: str
    references: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Selection:
    """Why the plan follows its pathway: the triage rule that fired and its reasons."""

    triage: Triage
    rule: int
    reasons: tuple[str, ...]
    #: The scored Triad CRA when the request had a ``risk_assessment``: it decides
    #: whether the pathway's running phases wait for a medical-clearance gate.
    triad: TriadAssessment | None = None

    @property
    def pathway(self) -> Pathway:
        return self.triage.pathway


@dataclass(frozen=True, slots=True)
class Phase:
    key: str
    title: str
    start_date: date
    end_date: date  # inclusive
    goals: tuple[str, ...]
    advance_criteria: tuple[str, ...]
    guidance: tuple[str, ...]
    sequence: int = 0
    modified_at: datetime | None = None
    #: Cancelled when the plan is cancelled or stopped before the phase is over.
    status: SessionStatus = SessionStatus.PLANNED

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    def contains(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date


@dataclass(frozen=True, slots=True)
class Session:
    """A dated session. ``start``/``end`` are aware datetimes for timed sessions and
    ``None`` for all-day ones."""

    uid: str
    key: str  # logical identity inside the plan, e.g. "graded_running/run_walk/4"
    date: date
    phase: str
    kind: SessionKind
    title: str
    start: datetime | None = None
    end: datetime | None = None
    duration_min: int | None = None
    steps: tuple[Step, ...] = ()
    repeat: int | None = None
    level: int | None = None
    notes: str = ""
    criteria: tuple[str, ...] = ()
    sequence: int = 0
    status: SessionStatus = SessionStatus.PLANNED
    modified_at: datetime | None = None  # when this session last changed; None: at creation

    @property
    def template_key(self) -> str:
        """``phase/template``: which template of which phase made this session."""
        return self.key.rsplit("/", 1)[0]

    @property
    def number(self) -> int:
        return int(self.key.rsplit("/", 1)[1])


@dataclass(frozen=True, slots=True)
class TemplateProgress:
    """Where the runner is in a levelled template: the level (0-based), how many
    sessions at it have counted, and (weekly templates) how many weeks held back."""

    template: str  # "phase/template"
    level: int = 0
    counted: int = 0
    offset: int = 0


@dataclass(frozen=True, slots=True)
class GateRecord:
    """A clinician's decision on a phase's exit criteria."""

    phase: str
    met: bool
    on: date
    criteria: tuple[str, ...] = ()
    extend_days: int = 7
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Progress:
    """Everything recorded so far that re-planning needs; empty for a new plan.

    ``horizon``: sessions on or before it are history and are never moved.
    ``frozen_ends``: phases that are over, with the day they ended.
    """

    horizon: date | None = None
    templates: tuple[TemplateProgress, ...] = ()
    gates: tuple[GateRecord, ...] = ()
    frozen_ends: tuple[tuple[str, date], ...] = ()
    rest_until: date | None = None
    last_running: date | None = None
    stopped_on: date | None = None
    cancelled_on: date | None = None
    reported: tuple[str, ...] = ()  # UIDs of sessions already checked in
    #: After a painful walk: no walk on or before this day (the rest day, domain.md A5).
    walk_rest_until: date | None = None

    def template(self, key: str) -> TemplateProgress | None:
        return next((t for t in self.templates if t.template == key), None)

    def met_on(self, phase: str) -> date | None:
        return next((g.on for g in self.gates if g.phase == phase and g.met), None)

    def unmet_gates(self, phase: str) -> tuple[GateRecord, ...]:
        return tuple(g for g in self.gates if g.phase == phase and not g.met)

    def frozen_end(self, phase: str) -> date | None:
        return next((end for key, end in self.frozen_ends if key == phase), None)


@dataclass(frozen=True, slots=True)
class ProtocolRef:
    id: str
    version: str
    title: str
    references: tuple[Reference, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    revision: int
    status: PlanStatus
    created_at: datetime
    updated_at: datetime
    request: PlanRequest
    pathway: Pathway
    selection: Selection
    protocol: ProtocolRef
    phases: tuple[Phase, ...]
    sessions: tuple[Session, ...]
    alerts: tuple[Alert, ...]
    pain_rules: tuple[str, ...] = ()
    progress: Progress = field(default_factory=Progress)

    @property
    def start_date(self) -> date:
        return self.request.effective_start

    @property
    def triad(self) -> TriadAssessment | None:
        return self.selection.triad

    @property
    def end_date(self) -> date:
        return self.phases[-1].end_date

    @property
    def expected_return_to_run_date(self) -> date | None:
        return next(
            (
                s.date
                for s in self.sessions
                if s.kind.is_running and s.status is SessionStatus.PLANNED
            ),
            None,
        )

    def session(self, uid: str) -> Session:
        for session in self.sessions:
            if session.uid == uid:
                return session
        raise KeyError(uid)

    def phase(self, key: str) -> Phase:
        for phase in self.phases:
            if phase.key == key:
                return phase
        raise KeyError(key)
