"""Text a request may carry: refused at the door when no field could store it.

JSON allows what the stores and renderers cannot keep: a lone UTF-16 surrogate
(``"\\ud800"``) that no UTF-8 encoder writes, a NUL that PostgreSQL text refuses, nesting
deep enough to exhaust the parser, integers longer than Python converts. Found after a
commit they cost a 500 for a write that was kept; found here they are a 4xx problem that
names the field, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import request
from werkzeug.wrappers import Response

from planner.web.errors import problem


def require_storable_input() -> Response | None:
    """``before_request`` hook (after the body's type is checked): 400 for a body the
    JSON parser cannot take, 422 naming every field whose text holds a NUL or a lone
    surrogate. Query parameters are the query schemas' to check (``no_nul``)."""
    errors: dict[str, list[str]] = {}
    if request.is_json and request.content_length:
        try:
            body = request.get_json()  # malformed JSON, too long a number: werkzeug's 400
        except RecursionError:  # which the JSON parser raises past its nesting limit
            return problem(
                400,
                detail="The body is not JSON this service can read: it nests too deep.",
                code="malformed_request",
            )
        errors.update(_unstorable(body, ""))
    if errors:
        return problem(
            422,
            detail="Some text cannot be stored: remove NUL characters and broken Unicode.",
            code="invalid_request",
            errors=errors,
        )
    return None


_NUL_MESSAGE = "Must not contain NUL characters."
_SURROGATE_MESSAGE = "Must be valid Unicode text (it holds a lone surrogate)."


def _unstorable(value: Any, path: str) -> Iterator[tuple[str, list[str]]]:
    if isinstance(value, str):
        message = _text_problem(value)
        if message is not None:
            yield path or "body", [message]
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            message = _text_problem(str(key))
            if message is not None:
                yield where, [message]
            else:
                yield from _unstorable(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable(item, f"{path}.{index}" if path else str(index))


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return _NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_MESSAGE
    return None
