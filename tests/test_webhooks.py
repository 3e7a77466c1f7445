"""Webhook delivery end to end: a real HTTP receiver on 127.0.0.1, signatures checked by an
independent implementation of the Standard Webhooks scheme, retries, give-up, restarts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from planner.domain.model import Alert, Athlete, Outcome, PlanStatus, Severity
from planner.domain.progress import Decision
from planner.service import delivery, webhooks
from planner.service.delivery import (
    LEASE,
    Attempt,
    BackgroundDelivery,
    Deliverer,
    InvalidWebhookUrl,
    check_url,
)
from planner.store import DeliveryRecord, DeliveryState, Store, WebhookRecord, new_webhook_secret
from tests import builders
from tests.clock import Clock
from tests.store.conftest import T0, make_plan, make_revision

# ----------------------------------------------------------------------------- receiver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    started: float
    finished: float = 0.0


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers ``respond(r)``."""

    respond: Callable[[Received], int | tuple[int, dict[str, str]]] = lambda r: 204
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    in_flight: set[str] = field(default_factory=set)
    overlaps: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                got = Received(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                    started=time.monotonic(),
                )
                message_id = got.headers.get("webhook-id", "")
                with receiver.lock:
                    if message_id in receiver.in_flight:
                        receiver.overlaps.append(message_id)
                    receiver.in_flight.add(message_id)
                try:
                    if receiver.delay:
                        time.sleep(receiver.delay)
                    answer = receiver.respond(got)
                finally:
                    with receiver.lock:
                        receiver.in_flight.discard(message_id)
                        got.finished = time.monotonic()
                        receiver.requests.append(got)
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/stride-back"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.close()


# ----------------------------------------------------------------------------- verification


def verify(secret: str, headers: dict[str, str], body: bytes, now: datetime) -> bool:
    """Standard Webhooks verification, written from the specification (not planner code):
    HMAC-SHA256 keyed with base64-decoded secret over "{id}.{timestamp}.{body}", any of the
    space-separated "v1,<base64>" signatures may match, timestamp within 5 minutes."""
    message_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(now.timestamp() - int(timestamp)) > 300:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = message_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return True
    return False


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'planner.sqlite3').as_posix()}"


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def open_store(db_url: str) -> Iterator[Callable[..., Store]]:
    opened: list[Store] = []

    def open_(**kw: Any) -> Store:
        store = Store(db_url, **kw)
        store.upgrade()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.dispose()


@pytest.fixture
def store(open_store: Callable[..., Store], clock: Clock) -> Store:
    return open_store(clock=clock)


def subscribe(store: Store, url: str, *types: str) -> WebhookRecord:
    return store.create_webhook("acme", url, list(types or webhooks.EVENT_TYPES))


def only_delivery(store: Store, hook: WebhookRecord) -> DeliveryRecord:
    (row,), _ = store.list_deliveries("acme", hook.id, limit=10, offset=0)
    return row


def deliverer(store: Store, **kw: Any) -> Deliverer:
    kw.setdefault("allow_private", True)
    kw.setdefault("random", lambda: 0.0)
    return Deliverer(store, **kw)


# ----------------------------------------------------------------------------- signing


def test_sign_reproduces_the_specification_test_vector() -> None:
    signature = delivery.sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        '{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": signature,
    }
    moment = datetime.fromtimestamp(1614265330, UTC)
    assert verify(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, b'{"test": 2432232314}', moment
    )


def test_sign_refuses_ids_with_dots_and_malformed_secrets() -> None:
    with pytest.raises(ValueError):
        delivery.sign(new_webhook_secret(), "a.b", 1, b"{}")
    with pytest.raises(ValueError):
        delivery.sign("whsec_not base64!", "id", 1, b"{}")


# ----------------------------------------------------------------------------- delivery


