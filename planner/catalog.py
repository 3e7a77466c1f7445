"""Read and validate the protocol files (TOML) into domain protocols.

The catalog is loaded once at start-up; a broken file stops the service with an
error that names the file and the field, so a bad protocol never reaches a runner.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from marshmallow import ValidationError

from planner.domain.errors import InvalidProtocol, UnknownProtocol
from planner.domain.model import Protocol
from planner.schemas.protocol_file import PROTOCOL_FILE_SCHEMA, flatten_errors


def builtin_protocols_dir() -> Path:
    """The shipped protocols: inside the installed package, or the repository's
    top-level ``protocols/`` when running from a source checkout."""
    packaged = Path(str(resources.files("planner"))) / "protocols"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "protocols"


def load_protocol_file(path: Path) -> Protocol:
    """Parse and validate one file; its stem must equal its ``id``."""
    return load_protocol_document(path)[0]


def protocol_from_document(data: dict[str, Any], name: str = "snapshot") -> Protocol:
    """Validate a protocol document (a file's parsed TOML, or a plan's stored snapshot)."""
    try:
        protocol: Protocol = PROTOCOL_FILE_SCHEMA.load(data)
    except ValidationError as exc:
        errors = flatten_errors(exc.messages)
        lines = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in sorted(errors.items()))
        raise InvalidProtocol(f"{name}: {lines}", errors) from exc
    return protocol


def load_protocol_document(path: Path) -> tuple[Protocol, dict[str, Any]]:
    """The validated protocol and the document it came from (kept with each plan, so
    a plan can be revised with exactly the protocol version it was made from)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidProtocol(f"{path.name}: cannot be read: {exc}", {"_file": [str(exc)]}) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidProtocol(f"{path.name}: not valid TOML: {exc}", {"_file": [str(exc)]}) from exc
    protocol = protocol_from_document(data, path.name)
    if protocol.id != path.stem:
        raise InvalidProtocol(
            f"{path.name}: id {protocol.id!r} must equal the file name {path.stem!r}.",
            {"id": [f"Must equal the file name {path.stem!r}."]},
        )
    return protocol, data


@dataclass(frozen=True, slots=True)
class Catalog:
    """The validated protocols, by id, with the documents they were read from."""

    protocols: tuple[Protocol, ...]
    documents: tuple[tuple[str, dict[str, Any]], ...] = ()

    def document(self, protocol_id: str) -> dict[str, Any]:
        for key, data in self.documents:
            if key == protocol_id:
                return data
        raise UnknownProtocol(f"No protocol with id {protocol_id!r}.")

    def __iter__(self) -> Iterator[Protocol]:
        return iter(self.protocols)

    def __len__(self) -> int:
        return len(self.protocols)

    def get(self, protocol_id: str) -> Protocol:
        for protocol in self.protocols:
            if protocol.id == protocol_id:
                return protocol
        raise UnknownProtocol(f"No protocol with id {protocol_id!r}.")


class CatalogErrors(InvalidProtocol):
    """Every broken file of a load, so authors see them all at once."""

    def __init__(self, problems: Sequence[InvalidProtocol]) -> None:
        super().__init__("\n".join(p.detail for p in problems))
        self.problems = tuple(problems)


def protocol_files(directories: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for directory in directories:
        if not directory.is_dir():
            raise InvalidProtocol(f"{directory}: not a directory of protocol files.")
        files.extend(sorted(directory.glob("*.toml")))
    return files


def protocol_dirs(value: object) -> list[Path]:
    """Extra protocol directories from configuration: a list, or one string of paths
    separated by ``os.pathsep`` (as ``PLANNER_PROTOCOLS_DIRS`` is usually written)."""
    if not value:
        return []
    if isinstance(value, str):
        return [Path(p) for p in value.split(os.pathsep) if p]
    if isinstance(value, Iterable):
        return [Path(str(p)) for p in value]
    raise InvalidProtocol(f"PROTOCOLS_DIRS must be a list of directories, not {value!r}.")


def load_catalog(extra_dirs: Iterable[Path | str] = ()) -> Catalog:
    """Load the built-in protocols plus any extra directories (a clinic's own).

    Raises:
        CatalogErrors: one or more files are invalid, or two share an id.
    """
    directories = [builtin_protocols_dir(), *(Path(d) for d in extra_dirs)]
    protocols: dict[str, Protocol] = {}
    documents: dict[str, dict[str, Any]] = {}
    problems: list[InvalidProtocol] = []
    for path in protocol_files(directories):
        try:
            protocol, documents[path.stem] = load_protocol_document(path)
        except InvalidProtocol as exc:
            problems.append(exc)
            continue
        if protocol.id in protocols:
            problems.append(InvalidProtocol(f"{path}: duplicate protocol id {protocol.id!r}."))
            continue
        protocols[protocol.id] = protocol
    if problems:
        raise CatalogErrors(problems)
    if not protocols:
        raise InvalidProtocol("No protocol files found.")
    return Catalog(
        tuple(sorted(protocols.values(), key=lambda p: p.id)),
        tuple(sorted((key, documents[key]) for key in protocols)),
    )
