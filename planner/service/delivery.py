"""Webhook delivery: how a message is signed and sent, and the workers that send them.

No Flask here. Which events a write announces is :mod:`planner.service.webhooks`. Events
reach receivers through a transactional outbox: the service writes one
``webhook_outbox`` row per event and subscribed webhook *in the transaction of the change it
announces* (``Store.add_plan(..., outbox=...)``/``Store.update_plan(..., outbox=...)``), and a
:class:`Deliverer` — ``planner worker``, or a thread of ``planner serve`` on the embedded
SQLite database — sends them. Nothing is lost on a crash or restart: a row stays in the
database until it is delivered or given up, so delivery is *at least once* and receivers
should de-duplicate on ``webhook-id``.

Messages follow the Standard Webhooks specification (https://www.standardwebhooks.com/):
a JSON body ``{"type", "timestamp", "data"}``, and the headers ``webhook-id`` (the outbox
row's id, the same on every retry), ``webhook-timestamp`` (Unix seconds of the attempt) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, one per
active secret, space-separated). Failed attempts are retried with exponential backoff and
jitter (30 s doubling, at most 1 h apart) for 24 hours, then given up.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import random as _random
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from planner import __version__
from planner.clock import Clock, now
from planner.store import IDEMPOTENCY_TTL, ClaimedDelivery, Store

log = logging.getLogger(__name__)

#: Seconds to wait for a receiver (per connect/read, as urllib applies it).
TIMEOUT = 5.0
#: The first retry waits this long; each further one twice as long as the one before ...
FIRST_RETRY = timedelta(seconds=30)
#: ... but never longer than this.
MAX_RETRY = timedelta(hours=1)
#: Retries stop this long after the event (or after a manual replay).
RETRY_WINDOW = timedelta(hours=24)
#: How long a worker holds a claimed row. Far longer than one attempt can take, so a row is
#: only taken by another worker when its holder has died.
LEASE = timedelta(seconds=60)
#: Delivered and given-up rows are kept this long for ``GET .../deliveries``.
OUTBOX_RETENTION = timedelta(days=30)
#: How much of a receiver's answer is read (and thrown away).
_MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = f"stride-back-webhooks/{__version__}"

__all__ = [
    "Attempt",
    "BackgroundDelivery",
    "Deliverer",
    "InvalidWebhookUrl",
    "UnresolvableHost",
    "allow_private_from_env",
    "backoff",
    "check_url",
    "message_body",
    "post",
    "receiver_address",
    "sign",
    "signature_header",
]


# ----------------------------------------------------------------------------- URLs


class InvalidWebhookUrl(ValueError):
    """The URL cannot be a webhook receiver (scheme, syntax, or a private address)."""


class UnresolvableHost(InvalidWebhookUrl):
    """The receiver's host name does not resolve (now): worth retrying, unlike a refusal."""


Resolver = Callable[..., Sequence[tuple[Any, ...]]]

#: IPv6 ranges that carry an IPv4 address in their last 32 bits: the NAT64 well-known
#: prefix (RFC 6052), IPv4-compatible (RFC 4291, deprecated) and IPv4-translated
#: (RFC 2765) addresses. 6to4 (RFC 3056) embeds it elsewhere; ``ipaddress`` decodes it.
_EMBEDS_IPV4_AT_END = tuple(
    ipaddress.IPv6Network(net) for net in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96")
)
#: Local-use NAT64 (RFC 8215), where the IPv4 part's position varies: never public.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def check_url(
    url: str, *, allow_private: bool = False, resolve: Resolver = socket.getaddrinfo
) -> str:
    """Return ``url`` if it may receive webhooks, else raise :class:`InvalidWebhookUrl`.

    Only ``http`` and ``https`` with a host and no credentials. Unless ``allow_private``,
    the host must resolve to public addresses only: loopback, private, link-local (cloud
    metadata), shared, reserved and multicast addresses are refused — also when written
    inside an IPv6 address (NAT64, 6to4, IPv4-compatible or -translated forms) — so that
    webhooks cannot be aimed at the service's own network (server-side request forgery).
    The deliverer checks again before every attempt and connects to the address it
    checked (:func:`receiver_address`), since DNS answers can change.

    >>> check_url("ftp://example.com/")
    Traceback (most recent call last):
    ...
    planner.service.delivery.InvalidWebhookUrl: Use an http:// or https:// URL.
    >>> check_url("http://127.0.0.1:9000/hook", allow_private=True)
    'http://127.0.0.1:9000/hook'
    >>> check_url("http://[64:ff9b::a9fe:a9fe]/")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    planner.service.delivery.InvalidWebhookUrl: The host '64:ff9b::a9fe:a9fe' is a private, ...
    """
    host, port = _host_and_port(url)
    if not allow_private:
        _public_addresses(host, port, resolve)
    return url