def test_delivers_a_signed_standard_webhooks_message(store: Store, receiver: Receiver) -> None:
    hook = subscribe(store, receiver.url, "plan.created")
    (message_id,) = webhooks.enqueue(store, "acme", "plan.created", {"plan_id": "p1"}, now=T0)

    assert deliverer(store).run_once(T0) == 1

    (got,) = receiver.requests
    assert got.path == "/hooks/stride-back"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == message_id
    assert got.headers["webhook-timestamp"] == str(int(T0.timestamp()))
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    assert verify(hook.secret, got.headers, got.body, T0)
    assert not verify(new_webhook_secret(), got.headers, got.body, T0)
    assert not verify(hook.secret, got.headers, got.body + b" ", T0)
    assert json.loads(got.body) == {
        "type": "plan.created",
        "timestamp": "2026-11-20T09:30:00Z",
        "data": {"plan_id": "p1"},
    }
    delivery = only_delivery(store, hook)
    assert delivery.state is DeliveryState.DELIVERED
    assert (delivery.attempts, delivery.last_status, delivery.delivered_at) == (1, 204, T0)
    assert deliverer(store).run_once(T0 + timedelta(hours=1)) == 0
    assert len(receiver.requests) == 1


def test_only_subscribed_event_types_are_sent(store: Store, receiver: Receiver) -> None:
    subscribe(store, receiver.url, "plan.cancelled")
    assert webhooks.enqueue(store, "acme", "plan.created", {}, now=T0) == []
    with pytest.raises(ValueError, match="unknown event type"):
        webhooks.enqueue(store, "acme", "plan.deleted", {}, now=T0)
    assert deliverer(store).run_once(T0) == 0
    assert receiver.requests == []


def test_500s_are_retried_with_exponential_backoff_then_given_up_after_24_hours(
    store: Store, receiver: Receiver
) -> None:
    receiver.respond = lambda r: 500
    hook = subscribe(store, receiver.url)
    webhooks.enqueue(store, "acme", "plan.revised", {"plan_id": "p1"}, now=T0)
    worker = deliverer(store)
    deadline = T0 + timedelta(hours=24)

    now, attempts, delays = T0, 0, []
    while True:
        assert worker.run_once(now - timedelta(seconds=1)) == 0  # not due before its time
        assert worker.run_once(now) == 1
        attempts += 1
        delivery = only_delivery(store, hook)
        assert delivery.attempts == attempts
        assert (delivery.last_status, delivery.last_error) == (500, "HTTP 500")
        if delivery.state is DeliveryState.FAILED:
            break
        delays.append((delivery.next_attempt_at - now).total_seconds())
        now = delivery.next_attempt_at

    assert delays[:8] == [30, 60, 120, 240, 480, 960, 1920, 3600]
    assert set(delays[7:-1]) == {3600}
    assert now == deadline and delivery.gave_up_at == deadline
    assert len(receiver.requests) == attempts == len(delays) + 1
    # Every attempt carried the same id, a fresh timestamp and a valid signature.
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.id}
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.requests]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    moments = [datetime.fromtimestamp(s, UTC) for s in stamps]
    assert all(
        verify(hook.secret, r.headers, r.body, m)
        for r, m in zip(receiver.requests, moments, strict=True)
    )
    assert worker.run_once(deadline + timedelta(days=1)) == 0


def test_backoff_has_jitter_from_the_injected_random(store: Store, receiver: Receiver) -> None:
    receiver.respond = lambda r: 503
    hook = subscribe(store, receiver.url)
    webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0)

    deliverer(store, random=lambda: 0.5).run_once(T0)

    assert only_delivery(store, hook).next_attempt_at == T0 + timedelta(seconds=26.25)


def test_retry_after_is_honoured(store: Store, receiver: Receiver) -> None:
    receiver.respond = lambda r: (429, {"Retry-After": "600"})
    hook = subscribe(store, receiver.url)
    webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0)

    deliverer(store).run_once(T0)

    delivery = only_delivery(store, hook)
    assert delivery.next_attempt_at == T0 + timedelta(seconds=600)
    assert delivery.last_status == 429


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    store: Store, receiver: Receiver
) -> None:
    receiver.respond = lambda r: (
        (307, {"Location": "/elsewhere"}) if r.path == "/hooks/stride-back" else 204
    )
    hook = subscribe(store, receiver.url)
    webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0)

    deliverer(store).run_once(T0)

    assert [r.path for r in receiver.requests] == ["/hooks/stride-back"]
    delivery = only_delivery(store, hook)
    assert delivery.state is DeliveryState.PENDING and delivery.last_status == 307


