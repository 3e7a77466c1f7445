"""Per-process caches of the write path: parsed protocol snapshots, recent plans.

Neither is a source of truth and neither can make two processes disagree:

* a protocol snapshot is immutable content, so it is cached under a digest of that
  content — the same bytes always parse to the same protocol, in every process;
* a recently committed plan is cached under its plan id and handed out only for the exact
  ``(revision, updated_at)`` the caller has just read from the database (see
  :class:`RecentPlans`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from planner.catalog import Catalog, protocol_from_document
from planner.domain.errors import UnknownProtocol
from planner.domain.model import Plan, Protocol

#: Distinct protocol snapshots kept parsed (a deployment has a few dozen versions at most).
PROTOCOL_CACHE_SIZE = 64
#: Plans kept decoded per process (a decoded 140-session plan takes ~130 kB, so at most
#: ~4 MB): enough for a plan written several times in a row (a check-in, then a gate …).
RECENT_PLANS_SIZE = 32


def content_digest(document: Mapping[str, Any]) -> bytes:
    """SHA-256 of a JSON document's canonical form (sorted keys)."""
    try:
        canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. an integer beyond 64 bits: slower, same canonical form
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).digest()


class SnapshotProtocols:
    """Parsed protocols by the content of the snapshot they were parsed from.

    Validating a snapshot with its marshmallow schema costs far more than a write's
    other work; the same content always gives the same protocol, so a bounded LRU keyed
    by the content's digest is safe to share by every plan, thread and ``Planner`` of a
    process. A snapshot equal to the catalog's document of that protocol id reuses the
    catalog's already parsed protocol.
    """

    def __init__(self, maxsize: int = PROTOCOL_CACHE_SIZE) -> None:
        self._maxsize = maxsize
        self._parsed: OrderedDict[bytes, Protocol] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, catalog: Catalog, snapshot: Mapping[str, Any], protocol_id: str) -> Protocol:
        """The protocol ``snapshot`` describes (``protocol_id`` names it in errors).

        Raises:
            InvalidProtocol: the snapshot does not validate (nothing is cached then).
        """
        key = content_digest(snapshot)
        with self._lock:
            found = self._parsed.get(key)
            if found is not None:
                self._parsed.move_to_end(key)
                return found
        protocol = _from_catalog(catalog, snapshot, protocol_id)
        if protocol is None:
            protocol = protocol_from_document(dict(snapshot), protocol_id)
        with self._lock:
            self._parsed[key] = protocol
            while len(self._parsed) > self._maxsize:
                self._parsed.popitem(last=False)
        return protocol


def _from_catalog(
    catalog: Catalog, snapshot: Mapping[str, Any], protocol_id: str
) -> Protocol | None:
    try:
        if catalog.document(protocol_id) == snapshot:
            return catalog.get(protocol_id)
    except UnknownProtocol:
        pass
    return None


#: The process's protocols (content-addressed, so shared by every ``Planner``).
SNAPSHOT_PROTOCOLS = SnapshotProtocols()


class RecentPlans:
    """The last committed revision of recently written plans, decoded, per process.

    Why several processes (gunicorn workers, hosts) on one database can never disagree
    because of it: an entry is put only after the transaction that stored that revision
    committed, and :meth:`get` answers only when the caller passes the ``revision`` and
    ``updated_at`` it has *just read from the database* and they equal the entry's. A
    revision number of a plan is written exactly once — the store's conditional
    ``UPDATE … WHERE revision = n - 1`` lets one writer win, and ``plan_revisions`` has
    the primary key ``(plan_id, revision)`` — so the committed plan at ``(id, n)`` is the
    only plan that ever had that key, in any process. ``updated_at`` (the instant of that
    commit) is checked too, so even a database restored from a backup and then written
    differently cannot be confused with what a process remembers. Another process writing
    revision ``n + 1`` makes this entry unreachable (the caller then reads ``n + 1``),
    never wrong; at worst it is a miss and the caller decodes the stored state.

    One entry per plan (the newest put), least recently used evicted first.
    """

    def __init__(self, maxsize: int = RECENT_PLANS_SIZE) -> None:
        self._maxsize = maxsize
        self._plans: OrderedDict[str, Plan] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, plan_id: str, revision: int, updated_at: datetime) -> Plan | None:
        """The plan committed as ``revision`` at ``updated_at``, if this process holds it."""
        with self._lock:
            plan = self._plans.get(plan_id)
            if plan is None or plan.revision != revision or plan.updated_at != updated_at:
                return None
            self._plans.move_to_end(plan_id)
            return plan

    def put(self, plan: Plan) -> None:
        """Remember ``plan``: call only once the revision it is has been committed."""
        if self._maxsize <= 0:
            return
        with self._lock:
            self._plans[plan.id] = plan
            self._plans.move_to_end(plan.id)
            while len(self._plans) > self._maxsize:
                self._plans.popitem(last=False)

    def __len__(self) -> int:
        return len(self._plans)


__all__ = [
    "SNAPSHOT_PROTOCOLS",
    "RecentPlans",
    "SnapshotProtocols",
    "content_digest",
]
