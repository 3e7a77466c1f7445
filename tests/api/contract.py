"""Check live responses against openapi.yaml, so the document cannot drift from the code."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from werkzeug.test import TestResponse

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"


@dataclass
class Contract:
    spec: dict[str, Any]

    @classmethod
    def load(cls) -> Contract:
        return cls(yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8")))

    def operation(self, method: str, path: str) -> dict[str, Any]:
        """The operation whose path template matches a concrete path (static paths first)."""
        templates = sorted(self.spec["paths"], key=lambda t: (t.count("{"), -len(t)))
        for template in templates:
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+?", re.escape(template)) + "$"
            if re.match(pattern, path) and method.lower() in self.spec["paths"][template]:
                return self.spec["paths"][template][method.lower()]
        raise AssertionError(f"openapi.yaml has no operation {method} {path}")

    def check(self, method: str, path: str, response: TestResponse) -> None:
        """The status is documented for this operation and the body fits its schema."""
        operation = self.operation(method, path.split("?")[0])
        responses = operation["responses"]
        documented = responses.get(str(response.status_code))
        assert documented is not None, (
            f"{method} {path}: status {response.status_code} is not documented "
            f"(documented: {sorted(responses)})"
        )
        if "$ref" in documented:
            documented = self.spec["components"]["responses"][documented["$ref"].rsplit("/", 1)[-1]]
        content = documented.get("content")
        if response.status_code == 304 or not content:
            return
        assert response.mimetype in content, (
            f"{method} {path}: {response.mimetype} not in {sorted(content)}"
        )
        schema = content[response.mimetype].get("schema") or {}
        if schema.get("type") == "string":
            return
        self.validate(schema, json.loads(response.get_data()))

    def validate(self, schema: dict[str, Any], instance: Any) -> None:
        """Validate against a schema whose ``#/components/...`` refs resolve in the spec."""
        root = {**schema, "components": self.spec.get("components", {})}
        validator = Draft202012Validator(root)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
