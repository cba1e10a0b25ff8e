"""Which ``labelbox`` SDK function sends each request the fake Labelbox answers, captured from a
real run: ``requests``' transport is wrapped (observed, not replaced) and, for every request the
SDK sends, the operation name and the call stack at that moment are kept.

``python -m tests.faults.labelbox_operations`` prints the table for docs/reliability.md.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import requests.adapters

_OPERATION = re.compile(rb"(?:query|mutation)\s+(\w+)")


@dataclass(frozen=True)
class Sent:
    operation: str
    sdk_function: str
    """The first ``labelbox`` frame under our code: the SDK function our adapter called."""
    caller: str
    """The ``vmt`` frame that called it."""


def operation_of(request: requests.PreparedRequest) -> str:
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    if request.method == "GET":
        path = (request.path_url or "").split("?", 1)[0]
        path = re.sub(r"^/files/(\w+)/[^/]+", r"/files/\1/{id}", path)
        return "GET " + re.sub(r"(/\d+)+$", "/{offset}...", path)
    match = _OPERATION.search(body[:4000])
    return match.group(1).decode() if match else "?"


def _frames() -> tuple[str, str]:
    """(the SDK function our code called, our calling function and its line of code)."""
    sdk, caller = "?", "?"
    for frame in traceback.extract_stack():
        if frame.name == "wrapper":  # a decorator's frame: the decorated function is next
            continue
        module = frame.filename.replace("\\", "/")
        if "/src/vmt/" in module and not module.endswith("/vmt/retry.py"):
            caller = f"vmt/{module.split('/src/vmt/', 1)[1]}:{frame.name}: {frame.line}"[:110]
            sdk = "?"
        elif "/site-packages/labelbox/" in module and sdk == "?" != caller:
            sdk = f"labelbox/{module.split('/site-packages/labelbox/', 1)[1]}:{frame.name}"
    return sdk, caller


@contextmanager
def capture() -> Iterator[list[Sent]]:
    """Record every request the SDK sends through ``requests`` while the block runs."""
    seen: list[Sent] = []
    original: Callable[..., Any] = requests.adapters.HTTPAdapter.send

    def send(self: Any, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        seen.append(Sent(operation_of(request), *_frames()))
        return original(self, request, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        requests.adapters.HTTPAdapter.send = original  # type: ignore[method-assign]


def table(sent: list[Sent]) -> list[tuple[str, str, str]]:
    """(operation, SDK function, our caller), one row per operation, in first-sent order."""
    rows: dict[str, tuple[str, str, str]] = {}
    for s in sent:
        rows.setdefault(s.operation, (s.operation, s.sdk_function, s.caller))
    return list(rows.values())


def markdown(rows: list[tuple[str, str, str]]) -> str:
    sdk = f"labelbox {version('labelbox')}"
    head = f"| operation | SDK function that sends it ({sdk}) | our caller |"
    lines = [head, "|---|---|---|"]
    lines += [f"| `{op}` | `{sdk}` | `{caller}` |" for op, sdk, caller in rows]
    return "\n".join(lines)


def pytest_configure(config: Any) -> None:
    """As a plugin (``-p tests.faults.labelbox_operations``, with ``LABELBOX_OPS_TABLE=FILE``):
    capture every test's Labelbox requests and write the table to FILE at the end."""
    import os

    out = os.environ.get("LABELBOX_OPS_TABLE")
    if not out:
        return
    context = capture()
    sent = context.__enter__()

    def write() -> None:
        context.__exit__(None, None, None)
        Path(out).write_text(markdown(table(sent)) + "\n")

    config.add_cleanup(write)


if __name__ == "__main__":  # pragma: no cover - prints the docs table
    from tests.faults.test_labelbox_operations import drive_everything

    print(json.dumps(version("labelbox")))
    print(markdown(table(drive_everything())))