def test_410_gone_disables_the_webhook(store: Store, receiver: Receiver) -> None:
    receiver.respond = lambda r: 410
    hook = subscribe(store, receiver.url)
    webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0)
    webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0)

    deliverer(store).run_once(T0)

    disabled = store.get_webhook("acme", hook.id)
    assert disabled is not None and not disabled.enabled
    rows, _ = store.list_deliveries("acme", hook.id, limit=10, offset=0)
    assert {r.state for r in rows} == {DeliveryState.FAILED}
    assert len(receiver.requests) == 1  # the second message was not sent to a gone receiver
    assert webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0) == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_receiver_is_retried(store: Store) -> None:
    hook = subscribe(store, f"http://127.0.0.1:{free_port()}/hook")
    webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0)

    deliverer(store).run_once(T0)

    delivery = only_delivery(store, hook)
    assert delivery.state is DeliveryState.PENDING
    assert delivery.last_status is None and "refused" in (delivery.last_error or "").lower()
    assert delivery.next_attempt_at == T0 + timedelta(seconds=30)


def test_a_slow_receiver_times_out(store: Store, receiver: Receiver) -> None:
    receiver.delay = 1.0
    hook = subscribe(store, receiver.url)
    webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0)

    started = time.monotonic()
    deliverer(store, timeout=0.2).run_once(T0)

    assert time.monotonic() - started < 0.9
    delivery = only_delivery(store, hook)
    assert delivery.state is DeliveryState.PENDING and delivery.last_status is None
    assert "timed out" in (delivery.last_error or "")


def test_private_receivers_are_refused_unless_allowed(store: Store, receiver: Receiver) -> None:
    hook = subscribe(store, receiver.url)
    webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0)

    deliverer(store, allow_private=False).run_once(T0)

    assert receiver.requests == []
    delivery = only_delivery(store, hook)
    assert delivery.state is DeliveryState.FAILED  # refused: retrying cannot change it
    assert delivery.attempts == 1 and delivery.gave_up_at == T0
    assert (delivery.last_error or "").startswith("Refused:")


def test_an_unresolvable_receiver_is_retried_not_refused(store: Store) -> None:
    hook = subscribe(store, "http://hooks.example.com/in")
    webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0)

    deliverer(store, allow_private=False, resolve=resolver()).run_once(T0)

    delivery = only_delivery(store, hook)
    assert delivery.state is DeliveryState.PENDING
    assert "cannot be resolved" in (delivery.last_error or "")
    assert delivery.next_attempt_at == T0 + timedelta(seconds=30)


def test_delivery_connects_to_the_address_it_checked(store: Store, receiver: Receiver) -> None:
    """The host is resolved once, by the check; the connection goes to that address, so a
    second DNS answer (a rebinding to an internal host) is never used. ``.invalid`` never
    resolves in real DNS: the delivery can only arrive through the pinned address."""
    port = receiver.url.split(":")[2].split("/")[0]
    hook = subscribe(store, f"http://receiver.invalid:{port}/hook")
    webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0)
    answers: list[str] = []

    def rebinding(host: str, port_: int, **kw: Any) -> list[tuple[Any, ...]]:
        answers.append(host)
        return resolver("127.0.0.1" if len(answers) == 1 else "10.9.9.9")(host, port_, **kw)

    deliverer(store, resolve=rebinding).run_once(T0)

    assert answers == ["receiver.invalid"]  # resolved once
    (got,) = receiver.requests
    assert got.headers["host"] == f"receiver.invalid:{port}"
    assert only_delivery(store, hook).state is DeliveryState.DELIVERED


def test_a_broken_transport_reschedules_instead_of_stalling(store: Store) -> None:
    def broken(
        url: str, body: bytes, headers: Any, timeout: float, address: str | None = None
    ) -> Attempt:
        raise RuntimeError("boom")

    hook = subscribe(store, "http://127.0.0.1:9/hook")
    webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0)

    deliverer(store, send=broken).run_once(T0)

    delivery = only_delivery(store, hook)
    assert delivery.last_error == "RuntimeError: boom"
    assert delivery.next_attempt_at == T0 + timedelta(seconds=30)


