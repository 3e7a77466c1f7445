"""Protocol files: the shipped ones load; broken ones fail naming the file and the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from planner.catalog import CatalogErrors, load_catalog, load_protocol_file
from planner.domain import InvalidProtocol, Pathway, Triage, UnknownProtocol
from planner.domain.selection import select_protocol, triage
from tests.builders import CONSERVATIVE_ID, CONSERVATIVE_PHASES, SURGICAL_ID, injury, plan

CONSERVATIVE_FILE = f"{CONSERVATIVE_ID}.toml"
#: Every shipped protocol, in id order (the catalog's order).
SHIPPED_IDS = [
    "bone-stress-emergency-care",
    CONSERVATIVE_ID,
    SURGICAL_ID,
    "high-risk-bsi-specialist-referral",
    "low-risk-bsi-conservative",
]
#: The version of each femoral-neck file (bumped when the file changes).
VERSIONS = {CONSERVATIVE_ID: "1.2.0", SURGICAL_ID: "1.1.0"}
SURGICAL_FILE = f"{SURGICAL_ID}.toml"

#: The walking phase's walk template, made into a (otherwise valid) running template.
WALK_TEMPLATE = 'key = "walk"\n  kind = "walk"\n  days = "all"\n'
RUNNING_TEMPLATE = (
    'key = "walk"\n  kind = "run_walk"\n  days = "run_days"\n  no_consecutive_days = true\n'
)


def _copy(
    source_dir: Path,
    target_dir: Path,
    name: str,
    edits: dict[str, str] | None = None,
    *,
    as_name: str | None = None,
) -> Path:
    """Copy a shipped protocol file into ``target_dir``, replacing each text once."""
    text = (source_dir / name).read_text(encoding="utf-8")
    for old, new in (edits or {}).items():
        assert text.count(old) >= 1, f"fixture text not found: {old!r}"
        text = text.replace(old, new, 1)
    target = target_dir / (as_name or name)
    target.write_text(text, encoding="utf-8")
    return target


def _refusal(path: Path) -> InvalidProtocol:
    with pytest.raises(InvalidProtocol) as caught:
        load_protocol_file(path)
    assert path.name in str(caught.value), "the message must name the file"
    assert caught.value.code == "invalid_protocol"
    return caught.value


# ------------------------------------------------------------------ shipped files


def test_both_shipped_protocols_load(protocols_dir: Path) -> None:
    catalog = load_catalog()
    assert [p.id for p in catalog] == SHIPPED_IDS
    assert sorted(p.name for p in protocols_dir.glob("*.toml")) == [
        f"{protocol_id}.toml" for protocol_id in SHIPPED_IDS
    ]
    conservative, surgical = catalog.get(CONSERVATIVE_ID), catalog.get(SURGICAL_ID)
    assert conservative.pathway is Pathway.CONSERVATIVE
    assert tuple(p.key for p in conservative.phases) == CONSERVATIVE_PHASES
    assert conservative.applies_to.triage == (Triage.CONSERVATIVE,)
    assert surgical.pathway is Pathway.SURGICAL_REFERRAL
    assert tuple(p.key for p in surgical.phases) == ("surgical_referral",)
    assert set(surgical.applies_to.triage) == {
        Triage.EMERGENCY_CARE,
        Triage.URGENT_SURGICAL_REFERRAL,
    }


@pytest.mark.parametrize("name", [CONSERVATIVE_FILE, SURGICAL_FILE])
def test_shipped_protocol_file_is_valid_and_named_by_its_id(protocols_dir: Path, name: str) -> None:
    protocol = load_protocol_file(protocols_dir / name)
    assert f"{protocol.id}.toml" == name
    assert protocol.version == VERSIONS[protocol.id]
    assert protocol.references and protocol.pain_rules
    for phase in protocol.phases:
        assert {protocol.reference(key).key for key in phase.evidence} == set(phase.evidence)


def test_shipped_protocols_cite_only_urls_with_a_scheme() -> None:
    for protocol in load_catalog():
        for ref in protocol.references:
            assert ref.url is None or ref.url.startswith(("http://", "https://"))


def test_unknown_protocol_id_is_a_clear_error() -> None:
    with pytest.raises(UnknownProtocol):
        load_catalog().get("no-such-protocol")


# ------------------------------------------------------------------ broken copies


def test_non_semantic_version_is_refused(protocols_dir: Path, tmp_path: Path) -> None:
    path = _copy(
        protocols_dir, tmp_path, CONSERVATIVE_FILE, {'version = "1.2.0"': 'version = "1.0"'}
    )
    refusal = _refusal(path)
    assert list(refusal.errors) == ["version"]
    assert "semantic version" in refusal.detail


def test_unknown_session_kind_is_refused(protocols_dir: Path, tmp_path: Path) -> None:
    path = _copy(
        protocols_dir,
        tmp_path,
        CONSERVATIVE_FILE,
        {'kind = "cross_training"': 'kind = "yoga"'},
    )
    assert list(_refusal(path).errors) == ["phases.0.sessions.0.kind"]


def test_running_in_the_walking_phase_is_refused(protocols_dir: Path, tmp_path: Path) -> None:
    path = _copy(protocols_dir, tmp_path, CONSERVATIVE_FILE, {WALK_TEMPLATE: RUNNING_TEMPLATE})
    refusal = _refusal(path)
    assert list(refusal.errors) == ["phases.2.sessions.0.kind"]
    assert "walking" in refusal.detail


def test_walk_in_the_surgical_referral_phase_is_refused(
    protocols_dir: Path, tmp_path: Path
) -> None:
    path = _copy(
        protocols_dir,
        tmp_path,
        SURGICAL_FILE,
        {'key = "follow_up"\n  kind = "review"': 'key = "follow_up"\n  kind = "walk"'},
    )
    assert "phases.0.sessions.2.kind" in _refusal(path).errors


def test_running_off_the_run_days_is_refused(protocols_dir: Path, tmp_path: Path) -> None:
    path = _copy(
        protocols_dir,
        tmp_path,
        CONSERVATIVE_FILE,
        {'kind = "run_walk"\n  days = "run_days"': 'kind = "run_walk"\n  days = "all"'},
    )
    assert list(_refusal(path).errors) == ["phases.3.sessions.0.days"]


def test_evidence_citing_a_missing_reference_is_refused(
    protocols_dir: Path, tmp_path: Path
) -> None:
    path = _copy(
        protocols_dir,
        tmp_path,
        CONSERVATIVE_FILE,
        {'evidence = ["R20", "R46", "R47", "R48", "R16",': 'evidence = ["R99", "R20",'},
    )
    refusal = _refusal(path)
    assert list(refusal.errors) == ["phases.0.evidence"]
    assert "R99" in refusal.detail


def test_file_name_must_equal_the_protocol_id(protocols_dir: Path, tmp_path: Path) -> None:
    path = _copy(protocols_dir, tmp_path, CONSERVATIVE_FILE, as_name="renamed.toml")
    refusal = _refusal(path)
    assert list(refusal.errors) == ["id"]
    assert CONSERVATIVE_ID in refusal.detail


def test_toml_syntax_error_is_refused(protocols_dir: Path, tmp_path: Path) -> None:
    path = _copy(
        protocols_dir, tmp_path, CONSERVATIVE_FILE, {'title = "Femoral': "title = Femoral"}
    )
    refusal = _refusal(path)
    assert list(refusal.errors) == ["_file"]
    assert "TOML" in refusal.detail


def test_unknown_condition_fact_is_refused(protocols_dir: Path, tmp_path: Path) -> None:
    path = _copy(
        protocols_dir,
        tmp_path,
        CONSERVATIVE_FILE,
        {"when = { fracture_line = true }": 'when = { moon_phase = "full" }'},
    )
    refusal = _refusal(path)
    assert list(refusal.errors) == ["phases.0.sessions.2.when"]
    assert "moon_phase" in refusal.detail


@pytest.mark.parametrize(
    ("name", "edit", "field"),
    [
        pytest.param(
            CONSERVATIVE_FILE,
            {"when = { fracture_line = true }": 'when = { fracture_line = "true" }'},
            "phases.0.sessions.2.when",
            id="string-for-boolean",
        ),
        pytest.param(
            SURGICAL_FILE,
            {'when = { triage = "emergency_care" }': 'when = { triage = "emergency" }'},
            "phases.0.sessions.0.when",
            id="misspelt-triage",
        ),
        pytest.param(
            CONSERVATIVE_FILE,
            {"when = { fracture_line = false }": "when = { mri_grade = [1, 6] }"},
            "phases.0.duration_rules.3.when",
            id="impossible-grade",
        ),
    ],
)
def test_condition_that_could_never_hold_is_refused(
    protocols_dir: Path, tmp_path: Path, name: str, edit: dict[str, str], field: str
) -> None:
    refusal = _refusal(_copy(protocols_dir, tmp_path, name, edit))
    assert list(refusal.errors) == [field]
    assert "not a possible value" in refusal.detail


def test_unknown_condition_fact_in_a_duration_rule_is_refused(
    protocols_dir: Path, tmp_path: Path
) -> None:
    path = _copy(
        protocols_dir,
        tmp_path,
        CONSERVATIVE_FILE,
        {"when = { fracture_line = false }\n  days = 28": 'when = { sex = "f" }\n  days = 28'},
    )
    assert list(_refusal(path).errors) == ["phases.0.duration_rules.3.when"]


def test_unknown_field_is_refused(protocols_dir: Path, tmp_path: Path) -> None:
    path = _copy(
        protocols_dir,
        tmp_path,
        CONSERVATIVE_FILE,
        {'pathway = "conservative"': 'pathway = "conservative"\ncolour = "red"'},
    )
    assert list(_refusal(path).errors) == ["colour"]


def test_default_length_outside_its_evidence_range_is_refused(
    protocols_dir: Path, tmp_path: Path
) -> None:
    path = _copy(protocols_dir, tmp_path, CONSERVATIVE_FILE, {"days = 42": "days = 70"})
    assert list(_refusal(path).errors) == ["phases.0.days"]


def test_duration_rule_outside_its_evidence_range_is_refused(
    protocols_dir: Path, tmp_path: Path
) -> None:
    path = _copy(protocols_dir, tmp_path, CONSERVATIVE_FILE, {"days = 28": "days = 14"})
    assert list(_refusal(path).errors) == ["phases.0.duration_rules.3.days"]


def test_triage_outcome_of_another_pathway_is_refused(protocols_dir: Path, tmp_path: Path) -> None:
    path = _copy(
        protocols_dir,
        tmp_path,
        CONSERVATIVE_FILE,
        {'triage = ["conservative"]': 'triage = ["conservative", "emergency_care"]'},
    )
    assert list(_refusal(path).errors) == ["applies_to"]


def test_every_error_names_its_field_path(protocols_dir: Path, tmp_path: Path) -> None:
    path = _copy(
        protocols_dir,
        tmp_path,
        CONSERVATIVE_FILE,
        {'version = "1.2.0"': 'version = "one"', 'kind = "cross_training"': 'kind = "yoga"'},
    )
    refusal = _refusal(path)
    assert set(refusal.errors) == {"version", "phases.0.sessions.0.kind"}
    assert "version:" in refusal.detail and "phases.0.sessions.0.kind:" in refusal.detail


# ------------------------------------------------------------------ extra directories


def test_extra_directory_adds_a_valid_protocol(protocols_dir: Path, tmp_path: Path) -> None:
    _copy(
        protocols_dir,
        tmp_path,
        CONSERVATIVE_FILE,
        {f'id = "{CONSERVATIVE_ID}"': 'id = "clinic-femoral-neck"'},
        as_name="clinic-femoral-neck.toml",
    )
    catalog = load_catalog(extra_dirs=[tmp_path])
    assert [p.id for p in catalog] == sorted([*SHIPPED_IDS, "clinic-femoral-neck"])
    assert catalog.get("clinic-femoral-neck").pathway is Pathway.CONSERVATIVE


def test_extra_directory_may_be_given_as_a_string(protocols_dir: Path, tmp_path: Path) -> None:
    _copy(
        protocols_dir,
        tmp_path,
        SURGICAL_FILE,
        {f'id = "{SURGICAL_ID}"': 'id = "zz-referral"'},
        as_name="zz-referral.toml",
    )
    assert len(load_catalog(extra_dirs=[str(tmp_path)])) == len(SHIPPED_IDS) + 1


def test_duplicate_protocol_id_is_refused(protocols_dir: Path, tmp_path: Path) -> None:
    shutil.copy(protocols_dir / SURGICAL_FILE, tmp_path / SURGICAL_FILE)
    with pytest.raises(CatalogErrors) as caught:
        load_catalog(extra_dirs=[tmp_path])
    assert len(caught.value.problems) == 1
    assert "duplicate protocol id" in caught.value.detail
    assert SURGICAL_ID in caught.value.detail


def test_every_broken_extra_file_is_reported(protocols_dir: Path, tmp_path: Path) -> None:
    _copy(protocols_dir, tmp_path, CONSERVATIVE_FILE, as_name="one.toml")
    _copy(protocols_dir, tmp_path, SURGICAL_FILE, as_name="two.toml")
    with pytest.raises(CatalogErrors) as caught:
        load_catalog(extra_dirs=[tmp_path])
    assert len(caught.value.problems) == 2
    assert "one.toml" in caught.value.detail and "two.toml" in caught.value.detail


def test_missing_extra_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidProtocol):
        load_catalog(extra_dirs=[tmp_path / "missing"])


def test_lowest_protocol_id_wins_when_several_match(protocols_dir: Path, tmp_path: Path) -> None:
    _copy(
        protocols_dir,
        tmp_path,
        CONSERVATIVE_FILE,
        {f'id = "{CONSERVATIVE_ID}"': 'id = "a-clinic-protocol"'},
        as_name="a-clinic-protocol.toml",
    )
    catalog = load_catalog(extra_dirs=[tmp_path])
    found = injury()
    selection, _ = triage(found)
    chosen = select_protocol(found, selection, reversed(list(catalog)))
    assert chosen.id == "a-clinic-protocol"
    assert plan(injury_=found, catalog=catalog).protocol.id == "a-clinic-protocol"


# ------------------------------------------------------------------ pain stop, unloaded sessions


def test_every_shipped_protocol_says_when_pain_stops_the_plan() -> None:
    for protocol in load_catalog():
        stop = protocol.pain_stop
        assert stop is not None, protocol.id
        assert stop.evidence and set(stop.evidence) <= {r.key for r in protocol.references}
        assert set(stop.protection_phases) <= {p.key for p in protocol.phases}


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        pytest.param(
            {'evidence = ["R1", "R20", "R41", "R46"]': 'evidence = ["R99"]'},
            "pain_stop.evidence",
            id="uncited",
        ),
        pytest.param(
            {"severe_at_least = 7": "severe_at_least = 2"},
            "pain_stop.severe_at_least",
            id="too-low",
        ),
        pytest.param(
            {
                'protection_phases = ["non_weight_bearing", "protected_weight_bearing"]': (
                    'protection_phases = ["bed_rest"]'
                )
            },
            "pain_stop.protection_phases",
            id="unknown-phase",
        ),
        pytest.param(
            {
                'key = "strength"\n  kind = "strength"': (
                    'key = "strength"\n  kind = "strength"\n  unloaded = true'
                )
            },
            "phases.0.sessions.1.unloaded",
            id="unloaded-strength",
        ),
    ],
)
def test_bad_pain_stop_and_unloaded_fields_are_refused(
    protocols_dir: Path, tmp_path: Path, edit: dict[str, str], field: str
) -> None:
    refusal = _refusal(_copy(protocols_dir, tmp_path, CONSERVATIVE_FILE, edit))
    assert list(refusal.errors) == [field]


def test_unloaded_is_declared_not_guessed() -> None:
    protocol = load_catalog().get(CONSERVATIVE_ID)
    unloaded = {
        (phase.key, t.key) for phase in protocol.phases for t in phase.sessions if t.unloaded
    }
    assert unloaded == {
        ("non_weight_bearing", "cross_training"),
        ("protected_weight_bearing", "cross_training"),
    }
