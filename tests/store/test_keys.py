"""API keys: creation, authentication, revocation; secrets never stored in clear."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, timedelta

import pytest

from planner.store import SCOPES, AmbiguousKeyError, Store, hash_secret
from tests.clock import Clock

from .conftest import T0, Database

SECRET_FORMAT = re.compile(r"^sbk_(?P<prefix>[A-Za-z0-9]{8})_(?P<body>[A-Za-z0-9_-]{43,})$")


def test_create_key_returns_record_and_well_formed_secret(store: Store) -> None:
    key, secret = store.create_key("coach script", "acme")

    match = SECRET_FORMAT.match(secret)
    assert match, secret
    assert match["prefix"] == key.prefix
    # token_urlsafe(32): 43 characters of 6 bits each, well over the 160 bits required
    assert len(match["body"]) * 6 >= 160
    assert (key.name, key.organisation) == ("coach script", "acme")
    assert key.created_at == T0
    assert key.last_used_at is None
    assert key.revoked_at is None
    assert key.active


def test_secrets_are_unique(store: Store) -> None:
    secrets = {store.create_key(f"k{i}", "acme")[1] for i in range(20)}
    assert len(secrets) == 20


def test_secret_is_not_stored_in_clear(store: Store, database: Database) -> None:
    key, secret = store.create_key("ci", "acme")
    body = secret.split("_", 2)[2]

    dump = "\n".join(
        repr(row)
        for table in sorted(database.table_names())
        for row in database.rows(f"SELECT * FROM {table}")
    )
    assert secret not in dump
    assert body not in dump
    assert hash_secret(secret) in dump  # what is stored instead
    (row,) = database.rows("SELECT * FROM api_keys")
    assert key.prefix in row


def test_authenticate_returns_the_key(store: Store) -> None:
    key, secret = store.create_key("ci", "acme")
    found = store.authenticate(secret)
    assert found is not None
    assert (found.id, found.organisation, found.prefix) == (key.id, "acme", key.prefix)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"),  # one character off
        lambda s: s[:-1],  # truncated
        lambda s: s + "x",  # extended
        lambda s: s.upper(),
        lambda s: s.removeprefix("sbk_"),  # no scheme
        lambda s: "",
        lambda s: "sbk_" + "x" * 10_000,  # oversized
    ],
)
def test_wrong_secret_is_refused(store: Store, mangle: Callable[[str], str]) -> None:
    _, secret = store.create_key("ci", "acme")
    assert store.authenticate(mangle(secret)) is None


def test_authenticate_sets_last_used_at_at_most_once_a_minute(store: Store, clock: Clock) -> None:
    key, secret = store.create_key("ci", "acme")

    clock.advance(timedelta(seconds=5))
    first = store.authenticate(secret)
    assert first is not None and first.last_used_at == T0 + timedelta(seconds=5)

    clock.advance(timedelta(seconds=30))  # within the minute: no write
    again = store.authenticate(secret)
    assert again is not None and again.last_used_at == first.last_used_at

    clock.advance(timedelta(seconds=30))  # 65 s after the recorded use: rewritten
    later = store.authenticate(secret)
    assert later is not None and later.last_used_at == T0 + timedelta(seconds=65)

    (listed,) = store.list_keys()
    assert listed.last_used_at == later.last_used_at == key.created_at + timedelta(seconds=65)
    assert listed.last_used_at is not None and listed.last_used_at.tzinfo is UTC


def test_revoked_key_no_longer_authenticates(store: Store, clock: Clock) -> None:
    key, secret = store.create_key("ci", "acme")
    other, other_secret = store.create_key("ci 2", "acme")
    clock.advance(timedelta(hours=1))

    assert store.revoke_key(str(key.id)) is True

    assert store.authenticate(secret) is None
    assert store.authenticate(other_secret) is not None
    revoked = {k.id: k for k in store.list_keys()}[key.id]
    assert revoked.revoked_at == T0 + timedelta(hours=1)
    assert not revoked.active


@pytest.mark.parametrize("form", ["id", "prefix", "display", "secret"])
def test_revoke_by_id_prefix_display_form_or_secret(store: Store, form: str) -> None:
    key, secret = store.create_key("ci", "acme")
    reference = {
        "id": str(key.id),
        "prefix": key.prefix,
        "display": f"sbk_{key.prefix}",
        "secret": secret,
    }[form]
    assert store.revoke_key(reference) is True
    assert store.authenticate(secret) is None


def test_revoke_unknown_or_already_revoked_returns_false(store: Store) -> None:
    key, _ = store.create_key("ci", "acme")
    assert store.revoke_key("nope1234") is False
    assert store.revoke_key("999") is False
    assert store.revoke_key(key.prefix) is True
    assert store.revoke_key(key.prefix) is False


def test_revoke_refuses_an_ambiguous_prefix(store: Store, database: Database) -> None:
    first, first_secret = store.create_key("a", "acme")
    second, _ = store.create_key("b", "acme")
    database.rows("UPDATE api_keys SET prefix = :prefix", prefix=first.prefix)

    with pytest.raises(AmbiguousKeyError) as raised:
        store.revoke_key(first.prefix)
    assert raised.value.ids == [first.id, second.id]
    assert store.authenticate(first_secret) is not None  # nothing revoked

    assert store.revoke_key(str(first.id)) is True
    assert store.revoke_key(first.prefix) is True  # only the second one is left


def test_list_keys_includes_revoked_in_creation_order(store: Store) -> None:
    keys = [store.create_key(f"k{i}", org)[0] for i, org in enumerate(["acme", "globex", "acme"])]
    store.revoke_key(str(keys[1].id))
    listed = store.list_keys()
    assert [k.id for k in listed] == [k.id for k in keys]
    assert [k.organisation for k in listed] == ["acme", "globex", "acme"]
    assert [k.active for k in listed] == [True, False, True]


@pytest.mark.parametrize(("name", "organisation"), [("", "acme"), ("ci", "  "), ("x" * 201, "a")])
def test_create_key_rejects_blank_or_oversized_names(
    store: Store, name: str, organisation: str
) -> None:
    with pytest.raises(ValueError):
        store.create_key(name, organisation)
    assert store.list_keys() == []


def test_a_key_has_every_scope_unless_told_otherwise(store: Store) -> None:
    key, secret = store.create_key("ci", "acme")
    assert (
        key.scopes
        == SCOPES
        == (
            "plans:read",
            "plans:write",
            "feeds:manage",
            "webhooks:manage",
            "admin",
        )
    )
    authenticated = store.authenticate(secret)
    assert authenticated is not None and authenticated.scopes == SCOPES


def test_scopes_are_stored_in_canonical_order(store: Store) -> None:
    key, secret = store.create_key("hooks", "acme", ["webhooks:manage", "plans:read"])
    assert key.scopes == ("plans:read", "webhooks:manage")
    (listed,) = store.list_keys()
    authenticated = store.authenticate(secret)
    assert listed.scopes == key.scopes
    assert authenticated is not None and authenticated.scopes == key.scopes
    assert key.allows("plans:read") and key.allows("webhooks:manage")
    assert not key.allows("plans:write") and not key.allows("admin")


def test_admin_allows_everything(store: Store) -> None:
    key, _ = store.create_key("root", "acme", ["admin"])
    assert all(key.allows(scope) for scope in SCOPES)


@pytest.mark.parametrize("scopes", [[], ["plans:read", "plans:delete"], ["everything"]])
def test_unknown_or_no_scopes_are_refused(store: Store, scopes: list[str]) -> None:
    with pytest.raises(ValueError):
        store.create_key("ci", "acme", scopes)
    assert store.list_keys() == []


def test_a_string_is_not_a_list_of_scopes(store: Store) -> None:
    with pytest.raises(TypeError):
        store.create_key("ci", "acme", "plans:read")  # type: ignore[arg-type]