def test_a_rotated_secret_signs_next_to_the_new_one_for_24_hours(
    store: Store, receiver: Receiver, clock: Clock
) -> None:
    hook = subscribe(store, receiver.url)
    rotated = store.rotate_webhook_secret("acme", hook.id)
    assert rotated is not None
    webhooks.enqueue(store, "acme", "plan.revised", {"n": 1}, now=T0)
    webhooks.enqueue(store, "acme", "plan.revised", {"n": 2}, now=T0 + timedelta(hours=24))
    worker = deliverer(store)

    worker.run_once(T0)
    worker.run_once(T0 + timedelta(hours=24))

    during, after = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert verify(hook.secret, during.headers, during.body, T0)
    assert verify(rotated.secret, during.headers, during.body, T0)
    later = T0 + timedelta(hours=24)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert verify(rotated.secret, after.headers, after.body, later)
    assert not verify(hook.secret, after.headers, after.body, later)


def test_replay_sends_the_same_message_again(
    store: Store, receiver: Receiver, clock: Clock
) -> None:
    hook = subscribe(store, receiver.url)
    webhooks.enqueue(store, "acme", "plan.revised", {"plan_id": "p1"}, now=T0)
    worker = deliverer(store)
    worker.run_once(T0)
    delivered = only_delivery(store, hook)
    clock.advance(timedelta(days=3))

    replayed = store.replay_delivery("acme", hook.id, delivered.id)
    assert replayed is not None and replayed.state is DeliveryState.PENDING
    assert worker.run_once(clock.now) == 1

    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivered.id
    assert first.body == second.body
    assert int(second.headers["webhook-timestamp"]) == int(clock.now.timestamp())
    assert verify(hook.secret, second.headers, second.body, clock.now)
    again = only_delivery(store, hook)
    assert again.state is DeliveryState.DELIVERED and again.attempts == 2


def test_a_replay_of_a_given_up_message_has_a_new_24_hour_window(
    store: Store, receiver: Receiver, clock: Clock
) -> None:
    receiver.respond = lambda r: 500
    hook = subscribe(store, receiver.url)
    webhooks.enqueue(store, "acme", "plan.revised", {}, now=T0)
    worker = deliverer(store, retry_window=timedelta(minutes=1))
    worker.run_once(T0)
    worker.run_once(T0 + timedelta(minutes=1))
    assert only_delivery(store, hook).state is DeliveryState.FAILED
    clock.advance(timedelta(days=1))

    replayed = store.replay_delivery("acme", hook.id, only_delivery(store, hook).id)
    assert replayed is not None
    worker.run_once(clock.now)

    delivery = only_delivery(store, hook)
    assert delivery.state is DeliveryState.PENDING  # retried, not given up at once
    # The third attempt's backoff (2 min) is cut to the end of the replay's window.
    assert delivery.next_attempt_at == clock.now + timedelta(minutes=1)
    worker.run_once(clock.now + timedelta(minutes=1))
    assert only_delivery(store, hook).state is DeliveryState.FAILED


# ----------------------------------------------------------------------------- durability


def test_nothing_is_lost_across_a_restart(
    open_store: Callable[..., Store], receiver: Receiver, clock: Clock
) -> None:
    first = open_store(clock=clock)
    hook = subscribe(first, receiver.url)
    plan = make_plan(1)
    first.add_plan(
        plan,
        make_revision(plan),
        outbox=webhooks.outbox_rows("acme", "plan.created", {"plan_id": plan.id}, T0),
    )
    first.dispose()  # the process stops before anything was sent

    restarted = open_store(clock=clock)
    assert deliverer(restarted).run_once(T0) == 1

    (got,) = receiver.requests
    assert json.loads(got.body)["data"] == {"plan_id": plan.id}
    assert verify(hook.secret, got.headers, got.body, T0)


