"""API keys as requests present them: who is calling, for which organisation, with which
scopes. Keys are made and revoked at a shell (``planner keys``)."""

from __future__ import annotations

from planner.service.base import ServiceBase
from planner.store import ApiKey

BEARER = "bearer"


class KeyService(ServiceBase):
    def authenticate(self, authorization: str | None) -> ApiKey | None:
        """The active key an ``Authorization: Bearer <key>`` header names, else ``None``:
        the one definition of who is let in, for the app and its WSGI fast path alike."""
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != BEARER or not secret.strip():
            return None
        return self.store.authenticate(secret.strip())


__all__ = ["KeyService"]
