"""Plan → JSON document (design.md §4), shaped by the marshmallow response schema.

The stored document leaves out what can change without a new revision — the feed
settings and the links (a feed token can be rotated) — and serving appends them
(:func:`served_tail`, :func:`splice`), so a read never re-renders the plan.

``PlanSchema`` stays the one definition of the document (and of ``openapi.yaml``),
but ``PlanSchema().dump`` pays marshmallow's generic per-field machinery — a method
call, an accessor and a missing-value check for every field of every session —
about 3 ms for a 140-session plan here. :func:`render` instead runs a dumper
*compiled from the schema* when this module is imported: plain Python that reads
the same attributes in the same order and converts them the way each field type's
``_serialize`` does. A field or schema it does not know how to inline (another
field class, a custom accessor, a dump hook, a ``dump_default``) is left to
marshmallow itself, so a schema change cannot make the two disagree silently, and
``tests/export/test_fast_paths.py`` holds :func:`render` equal to
:func:`render_reference` (the marshmallow dump) over random plans and revisions.

:func:`render_bytes` writes the document with orjson, and falls back to the
standard library (:func:`dumps`) whenever orjson's bytes could differ: a schema
with fields the compiler does not inline, a float that Python spells with an
exponent, a value that is not of its field's plain type.
"""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import json
import threading
from collections.abc import Callable
from typing import Any

import orjson
from marshmallow import Schema, fields, missing, utils
from marshmallow.decorators import POST_DUMP, PRE_DUMP

from planner.domain.model import Plan
from planner.schemas.api import PlanSchema

__all__ = [
    "ORJSON_WRITES_PLANS",
    "compile_dumper",
    "dumps",
    "render",
    "render_bytes",
    "render_reference",
    "served_tail",
    "splice",
]

_PLAN_SCHEMA = PlanSchema()


def render(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON-ready dict, without ``feed`` and ``links``: exactly
    ``PlanSchema().dump(plan)``, about ten times faster."""
    document: dict[str, Any] = _dump_plan(plan)
    return document


def render_reference(plan: Plan) -> dict[str, Any]:
    """``PlanSchema().dump(plan)`` through marshmallow: the oracle for :func:`render`
    (tests and benchmarks only)."""
    document: dict[str, Any] = _PLAN_SCHEMA.dump(plan)
    return document


def render_bytes(plan: Plan) -> bytes:
    """``dumps(render(plan))``: the stored document's bytes, through orjson (about
    ten times faster) whenever it gives the same bytes."""
    if not ORJSON_WRITES_PLANS:
        return dumps(_dump_plan(plan))
    _GUARD.odd = False
    document = _dump_plan(plan)
    if not _GUARD.odd:
        try:
            return orjson.dumps(document, option=_ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits, a surrogate …
            pass
    return dumps(document)


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps(document: dict[str, Any]) -> bytes:
    """Stable bytes: fixed key order from the schema, UTF-8, no ASCII escaping."""
    return _encode(document).encode()


def served_tail(feed: dict[str, Any], links: dict[str, Any]) -> bytes:
    """What serving adds to a stored document, as a JSON object of its own."""
    return dumps({"feed": feed, "links": links})


def splice(stored: bytes, tail: bytes) -> bytes:
    """``stored`` with the members of the object ``tail`` appended."""
    return stored[:-1] + b"," + tail[1:]


# ----------------------------------------------------------------------------- compiler


def compile_dumper(schema: Schema) -> Callable[[Any], Any]:
    """A function equal to ``schema.dump`` (for one object, or a list when the schema
    is ``many``), generated once from the schema's fields."""
    return _Compiler().dumper(schema)


_date_iso = dt.date.isoformat  # what fields.Date/DateTime call for the "iso" format
_datetime_iso = dt.datetime.isoformat
_ENUM_VALUE = inspect.getattr_static(enum.Enum, "value")


class _Guard(threading.local):
    #: Set while dumping when a value might be written differently by orjson.
    odd = False


_GUARD = _Guard()


def _float(value: Any) -> float:
    """``fields.Float``: ``float(value)``; flags what orjson spells differently
    (exponents — ``1e-05`` vs ``1e-5`` — and NaN or infinity)."""
    number = float(value)
    text = repr(number)
    if "e" in text or "n" in text:
        _GUARD.odd = True
    return number


def _odd(value: Any) -> Any:
    """A value that is not of its field's plain type (say, not a bool in a Boolean
    field): passed on unchanged, but the document goes through the stdlib encoder."""
    _GUARD.odd = True
    return value


def _dotted(obj: Any, path: str) -> Any:
    """``utils.get_value`` for a dotted path; a missing value is an AttributeError, so
    the fast dumper falls back to the careful one (which leaves the key out)."""
    value = utils.get_value(obj, path, missing)
    if value is missing:
        raise AttributeError(path)
    return value


