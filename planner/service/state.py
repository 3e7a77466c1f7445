"""A plan's current revision as bytes: the derived cache a write resumes from.

Every write used to replay the plan's whole event log (``make_plan`` and one ``revise``
per event), so a check-in cost more the longer the runner had been checking in. Now each
revision also stores its domain :class:`~planner.domain.model.Plan` as JSON (the
``plans.state`` column, written in the same transaction as the revision itself), and the
next write decodes it instead of replaying.

The event log stays the source of truth; the state is only a cache of what replaying it
gives. :func:`resume` hands back ``None`` — and the caller replays — whenever the blob
cannot be trusted to be exactly that:

* it was written for another shape of the model: the blob carries :data:`FINGERPRINT`, a
  digest of the model's dataclass fields, their types and defaults (and enum members),
  computed from the classes themselves at import, so a change to the model invalidates
  old blobs without anyone remembering to bump a version;
* it belongs to another plan or another revision than the row it was read with (the row's
  ``revision`` and ``updated_at`` are the truth);
* it does not decode (truncated, corrupt, an enum value that no longer exists, ...).

Encoding is done by a `cattrs <https://catt.rs>`_ converter (the orjson preset) with a few
hooks tuned for speed and exactness: enum members are looked up by value, optional and
homogeneous-tuple hooks are resolved once per type, and fields equal to their defaults
are left out. Decoding gives back a plan equal to the one encoded, and the same in every
way a renderer can see: aware datetimes keep their time zone — a ``ZoneInfo`` is written
as RFC 9557 (``2026-11-02T07:00:00-05:00[America/New_York]``, where the offset also picks
the right one of two repeated wall times), ``datetime.UTC`` and fixed offsets as RFC 3339
— and ints, floats and strings keep their exact type.
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
from collections.abc import Callable
from datetime import date, datetime, timezone
from enum import Enum
from typing import Any, Final
from zoneinfo import ZoneInfo

import orjson
from cattrs.preconf.orjson import make_converter

from planner.domain.model import Plan

#: The codec's own version: bump it when this module changes how values are written
#: (the model's shape is covered by the fingerprint without anyone bumping anything).
#: Bumping it is also how to make every plan replay its events once more on its next
#: write, e.g. after a fix to the domain rules that should re-plan existing plans: a
#: resumed plan carries on from its stored revision, as replaying with the code of the
#: day that made it would.
CODEC_VERSION: Final = 1

_NONE_TYPE = type(None)


# ----------------------------------------------------------------------------- fingerprint


def shape(root: type) -> str:
    """A canonical description of ``root``'s dataclass tree: class names, field names,
    field types and defaults, and the members of every enum reached.

    >>> from planner.domain.model import Step
    >>> shape(Step)
    'planner.domain.model.Step(activity:str,minutes:int)'
    """
    described: dict[type, str] = {}

    def describe(tp: Any) -> str:
        if tp is Ellipsis:
            return "..."
        if tp is _NONE_TYPE or tp is None:
            return "None"
        origin = typing.get_origin(tp)
        if origin is not None:
            name = "Union" if origin is types.UnionType else _qualified(origin)
            args = typing.get_args(tp)
            if origin in (typing.Union, types.UnionType):  # order-free: X | None == None | X
                return f"Union[{','.join(sorted(describe(a) for a in args))}]"
            return f"{name}[{','.join(describe(a) for a in args)}]"
        if isinstance(tp, type) and issubclass(tp, Enum):
            members = ",".join(f"{m.name}={m.value!r}" for m in tp)
            return f"{_qualified(tp)}{{{members}}}"
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            name = _qualified(tp)
            if tp not in described:
                described[tp] = name  # a reference cycle names the class only
                hints = typing.get_type_hints(tp)
                parts = []
                for f in dataclasses.fields(tp):
                    part = f"{f.name}:{describe(hints[f.name])}"
                    if f.default is not dataclasses.MISSING:
                        part += f"={f.default!r}"
                    elif f.default_factory is not dataclasses.MISSING:
                        part += f"={f.default_factory()!r}"
                    parts.append(part)
                described[tp] = f"{name}({','.join(parts)})"
                return described[tp]
            return name
        if isinstance(tp, type):
            return _qualified(tp)
        raise TypeError(f"cannot describe {tp!r}")

    return describe(root)


def _qualified(tp: Any) -> str:
    module = getattr(tp, "__module__", "")
    name = getattr(tp, "__qualname__", repr(tp))
    return name if module == "builtins" else f"{module}.{name}"


def fingerprint(root: type = Plan) -> str:
    """The digest a blob must carry to be decoded: codec version and model shape."""
    digest = hashlib.sha256(f"plan-state/{CODEC_VERSION}/{shape(root)}".encode())
    return digest.hexdigest()[:24]


#: What this process writes and accepts.
FINGERPRINT: Final = fingerprint(Plan)


# ----------------------------------------------------------------------------- datetimes


def encode_datetime(value: datetime) -> str:
    """RFC 3339, plus the IANA zone in brackets (RFC 9557) for a ``ZoneInfo`` time.

    >>> encode_datetime(datetime(2026, 11, 2, 7, tzinfo=ZoneInfo("America/New_York")))
    '2026-11-02T07:00:00-05:00[America/New_York]'
    """
    tz = value.tzinfo
    if tz is None:
        return value.isoformat()
    if type(tz) is timezone:  # UTC or a fixed offset; a name of its own would be lost
        if tz.tzname(None) != timezone(tz.utcoffset(None)).tzname(None):
            raise TypeError(f"cannot encode the named fixed offset of {value!r}")
        return value.isoformat()
    if type(tz) is ZoneInfo and tz.key is not None:
        return f"{value.isoformat()}[{tz.key}]"
    raise TypeError(f"cannot encode the time zone of {value!r}")


def decode_datetime(text: str) -> datetime:
    """The inverse of :func:`encode_datetime`: the same wall time, zone and offset.

    >>> decode_datetime("2026-11-01T01:30:00-05:00[America/New_York]").fold
    1
    """
    if not text.endswith("]"):
        return datetime.fromisoformat(text)
    cut = text.index("[")
    fixed = datetime.fromisoformat(text[:cut])  # the exact instant
    zone = ZoneInfo(text[cut + 1 : -1])
    local = fixed.astimezone(zone)  # its wall time there, fold set for a repeated hour
    offset = fixed.utcoffset()
    if local.utcoffset() == offset:  # same instant and offset: same wall time
        return local
    # A wall time that does not exist (skipped by a DST change): keep it as it was.
    for fold in (0, 1):
        local = fixed.replace(tzinfo=zone, fold=fold)
        if local.utcoffset() == offset:
            return local
    raise ValueError(f"{text!r}: the offset does not fit the zone")


# ----------------------------------------------------------------------------- converter


def _passthrough(value: Any, _: Any) -> Any:
    return value


def _enum_hook(cl: type[Enum]) -> Callable[[Any, Any], Enum]:
    members = cl._value2member_map_

    def structure(value: Any, _: Any) -> Enum:
        return members[value]

    return structure


def _is_optional(tp: Any) -> bool:
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return False
    args = typing.get_args(tp)
    return len(args) == 2 and _NONE_TYPE in args


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


_PRIMITIVES = (str, int, float, bool)


def leaf_types(root: type) -> set[type]:
    """Every class a value inside ``root`` can have, dataclasses excluded (walked into).

    >>> from planner.domain.model import Step
    >>> sorted(t.__name__ for t in leaf_types(Step))
    ['int', 'str']
    """
    found: set[type] = set()
    seen: set[type] = set()

    def walk(tp: Any) -> None:
        if tp is Ellipsis or tp is _NONE_TYPE or tp is None:
            return
        if typing.get_origin(tp) is not None:
            for arg in typing.get_args(tp):
                walk(arg)
        elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
            if tp not in seen:
                seen.add(tp)
                hints = typing.get_type_hints(tp)
                for f in dataclasses.fields(tp):
                    walk(hints[f.name])
        elif isinstance(tp, type):
            found.add(tp)
        else:
            raise TypeError(f"cannot encode {tp!r}")

    walk(root)
    return found


def _make_converter(root: type) -> Any:
    converter = make_converter(omit_if_default=True, detailed_validation=False)
    # Values come back exactly as they went in (no int → float coercion, no str() calls).
    # These hooks would also catch subclasses (a StrEnum is a str), so every enum of the
    # model gets its own hook below, and any other subclass of a primitive is refused.
    for primitive in _PRIMITIVES:
        converter.register_structure_hook(primitive, _passthrough)
    converter.register_unstructure_hook(datetime, encode_datetime)
    converter.register_structure_hook(datetime, lambda value, _: decode_datetime(value))
    converter.register_structure_hook(date, lambda value, _: date.fromisoformat(value))
    for leaf in leaf_types(root):
        if issubclass(leaf, Enum):
            converter.register_structure_hook(leaf, _enum_hook(leaf))
        elif leaf not in (*_PRIMITIVES, date, datetime):
            raise TypeError(f"planner.service.state does not know how to encode {leaf!r}")

    def optional_hook(tp: Any) -> Callable[[Any, Any], Any]:
        inner_type = next(a for a in typing.get_args(tp) if a is not _NONE_TYPE)
        inner = converter.get_structure_hook(inner_type)
        if inner is _passthrough:
            return _passthrough

        def structure(value: Any, _: Any) -> Any:
            return None if value is None else inner(value, inner_type)

        return structure

    def tuple_hook(tp: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
        item_type = typing.get_args(tp)[0]
        item = converter.get_structure_hook(item_type)
        if item is _passthrough:
            return lambda value, _: tuple(value)

        def structure(value: Any, _: Any) -> tuple[Any, ...]:
            return tuple([item(v, item_type) for v in value])

        return structure

    converter.register_structure_hook_factory(_is_optional, optional_hook)
    converter.register_structure_hook_factory(_is_homogeneous_tuple, tuple_hook)
    return converter


_CONVERTER = _make_converter(Plan)
_structure_plan = _CONVERTER.get_structure_hook(Plan)
_unstructure_plan = _CONVERTER.get_unstructure_hook(Plan)


# ----------------------------------------------------------------------------- blobs


class UnusableState(ValueError):
    """The blob is not a plan this process can trust (foreign shape or corrupt)."""


def encode(plan: Plan) -> bytes:
    """The plan as a state blob (compact JSON carrying :data:`FINGERPRINT`)."""
    return orjson.dumps({"fingerprint": FINGERPRINT, "plan": _unstructure_plan(plan)})


def decode(blob: bytes) -> Plan:
    """The plan in ``blob``.

    Raises:
        UnusableState: another fingerprint, or the blob does not decode.
    """
    return _decode(_header(blob))


def _header(blob: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(blob)
    except orjson.JSONDecodeError as exc:
        raise UnusableState(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("fingerprint") != FINGERPRINT:
        raise UnusableState("written for another shape of the model")
    plan = document.get("plan")
    if not isinstance(plan, dict):
        raise UnusableState("no plan")
    return plan


def _decode(document: dict[str, Any]) -> Plan:
    try:
        plan = _structure_plan(document, Plan)
    except Exception as exc:  # cattrs, KeyError, ValueError, TypeError …: all mean corrupt
        raise UnusableState(f"does not decode: {exc!r}") from None
    if not isinstance(plan, Plan):
        raise UnusableState("not a plan")
    return plan


def resume(blob: bytes | None, *, plan_id: str, revision: int, updated_at: datetime) -> Plan | None:
    """The plan stored in ``blob`` if it is exactly revision ``revision`` of ``plan_id``,
    last changed at ``updated_at``; ``None`` (replay instead) for anything else.

    The revision is checked before the plan is decoded, so a stale blob costs a parse.
    """
    if blob is None:
        return None
    try:
        document = _header(blob)
        if document.get("id") != plan_id or document.get("revision") != revision:
            return None
        plan = _decode(document)
    except UnusableState:
        return None
    if plan.updated_at != updated_at:
        return None
    return plan


__all__ = [
    "CODEC_VERSION",
    "FINGERPRINT",
    "UnusableState",
    "decode",
    "decode_datetime",
    "encode",
    "encode_datetime",
    "fingerprint",
    "resume",
    "shape",
]