def receiver_address(
    url: str, *, allow_private: bool = False, resolve: Resolver = socket.getaddrinfo
) -> str:
    """The one address a delivery to ``url`` connects to, checked as :func:`check_url`
    checks it: resolving once and connecting to what was checked leaves no second DNS
    answer (a rebinding) to reach an internal host.

    Raises:
        InvalidWebhookUrl: refused (:class:`UnresolvableHost`: the host does not resolve).
    """
    host, port = _host_and_port(url)
    if allow_private:
        return _addresses(host, port, resolve)[0]
    return _public_addresses(host, port, resolve)[0]


def _host_and_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"Not a valid URL: {exc}.") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl("Use an http:// or https:// URL.")
    host = parts.hostname
    if not host:
        raise InvalidWebhookUrl("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("The URL must not contain credentials.")
    if any(ch.isspace() for ch in url):
        raise InvalidWebhookUrl("The URL must not contain spaces.")
    return host, port or (443 if parts.scheme == "https" else 80)


def _public_addresses(host: str, port: int, resolve: Resolver) -> list[str]:
    addresses = _addresses(host, port, resolve)
    if not all(_is_public(address) for address in addresses):
        raise InvalidWebhookUrl(
            f"The host {host!r} is a private, loopback or otherwise internal address."
        )
    return addresses


def _addresses(host: str, port: int, resolve: Resolver) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnresolvableHost(f"The host {host!r} cannot be resolved.") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise UnresolvableHost(f"The host {host!r} cannot be resolved.")
    return addresses


def _is_public(address: str) -> bool:
    """Whether ``address`` — and any IPv4 address written inside it — is on the public
    internet (``ip.is_global`` alone misses the IPv6 forms that embed an IPv4 one)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local or ip in _LOCAL_NAT64:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return _is_public(str(embedded))
    return ip.is_global and not ip.is_multicast


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in _EMBEDS_IPV4_AT_END) and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


# ----------------------------------------------------------------------------- signing


def _key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (a bare base64 secret works too)."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc


def _seconds(timestamp: int | datetime) -> int:
    return int(timestamp.timestamp()) if isinstance(timestamp, datetime) else int(timestamp)


def sign(secret: str, msg_id: str, timestamp: int | datetime, body: bytes | str) -> str:
    """The Standard Webhooks signature ``v1,<base64>`` of one message.

    The signed content is ``{msg_id}.{timestamp}.{body}``, the HMAC key the bytes of the
    secret (base64 after ``whsec_``). The specification's test vector:

    >>> sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
    ...      1614265330, '{"test": 2432232314}')
    'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
    """
    if "." in msg_id:
        raise ValueError("a message id must not contain '.'")
    raw = body.encode("utf-8") if isinstance(body, str) else body
    content = f"{msg_id}.{_seconds(timestamp)}.".encode() + raw
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(
    secrets: Iterable[str], msg_id: str, timestamp: int | datetime, body: bytes | str
) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated
    (the current secret first, then a rotated-out one that is still valid)."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def message_body(event_type: str, occurred_at: datetime, payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): ``{"type", "timestamp", "data"}``, minified.

    >>> message_body("plan.created", datetime(2026, 11, 20, 9, 30, tzinfo=UTC), {"plan_id": "p"})
    b'{"type":"plan.created","timestamp":"2026-11-20T09:30:00Z","data":{"plan_id":"p"}}'
    """
    document = {"type": event_type, "timestamp": _iso(occurred_at), "data": dict(payload)}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# ----------------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST gave: the HTTP status (``None``: no answer) and why it failed."""

    status: int | None
    error: str | None = None
    retry_after: timedelta | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Sender(Protocol):
    """Sends one message; ``address``: the checked IP address to connect to (``None``:
    resolve the URL's host)."""

    def __call__(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
        address: str | None = None,
    ) -> Attempt: ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failed attempt (Standard Webhooks): the URL should be updated."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


def _pinned(connection: type[http.client.HTTPConnection], address: str) -> Any:
    """``connection`` connecting to ``address`` whatever its host resolves to now; TLS
    still verifies the certificate for (and sends SNI of) the URL's host name."""

    def create_connection(where: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        return socket.create_connection((address, where[1]), *args, **kwargs)

    class Pinned(connection):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = create_connection  # what connect() opens the socket with

    return Pinned


class _PinnedHTTP(urllib.request.HTTPHandler):
    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_pinned(http.client.HTTPConnection, self.address), req)


