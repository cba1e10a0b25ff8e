"""Google's published REST schemas (discovery documents) as a check on our fakes' answers.

The documents ship inside ``google-api-python-client`` (a test dependency) under
``googleapiclient/discovery_cache/documents/``; we did not write them. ``DiscoveryDocument``
finds the method an HTTP request calls (by its HTTP verb and path template) and checks a JSON
answer against that method's response schema: an unknown or misspelled field, a wrong JSON type,
a value outside an enum, an int64 not sent as a decimal string, a bad timestamp: each is a
problem. ``google.protobuf.Any`` values (``{"@type": ...}``) are checked against the schema their
type URL names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
_DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
_INT = re.compile(r"^-?\d+$")
_TYPE_URL = re.compile(r"^type\.googleapis\.com/google\.cloud\.aiplatform\.v1\.(\w+)$")


@dataclass(frozen=True)
class Method:
    id: str
    http_method: str
    pattern: re.Pattern[str]
    response: str | None
    """Schema id of the answer; None when the method returns no JSON (media, empty)."""


def documents_dir() -> Path:
    import googleapiclient

    return Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"


@cache
def load(name: str) -> DiscoveryDocument:
    """``load("aiplatform.v1")`` or ``load("storage.v1")``."""
    return DiscoveryDocument(json.loads((documents_dir() / f"{name}.json").read_text()))


class DiscoveryDocument:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.name = f"{doc['name']}.{doc['version']}"
        self.schemas: dict[str, Any] = doc["schemas"]
        base = "/" + doc["servicePath"].lstrip("/")
        self.methods: list[Method] = []
        for method in _walk_methods(doc.get("resources", {})):
            response = method.get("response", {}).get("$ref")
            templates = [method.get("flatPath") or method["path"]]
            self.methods.append(
                Method(method["id"], method["httpMethod"], _template(base, templates[0]), response)
            )
            for protocol in method.get("mediaUpload", {}).get("protocols", {}).values():
                upload = _template("", protocol["path"])
                self.methods.append(Method(method["id"], method["httpMethod"], upload, response))
                if protocol.get("multipart") is False or "resumable" in protocol["path"]:
                    # the session URI of a resumable upload takes the bytes by PUT
                    self.methods.append(Method(method["id"], "PUT", upload, response))

    def method_for(self, http_method: str, path: str) -> Method | None:
        """The method a request calls, or None when no template of this API matches it."""
        for method in self.methods:
            if method.http_method == http_method and method.pattern.fullmatch(path):
                return method
        return None

    def check(self, schema_id: str, value: Any, where: str = "$") -> list[str]:
        """Every way ``value`` departs from schema ``schema_id`` (empty: it conforms)."""
        return self._check({"$ref": schema_id}, value, where)

    def _check(self, spec: dict[str, Any], value: Any, where: str) -> list[str]:
        if "$ref" in spec:
            schema = self.schemas[spec["$ref"]]
            return self._check(schema, value, where) if "$ref" not in schema else []
        kind = spec.get("type")
        if kind == "any" or kind is None:
            return self._check_any(value, where)
        if kind == "object":
            return self._check_object(spec, value, where)
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: expected an array, got {_json_type(value)}"]
            items = spec["items"]
            return [p for i, v in enumerate(value) for p in self._check(items, v, f"{where}[{i}]")]
        return _check_scalar(spec, value, where)

    def _check_object(self, spec: dict[str, Any], value: Any, where: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {_json_type(value)}"]
        properties: dict[str, Any] = spec.get("properties", {})
        extra = spec.get("additionalProperties")
        problems: list[str] = []
        for key, item in value.items():
            if key in properties:
                problems += self._check(properties[key], item, f"{where}.{key}")
            elif extra is not None:
                if key == "@type":
                    continue
                problems += self._check(extra, item, f"{where}.{key}")
            else:
                known = ", ".join(sorted(properties)[:12])
                problems.append(f"{where}.{key}: unknown field (the schema has: {known}...)")
        if extra is not None and "@type" in value:
            problems += self._check_any(value, where)
        return problems

    def _check_any(self, value: Any, where: str) -> list[str]:
        """A ``google.protobuf.Any`` of this API is checked against the type its URL names."""
        if not isinstance(value, dict) or "@type" not in value:
            return []
        match = _TYPE_URL.match(str(value["@type"]))
        if match is None:
            return []
        schema_id = "GoogleCloudAiplatformV1" + match[1]
        if schema_id not in self.schemas:
            return [f"{where}.@type: {value['@type']} names no schema of {self.name}"]
        rest = {k: v for k, v in value.items() if k != "@type"}
        return self.check(schema_id, rest, where)


def _check_scalar(spec: dict[str, Any], value: Any, where: str) -> list[str]:
    kind, fmt = spec["type"], spec.get("format")
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string ({fmt or 'text'}), got {_json_type(value)}"]
        if fmt in ("int64", "uint64") and not _INT.match(value):
            return [f"{where}: {value!r} is not a decimal {fmt}"]
        if fmt == "google-datetime" and not _DATETIME.match(value):
            return [f"{where}: {value!r} is not an RFC 3339 timestamp"]
        if fmt == "google-duration" and not _DURATION.match(value):
            return [f"{where}: {value!r} is not a duration"]
        if "enum" in spec and value not in spec["enum"]:
            return [f"{where}: {value!r} is not one of {spec['enum']}"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: expected a boolean"]
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected an integer, got {_json_type(value)}"]
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected a number, got {_json_type(value)}"]
    return [f"{where}: schema type {kind!r} not understood"]


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "null" if value is None else "number"
    )


def _walk_methods(resources: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource in resources.values():
        found += resource.get("methods", {}).values()
        found += _walk_methods(resource.get("resources", {}))
    return found


def _template(base: str, path: str) -> re.Pattern[str]:
    """``v1/{+name}`` -> a regex over the request path; ``{+x}`` may span slashes."""
    pattern, position = "", 0
    for match in re.finditer(r"\{(\+?)(\w+)\}", path):
        pattern += re.escape(path[position : match.start()])
        pattern += ".+" if match[1] else "[^/]+"
        position = match.end()
    pattern += re.escape(path[position:])
    return re.compile(re.escape(base.rstrip("/") + "/") + pattern.lstrip("/") if base else pattern)