def _present(value: Any) -> Any:
    if value is missing:
        raise AttributeError("missing")
    return value


def _plain(schema: Schema) -> bool:
    """Whether ``schema.dump`` is just its fields in order (no hooks, no overrides)."""
    return not (
        schema._hooks[PRE_DUMP]
        or schema._hooks[POST_DUMP]
        or type(schema).get_attribute is not Schema.get_attribute
        or type(schema)._serialize is not Schema._serialize
        or type(schema).dump is not Schema.dump
        or schema.dict_class is not dict
    )


class _Compiler:
    """Writes two Python functions per (nested) schema instance and ``exec``s them.

    The *careful* one is ``Schema._serialize`` unrolled. For ``title = fields.String()``::

        try:
            v = obj.title
        except AttributeError:
            pass
        else:
            out['title'] = v if v.__class__ is str else (None if v is None else _text(v))

    which is what ``Field.serialize`` does for an object without ``__getitem__``
    (``utils.get_value`` → ``getattr(obj, name, missing)``; missing → key left out).
    The *fast* one builds the whole dict as one literal and, should any attribute be
    missing, hands the object to the careful one — and from then on every object of
    that class (``Plan`` has no ``feed`` or ``links``: it always goes there). Objects
    that have ``__getitem__`` (mappings) go to ``schema.dump`` itself, as do fields
    and schemas the compiler does not inline; those make the output :attr:`opaque`
    (orjson is then never used for it).
    """

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "_missing": missing,
            "_get_value": utils.get_value,
            "_text": utils.ensure_text_type,
            "_date_iso": _date_iso,
            "_datetime_iso": _datetime_iso,
            "_float": _float,
            "_odd": _odd,
            "_dotted": _dotted,
            "_present": _present,
        }
        self.done: dict[int, str] = {}
        self.sources: list[str] = []
        self.counter = 0
        #: Whether some value escapes the compiler's plain types (str, int, bool,
        #: None, finite float, lists and dicts of them).
        self.opaque = False

    def fresh(self, prefix: str, value: Any = None) -> str:
        self.counter += 1
        name = f"_{prefix}{self.counter}"
        if value is not None:
            self.namespace[name] = value
        return name

    def dumper(self, schema: Schema) -> Callable[[Any], Any]:
        function = self.schema_function(schema)
        exec("\n\n".join(self.sources), self.namespace)  # noqa: S102 — our own generated code
        dump_one = self.namespace[function]
        if schema.many:
            return lambda objs: None if objs is None else [dump_one(o) for o in objs]
        return dump_one  # type: ignore[no-any-return]

    def schema_function(self, schema: Schema) -> str:
        """The name of the generated function dumping one object with ``schema``."""
        if id(schema) in self.done:
            return self.done[id(schema)]
        schema_name = self.fresh("schema", schema)
        function, careful = f"_dump{self.counter}", f"_careful{self.counter}"
        self.done[id(schema)] = function
        if not _plain(schema):
            self.opaque = True
            self.sources.append(
                f"def {function}(obj):\n    return {schema_name}.dump(obj, many=False)"
            )
            return function
        entries: list[str] = []
        statements: list[str] = []
        for attr_name, field in schema.dump_fields.items():
            key = field.data_key if field.data_key is not None else attr_name
            entry, lines = self.field_code(schema_name, attr_name, key, field)
            entries.append(f"            {key!r}: {entry},")
            statements.extend("    " + line for line in lines)
        slow = self.fresh("slow", set())  # classes whose objects lack some attribute
        self.sources.append(
            "\n".join(
                [
                    f"def {function}(obj):",
                    "    if hasattr(obj, '__getitem__'):",
                    f"        return {schema_name}.dump(obj, many=False)",
                    f"    if obj.__class__ in {slow}:",
                    f"        return {careful}(obj)",
                    "    try:",
                    "        return {",
                    *entries,
                    "        }",
                    "    except AttributeError:",
                    f"        {slow}.add(obj.__class__)",
                    f"        return {careful}(obj)",
                    "",
                    f"def {careful}(obj):",
                    "    out = {}",
                    *statements,
                    "    return out",
                ]
            )
        )
        return function

    def field_code(
        self, schema_name: str, attr_name: str, key: str, field: fields.Field[Any]
    ) -> tuple[str, list[str]]:
        """The field's entry in the fast dict literal, and its careful statements."""
        field_name = self.fresh("field", field)
        kind = type(field)
        if (
            type(field) is fields.Constant
            and kind.serialize is fields.Field.serialize
            and kind._serialize is fields.Constant._serialize
        ):
            if type(field.constant) not in (str, int, bool, type(None)):
                self.opaque = True
            return f"{field_name}.constant", [f"out[{key!r}] = {field_name}.constant"]
        inline = (
            field._CHECK_ATTRIBUTE
            and field.dump_default is missing
            and kind.serialize is fields.Field.serialize
            and kind.get_value is fields.Field.get_value
            and self.value_expression(field, "v") is not None
        )
        if not inline:  # the field does it itself, exactly as Schema._serialize calls it
            self.opaque = True
            call = (
                f"{field_name}.serialize({attr_name!r}, obj, accessor={schema_name}.get_attribute)"
            )
            return f"_present({call})", [
                f"v = {call}",
                "if v is not _missing:",
                f"    out[{key!r}] = v",
            ]
        path = field.attribute if field.attribute is not None else attr_name
        careful_value = self.value_expression(field, "v")
        if "." in path or not path.isidentifier():
            # marshmallow walks a dotted path with get_value (mappings included)
            return self.value_expression(field, f"_dotted(obj, {path!r})") or "", [
                f"v = _get_value(obj, {path!r}, _missing)",
                "if v is not _missing:",
                f"    out[{key!r}] = {careful_value}",
            ]
        return self.value_expression(field, f"obj.{path}") or "", [
            "try:",
            f"    v = obj.{path}",
            "except AttributeError:",
            "    pass",
            "else:",
            f"    out[{key!r}] = {careful_value}",
        ]

    def bind(self, source: str) -> tuple[str, str]:
        """(first use, later uses) of a value: a name as it is, anything else bound
        once with ``:=`` — the first use must be the first thing evaluated."""
        if source.isidentifier():
            return source, source
        name = self.fresh("v")
        return f"({name} := {source})", name

    def value_expression(self, field: fields.Field[Any], source: str) -> str | None:
        """An expression equal to ``field._serialize(<source>, …)``, or ``None`` when
        the field must do it itself. Values outside the plain JSON types call
        ``_odd`` (or ``_float``), which leave them as they are."""
        if type(field) is fields.Boolean:  # Boolean does not override Field._serialize
            first, again = self.bind(source)
            return f"({again} if {first}.__class__ is bool or {again} is None else _odd({again}))"
        if type(field) is fields.Raw:
            first, again = self.bind(source)
            return (
                f"({again} if {first}.__class__ in (str, int, bool) or {again} is None "
                f"else _odd({again}))"
            )
        if type(field) is fields.String:
            first, again = self.bind(source)
            return (
                f"({again} if {first}.__class__ is str "
                f"else (None if {again} is None else _text({again})))"
            )
        if type(field) is fields.Integer and not field.as_string:
            first, again = self.bind(source)
            return (
                f"({again} if {first}.__class__ is int "
                f"else (None if {again} is None else int({again})))"
            )
        if type(field) is fields.Float and not field.as_string:
            first, again = self.bind(source)
            return f"(None if {first} is None else _float({again}))"
        if type(field) is fields.Date and (field.format or "iso") in ("iso", "iso8601"):
            first, again = self.bind(source)
            return f"(None if {first} is None else _date_iso({again}))"
        if type(field) is fields.DateTime and (field.format or "iso") in ("iso", "iso8601"):
            first, again = self.bind(source)
            return f"(None if {first} is None else _datetime_iso({again}))"
        if type(field) is fields.Enum and field.by_value:
            first, again = self.bind(source)
            if type(field.field) is fields.Raw and all(
                type(member.value) is str for member in field.enum
            ):
                inner: str | None = f"{again}._value_"  # what Enum.value returns
                if inspect.getattr_static(field.enum, "value") is not _ENUM_VALUE:
                    inner = f"{again}.value"
            else:
                inner = self.value_expression(field.field, f"{again}.value")
            return None if inner is None else f"(None if {first} is None else {inner})"
        if type(field) is fields.List:
            first, again = self.bind(source)
            each = self.fresh("e")
            item = self.value_expression(field.inner, each)
            if item is None:
                return None
            return f"(None if {first} is None else [{item} for {each} in {again}])"
        if type(field) is fields.Nested:
            schema = field.schema
            if not _plain(schema):
                return None
            function = self.schema_function(schema)
            first, again = self.bind(source)
            if schema.many or field.many:
                each = self.fresh("o")
                return f"(None if {first} is None else [{function}({each}) for {each} in {again}])"
            return f"(None if {first} is None else {function}({again}))"
        return None


def _compile_plan() -> tuple[Callable[[Any], Any], bool]:
    compiler = _Compiler()
    return compiler.dumper(_PLAN_SCHEMA), compiler.opaque


_dump_plan, _opaque_plan = _compile_plan()
#: Whether :func:`render_bytes` may write plans with orjson: not when the compiled
#: dumper hands some field or schema to marshmallow, whose values orjson may spell
#: its own way.
ORJSON_WRITES_PLANS: bool = not _opaque_plan
#: Subclasses of str/int/dict/list, dates and dataclasses make orjson raise (so the
#: stdlib writes them as it always has) instead of writing them its own way.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
