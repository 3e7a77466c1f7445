"""Texts shared by the calendar feed, the FHIR resources and the runner's page.

One definition of the privacy rule — a feed or page that is not ``full`` never names
the diagnosis (design.md §5) — and of how intervals and bullet lists are spelled, so
the three outputs cannot drift apart. Pure functions of their arguments: no Flask,
no clock, and the same input always gives the same text (stored bytes stay valid).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from planner.domain.model import Step

__all__ = [
    "DIAGNOSIS_WORDS",
    "bullet_lines",
    "clean",
    "clean_texts",
    "keep",
    "names_diagnosis",
    "safe_title",
    "sentences",
    "spell_steps",
    "strip_naming_parentheses",
]

#: Words that would reveal the diagnosis on a lock screen or a synced server.
#: Matched case-insensitively as substrings, so "fracture-line" and "Stress" count.
DIAGNOSIS_WORDS: tuple[str, ...] = (
    "femoral",
    "fracture",
    "stress",
    "neck",
    "injury",
    # the bones of the other sites: naming one names the diagnosis too
    "femur",
    "tibia",
    "fibula",
    "metatars",
    "calcane",
    "pubic",
    "ramus",
    "navicular",
    "malleol",
    "sesamoid",
    "patell",
    "talus",
)
_DIAGNOSIS = re.compile("|".join(map(re.escape, DIAGNOSIS_WORDS)), re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PARENTHESIS = re.compile(r"\s*\([^()]*\)")


# --------------------------------------------------------------------------- privacy


def names_diagnosis(text: str) -> bool:
    """Whether the text contains one of :data:`DIAGNOSIS_WORDS`."""
    return _DIAGNOSIS.search(text) is not None


def sentences(text: str) -> list[str]:
    """The text's sentences, split after ``.``, ``!`` or ``?``; empty ones dropped."""
    return [part for part in _SENTENCE_END.split(text.strip()) if part]


def strip_naming_parentheses(sentence: str) -> str:
    """The sentence without the parentheses that name the diagnosis, so its point
    survives ("No progression on imaging (… fracture line …)")."""
    if not names_diagnosis(sentence):
        return sentence
    return _PARENTHESIS.sub(lambda m: "" if names_diagnosis(m.group()) else m.group(), sentence)


def clean(texts: Iterable[str]) -> list[str]:
    """The texts with every sentence that names the diagnosis left out. A
    parenthesis that names it is cut first, so "No progression on imaging (… fracture
    line …)" keeps its point; a text left empty (or empty to begin with) is dropped."""
    kept: list[str] = []
    for text in texts:
        if not text:
            continue
        parts = [strip_naming_parentheses(part) for part in sentences(text)]
        cleaned = " ".join(part for part in parts if part and not names_diagnosis(part))
        if cleaned:
            kept.append(cleaned)
    return kept


def keep(texts: Iterable[str]) -> list[str]:
    """Full detail: every non-empty text as written (the plan opted in to naming the
    diagnosis)."""
    return [text for text in texts if text]


def clean_texts(texts: Iterable[str], *, full: bool) -> list[str]:
    """Protocol texts fit for a plan's privacy setting: :func:`keep` when ``full``,
    otherwise :func:`clean`."""
    return keep(texts) if full else clean(texts)


@lru_cache(maxsize=1024)
def safe_title(title: str, fallback: str, *, full: bool = False) -> str:
    """The title, or ``fallback`` when nothing of it is left to show. Cached: a plan
    repeats a few titles many times, and the calendar asks for each per event."""
    cleaned = keep([title]) if full else clean([title])
    return cleaned[0] if cleaned else fallback


# --------------------------------------------------------------------------- layout


def spell_steps(steps: Sequence[Step], repeat: int | None, *, brief: bool = False) -> str:
    """Interval steps in words, so a session can be done from its text alone.

    The calendar and the page say "Walk 5 min, then run 1 min — repeat 5 times
    (30 min in all)."; FHIR resources (``brief``) keep their shorter wording, "Walk 5
    min, then run 1 min; repeat 5 times (30 min).", so served documents do not move.
    """
    text = ", then ".join(f"{step.activity.replace('_', ' ')} {step.minutes} min" for step in steps)
    text = text[:1].upper() + text[1:]
    rounds = repeat if repeat and repeat > 1 else 1
    total = sum(step.minutes for step in steps) * rounds
    in_all = "" if brief else " in all"
    if rounds > 1:
        return f"{text}{'; ' if brief else ' — '}repeat {rounds} times ({total} min{in_all})."
    if len(steps) > 1:
        return f"{text} ({total} min{in_all})."
    return f"{text}."


def bullet_lines(heading: str, items: Sequence[str]) -> list[str]:
    """``heading`` then one ``- item`` line per item; nothing at all without items,
    so an empty section leaves no stray heading."""
    return [heading, *(f"- {item}" for item in items)] if items else []
