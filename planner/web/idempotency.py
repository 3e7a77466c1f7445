"""``Idempotency-Key`` on every POST: clinic systems retry on any network error.

The first response to a key (status, body and a few headers) is kept for 24 h and
replayed with ``Idempotent-Replayed: true``; the same key with a different body is a
422; a duplicate that arrives while the first is still running waits for it and gets
its answer, so concurrent duplicates make one plan.
"""

from __future__ import annotations

import hashlib

from flask import Flask, Response, g, request

from planner.service import Claim, ClaimState
from planner.web.common import planner
from planner.web.errors import problem

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
#: How long a duplicate waits for the first request with its key to finish.
WAIT_SECONDS = 10.0

PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "A unique key per logical request (e.g. a UUID). Retrying with the same key "
        "replays the first response for 24 h (`Idempotent-Replayed: true`); the same key "
        "with a different body is a 422."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}


def begin():  # type: ignore[no-untyped-def]
    """``before_request`` (after authentication): claim the key or answer from it."""
    key = request.headers.get(HEADER)
    if request.method != "POST" or key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        return problem(
            400,
            detail=f"{HEADER} must be 1–{MAX_KEY_LENGTH} printable characters.",
            code="invalid_idempotency_key",
        )
    fingerprint = hashlib.sha256(request.get_data(cache=True)).hexdigest()
    claim = planner().claim_idempotency(
        g.api_key.organisation, key, request.path, fingerprint, wait=WAIT_SECONDS
    )
    if claim.state is ClaimState.REPLAY and claim.response is not None:
        replay = Response(claim.response.body, status=claim.response.status)
        for name, value in claim.response.headers.items():
            replay.headers[name] = value
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    if claim.state is ClaimState.MISMATCH:
        return problem(
            422,
            detail=f"This {HEADER} was used with a different request body.",
            code="idempotency_key_reused",
            errors={HEADER: ["Used before with a different request body."]},
        )
    if claim.state is ClaimState.IN_PROGRESS:
        return problem(
            409,
            detail=f"A request with this {HEADER} is still being processed: retry shortly.",
            code="idempotency_in_progress",
        )
    g.idempotency_claim = claim
    return None


def finish(response: Response) -> Response:
    """``after_request``: keep the answer for replays (server errors are not kept)."""
    claim: Claim | None = g.pop("idempotency_claim", None)
    if claim is not None:
        if response.status_code >= 500:
            planner().release_idempotency(claim)
        else:
            planner().complete_idempotency(
                claim,
                status=response.status_code,
                headers=response.headers,
                body=response.get_data(),
            )
    return response


def abandon(_: BaseException | None) -> None:
    """``teardown_request``: a request that died without a response frees its key."""
    claim: Claim | None = g.pop("idempotency_claim", None)
    if claim is not None:
        planner().release_idempotency(claim)


def init_app(app: Flask) -> None:
    app.after_request(finish)
    app.teardown_request(abandon)