class _PinnedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_pinned(http.client.HTTPSConnection, self.address), req)


def _opener(address: str | None) -> urllib.request.OpenerDirector:
    if address is None:
        return urllib.request.build_opener(_NoRedirects)
    return urllib.request.build_opener(_NoRedirects, _PinnedHTTP(address), _PinnedHTTPS(address))


def _retry_after(value: str | None) -> timedelta | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - datetime.now(UTC), timedelta(0))


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    address: str | None = None,
) -> Attempt:
    """POST ``body`` with urllib (standard library), to ``address`` when given; never
    raises for network trouble."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _opener(address).open(request, timeout=timeout) as response:
            response.read(_MAX_RESPONSE_BYTES)
            return Attempt(response.status)
    except urllib.error.HTTPError as exc:
        try:
            status = exc.code
            return Attempt(
                status,
                f"HTTP {status}",
                _retry_after(exc.headers.get("Retry-After") if exc.headers else None),
            )
        finally:
            exc.close()
    except urllib.error.URLError as exc:
        return Attempt(None, f"{type(exc.reason).__name__}: {exc.reason}")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def backoff(attempts: int, random: Callable[[], float] = _random.random) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt.

    30 s, 1 min, 2 min, ... doubling up to 1 h, each shortened by up to a quarter at
    random (``random()`` in [0, 1)), so that receivers coming back from an outage are not
    hit by every retry at the same instant.

    >>> [backoff(n, lambda: 0.0).total_seconds() for n in (1, 2, 3, 8, 20)]
    [30.0, 60.0, 120.0, 3600.0, 3600.0]
    >>> backoff(1, lambda: 1.0).total_seconds()
    22.5
    """
    exponent: int = min(max(attempts - 1, 0), 32)
    delay: timedelta = min(FIRST_RETRY * (1 << exponent), MAX_RETRY)
    return delay * (1 - 0.25 * random())


def allow_private_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """``PLANNER_WEBHOOKS_ALLOW_PRIVATE`` (JSON, like every ``PLANNER_*`` setting) as a bool.

    >>> allow_private_from_env({"PLANNER_WEBHOOKS_ALLOW_PRIVATE": "true"})
    True
    >>> allow_private_from_env({})
    False
    """
    env = os.environ if environ is None else environ
    value = env.get("PLANNER_WEBHOOKS_ALLOW_PRIVATE", "").strip()
    try:
        return json.loads(value) is True if value else False
    except ValueError:
        return False


