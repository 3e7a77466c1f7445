"""What the use cases refuse, beyond the domain's own errors; each ``code`` maps to one
HTTP status in :mod:`planner.web.errors`."""

from __future__ import annotations

from planner.domain.errors import PlannerError


class PlanNotFound(PlannerError):
    code = "plan_not_found"


class RevisionConflict(PlannerError):
    """The plan changed since the revision the client named (HTTP 409)."""

    code = "revision_conflict"


class PreconditionFailed(PlannerError):
    """``If-Match`` names another version of the plan (HTTP 412)."""

    code = "precondition_failed"


class FeedNotFound(PlannerError):
    code = "feed_not_found"


class WebhookNotFound(PlannerError):
    code = "webhook_not_found"


class DeliveryNotFound(PlannerError):
    code = "delivery_not_found"


class InvalidWebhook(PlannerError):
    """The URL cannot receive webhooks (HTTP 422)."""

    code = "invalid_webhook"


class WebhookDisabled(PlannerError):
    """The receiver answered 410 Gone, so nothing more is sent to it (HTTP 409)."""

    code = "webhook_disabled"


__all__ = [
    "DeliveryNotFound",
    "FeedNotFound",
    "InvalidWebhook",
    "PlanNotFound",
    "PreconditionFailed",
    "RevisionConflict",
    "WebhookDisabled",
    "WebhookNotFound",
]