def test_a_worker_dying_mid_delivery_only_delays_the_message(
    open_store: Callable[..., Store], receiver: Receiver, clock: Clock
) -> None:
    first = open_store(clock=clock)
    hook = subscribe(first, receiver.url)
    webhooks.enqueue(first, "acme", "plan.revised", {}, now=T0)

    def crash(
        url: str, body: bytes, headers: Any, timeout: float, address: str | None = None
    ) -> Attempt:
        raise SystemExit("killed")  # not an Exception: nothing catches it

    with pytest.raises(SystemExit):
        deliverer(first, send=crash).run_once(T0)
    first.dispose()

    restarted = open_store(clock=clock)
    worker = deliverer(restarted)
    assert worker.run_once(T0 + LEASE - timedelta(seconds=1)) == 0  # still leased
    assert worker.run_once(T0 + LEASE) == 1

    delivery = only_delivery(restarted, hook)
    assert delivery.state is DeliveryState.DELIVERED and delivery.attempts == 2
    assert len(receiver.requests) == 1


ROWS = 30


def test_two_deliverers_never_send_the_same_message_at_the_same_time(
    open_store: Callable[..., Store], receiver: Receiver
) -> None:
    receiver.delay = 0.01
    setup = open_store()  # real clocks from here on
    hook = subscribe(setup, receiver.url)
    now = datetime.now(UTC)
    for n in range(ROWS):
        webhooks.enqueue(setup, "acme", "plan.revised", {"n": n}, now=now)
    workers = [deliverer(open_store()), deliverer(open_store())]
    sent: list[int] = [0, 0]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(workers))

    def run(index: int) -> None:
        try:
            barrier.wait()
            while (tried := workers[index].run_once()) > 0:
                sent[index] += tried
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert receiver.overlaps == []
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == ROWS
    assert sum(sent) == ROWS
    assert all(sent), f"one deliverer did everything ({sent}): the test proved nothing"
    rows, total = setup.list_deliveries("acme", hook.id, limit=100, offset=0)
    assert total == ROWS and {r.state for r in rows} == {DeliveryState.DELIVERED}
    assert {r.attempts for r in rows} == {1}


def test_background_delivery_sends_while_running_and_stops(
    open_store: Callable[..., Store], receiver: Receiver
) -> None:
    store = open_store()
    subscribe(store, receiver.url)
    background = BackgroundDelivery(deliverer(store), interval=0.02).start()
    try:
        webhooks.enqueue(store, "acme", "plan.created", {"plan_id": "p1"}, now=datetime.now(UTC))
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        background.stop()
    assert len(receiver.requests) == 1
    assert not background.running


def test_housekeeping_purges_old_idempotency_keys_and_outbox_rows(
    store: Store, receiver: Receiver, clock: Clock
) -> None:
    hook = subscribe(store, receiver.url)
    webhooks.enqueue(store, "acme", "plan.created", {}, now=T0)
    worker = deliverer(store)
    worker.run_once(T0)
    store.claim_idempotency("acme", "k", "POST", "/v1/plans", "0" * 64)

    worker.housekeeping(T0 + timedelta(hours=23))
    assert store.list_deliveries("acme", hook.id, limit=10, offset=0)[1] == 1
    assert store.claim_idempotency("acme", "k", "POST", "/v1/plans", "0" * 64).state == (
        "in_progress"
    )

    worker.housekeeping(T0 + timedelta(days=31))
    assert store.list_deliveries("acme", hook.id, limit=10, offset=0)[1] == 0
    clock.advance(timedelta(seconds=1))
    assert store.claim_idempotency("acme", "k", "POST", "/v1/plans", "0" * 64).state == "new"


# ----------------------------------------------------------------------------- events of a write