class Deliverer:
    """Sends due outbox rows; any number may run at once, in threads or processes.

    Each row is claimed with a lease before it is sent (``Store.claim_due_delivery``), so
    two deliverers never send the same row at the same time; a deliverer that dies holding
    a row only delays it until the lease runs out.

    Parameters:
        send: the HTTP transport (default :func:`post`); tests may pass a fake.
        random: jitter source for :func:`backoff`.
        allow_private: deliver to private/loopback addresses (``WEBHOOKS_ALLOW_PRIVATE``).
        clock: the current aware time, used when ``run_once`` is not given ``now``.
    """

    def __init__(
        self,
        store: Store,
        *,
        send: Sender = post,
        timeout: float = TIMEOUT,
        random: Callable[[], float] = _random.random,
        lease: timedelta = LEASE,
        retry_window: timedelta = RETRY_WINDOW,
        allow_private: bool = False,
        resolve: Resolver = socket.getaddrinfo,
        clock: Clock = now,
        batch: int = 100,
        outbox_retention: timedelta = OUTBOX_RETENTION,
    ) -> None:
        self.store = store
        self.send = send
        self.timeout = timeout
        self.random = random
        self.lease = lease
        self.retry_window = retry_window
        self.allow_private = allow_private
        self.resolve = resolve
        self.clock = clock
        self.batch = batch
        self.outbox_retention = outbox_retention

    def run_once(self, now: datetime | None = None) -> int:
        """Try every due row once (at most ``batch``); return how many were tried.

        With ``now`` the whole run happens at that instant (tests with a controlled clock);
        without, each row is claimed and sent at the clock's current time. A row that
        fails is rescheduled after ``now``, so one run tries it at most once.
        """
        tried = 0
        while tried < self.batch:
            at = self.clock() if now is None else now
            claimed = self.store.claim_due_delivery(at, lease=self.lease)
            if claimed is None:
                break
            self._attempt(claimed, at)
            tried += 1
        return tried

    def _attempt(self, claimed: ClaimedDelivery, now: datetime) -> None:
        delivery, webhook = claimed.delivery, claimed.webhook
        if not webhook.enabled:
            self._finish(claimed, Attempt(None, "The webhook is disabled."), gave_up_at=now)
            return
        body = message_body(delivery.event_type, delivery.created_at, delivery.payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": delivery.id,
            "webhook-timestamp": str(_seconds(now)),
            "webhook-signature": signature_header(
                webhook.signing_secrets(now), delivery.id, now, body
            ),
        }
        try:
            address = receiver_address(
                webhook.url, allow_private=self.allow_private, resolve=self.resolve
            )
            attempt = self.send(webhook.url, body, headers, self.timeout, address)
        except UnresolvableHost as exc:  # DNS may answer again: retried as a failure
            attempt = Attempt(None, str(exc))
        except InvalidWebhookUrl as exc:  # refused: no retry will change that
            self._finish(claimed, Attempt(None, f"Refused: {exc}"), gave_up_at=now)
            return
        except Exception as exc:  # a broken transport must not stall the row until its lease ends
            log.exception("webhook transport failed for delivery %s", delivery.id)
            attempt = Attempt(None, f"{type(exc).__name__}: {exc}")
        if attempt.ok:
            self._finish(claimed, attempt, delivered_at=now)
            return
        if attempt.status == 410:
            # Standard Webhooks: 410 Gone means the receiver wants no more messages.
            self.store.disable_webhook(webhook.id)
            self._finish(
                claimed,
                Attempt(410, "HTTP 410: the receiver is gone; the webhook was disabled."),
                gave_up_at=now,
            )
            return
        started = max(delivery.created_at, delivery.replayed_at or delivery.created_at)
        deadline = started + self.retry_window
        if now >= deadline:
            self._finish(claimed, attempt, gave_up_at=now)
            return
        delay = backoff(delivery.attempts, self.random)
        if attempt.retry_after is not None:
            delay = max(delay, min(attempt.retry_after, MAX_RETRY))
        self._finish(claimed, attempt, retry_at=min(now + delay, deadline))

    def _finish(self, claimed: ClaimedDelivery, attempt: Attempt, **outcome: datetime) -> None:
        delivery = claimed.delivery
        recorded = self.store.finish_delivery(
            delivery.id,
            claimed.lease_until,
            status=attempt.status,
            error=None if attempt.ok else attempt.error,
            **outcome,
        )
        if not recorded:
            log.info("delivery %s changed while it was being sent; result dropped", delivery.id)
        elif not attempt.ok:
            what = "giving up" if "gave_up_at" in outcome else "will retry"
            log.warning(
                "webhook %s delivery %s attempt %d failed (%s); %s",
                delivery.webhook_id,
                delivery.id,
                delivery.attempts,
                attempt.error,
                what,
            )

    def housekeeping(self, now: datetime | None = None) -> None:
        """Drop idempotency keys older than 24 h and old delivered/given-up outbox rows."""
        now = self.clock() if now is None else now
        self.store.purge_idempotency(now - IDEMPOTENCY_TTL)
        self.store.purge_outbox(now - self.outbox_retention)

    def run_forever(
        self,
        stop_event: threading.Event,
        interval: float = 1.0,
        *,
        housekeeping_every: timedelta = timedelta(hours=1),
    ) -> None:
        """Deliver until ``stop_event`` is set, polling every ``interval`` seconds when idle.

        Also runs :meth:`housekeeping` at start and every ``housekeeping_every``. Errors
        (e.g. the database being unreachable) are logged and retried after ``interval``.
        """
        last_housekeeping: datetime | None = None
        while not stop_event.is_set():
            tried = 0
            try:
                tried = self.run_once()
                now = self.clock()
                if last_housekeeping is None or now - last_housekeeping >= housekeeping_every:
                    self.housekeeping(now)
                    last_housekeeping = now
            except Exception:
                log.exception("webhook delivery loop failed; retrying in %.1f s", interval)
            if tried < self.batch:
                stop_event.wait(interval)


class BackgroundDelivery:
    """A :class:`Deliverer` running in a daemon thread of this process (``planner serve``).

    Start it *after* any fork (in each gunicorn worker, not in the master): several of them
    may run at once, claims keep them apart.
    """

    def __init__(self, deliverer: Deliverer, *, interval: float = 1.0) -> None:
        self.deliverer = deliverer
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=deliverer.run_forever,
            args=(self._stop, interval),
            name="webhook-delivery",
            daemon=True,
        )

    def start(self) -> BackgroundDelivery:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the loop to stop and wait for the attempt in progress (if any) to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