def test_plan_events_for_a_new_plan_and_its_revisions() -> None:
    info = Alert(code="avoid_nsaids", severity=Severity.INFO, message="No NSAIDs.")
    warning = Alert(code="bone_health_referral", severity=Severity.WARNING, message="Refer.")
    made = builders.plan(plan_id="p-1")
    plan = replace(
        made,
        request=replace(made.request, athlete=Athlete(reference="clinic-1")),
        alerts=(info, warning),
    )

    created = webhooks.plan_events("acme", plan, now=T0)
    assert [e.event_type for e in created] == ["plan.created", "alert.raised"]
    assert created[0].payload == {
        "plan_id": plan.id,
        "revision": 1,
        "status": "active",
        "athlete_reference": "clinic-1",
        "links": {"plan": f"/v1/plans/{plan.id}"},
        "protocol": {"id": plan.protocol.id, "version": plan.protocol.version},
    }
    assert created[1].payload["alert"] == {
        "code": "bone_health_referral",
        "severity": "warning",
        "message": "Refer.",
    }
    assert {e.organisation for e in created} == {"acme"}
    assert {e.occurred_at for e in created} == {T0}

    urgent = Alert(code="stop_and_refer", severity=Severity.URGENT, message="Stop.")
    stopped = replace(plan, revision=2, status=PlanStatus.STOPPED, alerts=(urgent, info, warning))
    check_in = webhooks.CheckInRecorded(
        date=T0.date().isoformat(),
        session_uid="s-1",
        decision=Decision(Outcome.STOP_AND_REFER, "Red flag.", session_uid="s-1"),
    )
    revised = webhooks.plan_events(
        "acme",
        stopped,
        previous=plan,
        kind="check_in",
        reason="Red flag.",
        check_in=check_in,
        now=T0,
    )
    assert [e.event_type for e in revised] == ["plan.revised", "checkin.recorded", "alert.raised"]
    assert revised[0].payload["kind"] == "check_in"
    assert revised[1].payload["decision"] == {"outcome": "stop_and_refer", "reason": "Red flag."}
    assert revised[1].payload["session_uid"] == "s-1"
    assert "pain_during" not in json.dumps(revised[1].payload)  # thin: no health details
    assert revised[2].payload["alert"]["code"] == "stop_and_refer"

    cancelled = replace(stopped, revision=3, status=PlanStatus.CANCELLED)
    ended = webhooks.plan_events(
        "acme", cancelled, previous=stopped, kind="cancel", reason="Injured again.", now=T0
    )
    assert [e.event_type for e in ended] == ["plan.cancelled"]
    assert ended[0].payload["reason"] == "Injured again."


# ----------------------------------------------------------------------------- URLs


def resolver(*addresses: str) -> Callable[..., list[tuple[Any, ...]]]:
    def resolve(host: str, port: int, **kw: Any) -> list[tuple[Any, ...]]:
        if not addresses:
            raise socket.gaierror("no such host")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "example.com/hook",
        "https://",
        "https://user:pass@example.com/hook",
        "https://example.com:99999/hook",
        "http://exa mple.com/hook",
    ],
)
def test_check_url_refuses_what_is_not_an_http_url(url: str) -> None:
    with pytest.raises(InvalidWebhookUrl):
        check_url(url, allow_private=True, resolve=resolver("93.184.216.34"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
    ],
)
def test_check_url_refuses_internal_addresses_unless_allowed(url: str) -> None:
    with pytest.raises(InvalidWebhookUrl, match="internal"):
        check_url(url, resolve=resolver())
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::a00:1",  # local-use NAT64
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "::127.0.0.1",  # IPv4-compatible
        "::ffff:0:7f00:1",  # IPv4-translated 127.0.0.1
        "::ffff:7f00:1",  # IPv4-mapped 127.0.0.1
        "fec0::1",  # site-local
        "fc00::1",  # unique local
        "fe80::1",  # link-local
    ],
)
def test_check_url_refuses_ipv4_internal_addresses_written_in_ipv6(address: str) -> None:
    with pytest.raises(InvalidWebhookUrl, match="internal"):
        check_url(f"http://[{address}]/hook")
    with pytest.raises(InvalidWebhookUrl, match="internal"):  # also when a name resolves to it
        check_url("https://hooks.example.com/in", resolve=resolver(address))


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"])
def test_check_url_accepts_public_addresses_in_ipv6(address: str) -> None:
    assert check_url(f"http://[{address}]/hook") == f"http://[{address}]/hook"


def test_check_url_resolves_host_names() -> None:
    url = "https://hooks.example.com/in"
    assert check_url(url, resolve=resolver("93.184.216.34")) == url
    with pytest.raises(InvalidWebhookUrl, match="internal"):
        check_url(url, resolve=resolver("93.184.216.34", "10.0.0.7"))  # any internal one
    with pytest.raises(InvalidWebhookUrl, match="cannot be resolved"):
        check_url(url, resolve=resolver())
