"""Part 3 of the fault campaign: hostile input.

Seeded, mutated inputs (tests/faults/mutate.py) made from the field cases (tests/faults/corpus,
copied from ../shared/cases/field) and from rows built by tests/builders are fed to:

- the export reader (``read_ground_truth`` of a Labelbox export, as ``vmt evaluate`` reads it, and
  ``read_samples`` with ``vmt convert``'s rules);
- the prediction readers (Labelbox NDJSON, Vertex batch output);
- COCO files (ground truth and results);
- the webhook (``POST /model_run``): mutated bodies, signed or not, and mutated headers.

Invariants: nothing raises but ``InputError`` (a clear message for a file unusable as a whole);
every rejection carries a reason and a line number; every non-blank line of an NDJSON export is
read as a row or reported; the webhook answers every request with a JSON error or a run, never a
5xx or a traceback. The default run tries a sample of each; ``make test-faults`` tries 10,000 of
each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.builders.labelbox_rows import model_run_row, polygon_object, v1_row
from tests.faults import figures
from tests.faults.mutate import Mutator
from tests.integration.service.live_server import serve_in_thread
from vmt.domain import Rejection, Sample, Split
from vmt.errors import InputError
from vmt.formats import coco, labelbox_predictions, vertex_predictions
from vmt.formats.evaluation_inputs import read_ground_truth, sample_finder
from vmt.formats.export_options import ExportOptions
from vmt.formats.labelbox_export import ConversionStats, read_samples

CORPUS = Path(__file__).parent / "corpus"
SAMPLE = 150
FULL = 10_000


def _seeds(*names: str) -> list[bytes]:
    found = [p for name in names for p in sorted(CORPUS.glob(f"*/{name}"))]
    files = [f for p in found for f in ([p] if p.is_file() else sorted(p.rglob("*.jsonl")))]
    return [f.read_bytes() for f in files]


def export_seeds() -> list[bytes]:
    built = [
        model_run_row("dr-a"),
        model_run_row("dr-b", split="validation", objects=[polygon_object()]),
        model_run_row("dr-c", split=None, width=None, height=None, mime_type=None),
        v1_row(),
    ]
    lines = b"\n".join(orjson.dumps(row) for row in built) + b"\n"
    return [*_seeds("export*.ndjson", "export_v1.json"), lines]


def _check_rejections(rejections: list[Rejection], lines: int) -> None:
    for r in rejections:
        assert isinstance(r.reason, str) and r.reason.strip(), r
        assert r.line is None or 1 <= r.line <= max(lines, 1) + 1, (r, lines)
        assert isinstance(r.detail, str), r


def _inputs(
    seeds: list[bytes], count: int, seed: int, document: bool
) -> Iterator[tuple[int, bytes]]:
    mutator = Mutator(seed, document=document)
    for n in range(count):
        yield n, mutator.mutate(seeds[n % len(seeds)])


def _campaign(
    part: str, seeds: list[bytes], count: int, seed: int, tmp: Path, check: Callable[[Path], Any]
) -> None:
    """Run ``check`` on ``count`` mutated files; a failing input is saved and named."""
    start = time.monotonic()
    refused = 0
    path = tmp / "input"
    for n, data in _inputs(seeds, count, seed, document="coco" in part):
        path.write_bytes(data)
        try:
            check(path)
        except InputError as exc:
            assert exc.message and "Traceback" not in exc.message
            refused += 1
        except Exception:  # noqa: BLE001 - any other exception is the fault we look for
            kept = tmp / f"failing-{n}"
            kept.write_bytes(data)
            raise AssertionError(f"input {n} (seed {seed}, saved in {kept}) crashed") from None
    figures.record(
        part, inputs=count, refused_whole=refused, crashes=0, seconds=time.monotonic() - start
    )


def _json_array(data: bytes) -> bool:
    """A whole-file JSON array (a supported input): its lines are not rows."""
    return data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"["


def _lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def check_export(path: Path) -> None:
    data = path.read_bytes()
    lines = data.split(b"\n")
    gt = read_ground_truth(path, fmt="labelbox")
    _check_rejections(gt.rejections, len(lines))
    stats = ConversionStats()
    items = list(read_samples(path, ExportOptions(unassigned="auto"), stats))
    rejections = [i for i in items if isinstance(i, Rejection)]
    _check_rejections(rejections, len(lines))
    if not _json_array(data):  # NDJSON: every row accounted for
        covered = {i.line for i in items}
        blank = {n for n, raw in enumerate(lines, 1) if not raw.strip().strip(b"\xef\xbb\xbf")}
        missing = set(range(1, len(lines) + 1)) - blank - covered
        assert not missing, f"lines neither read nor reported: {sorted(missing)[:5]}"


def check_labelbox_predictions(path: Path) -> None:
    lines = _lines_of(path)
    read = labelbox_predictions.read_predictions(path)
    _check_rejections(list(read.ignored) + list(read.warnings), len(lines))
    rejected = {r.line for r in read.ignored}
    nonblank = sum(1 for raw in lines if raw.strip())
    if _json_array(path.read_bytes()):
        return
    assert len(read.table) + len(rejected) >= nonblank - _blankish(lines), "a line was lost"


def _blankish(lines: list[bytes]) -> int:
    return sum(1 for raw in lines if raw.strip() in (b"\xef\xbb\xbf",))


VERTEX_SAMPLES = [
    Sample(f"dr-{i}", f"gs://b/i/dr-{i}.jpg", 100, 80, Split.TEST, (), line=i + 1) for i in range(4)
]


def vertex_seeds() -> list[bytes]:
    rows = [
        {
            "instance": {"content": f"gs://b/i/dr-{i}.jpg", "mimeType": "image/jpeg"},
            "prediction": {
                "ids": ["1", "2"],
                "displayNames": ["car", "person"],
                "confidences": [0.9, 0.4],
                "bboxes": [[0.1, 0.5, 0.2, 0.6], [0.0, 1.0, 0.0, 1.0]],
            },
        }
        for i in range(3)
    ]
    rows.append({"instance": {"content": "gs://b/i/dr-3.jpg"}, "error": {"message": "bad"}})
    built = b"\n".join(orjson.dumps(r) for r in rows) + b"\n"
    return [*_seeds("batch_output", "batch_output_errors_file"), built]


def check_vertex_predictions(path: Path) -> None:
    lines = _lines_of(path)
    read = vertex_predictions.read_predictions([path], sample_for_uri=sample_finder(VERTEX_SAMPLES))
    _check_rejections(list(read.ignored) + list(read.warnings), len(lines))


def check_coco_ground_truth(path: Path) -> None:
    gt = coco.read_ground_truth(path)
    _check_rejections(gt.rejections, 10**9)


def check_coco_results(path: Path) -> None:
    read = coco.read_results(path, categories={1: "car", 2: "person", 3: "dog"})
    _check_rejections(list(read.ignored) + list(read.warnings), 10**9)


TARGETS: dict[str, tuple[Callable[[], list[bytes]], Callable[[Path], None]]] = {
    "export reader": (export_seeds, check_export),
    "labelbox predictions": (lambda: _seeds("predictions.ndjson"), check_labelbox_predictions),
    "vertex predictions": (vertex_seeds, check_vertex_predictions),
    "coco ground truth": (lambda: _seeds("gt.json"), check_coco_ground_truth),
    "coco results": (lambda: _seeds("results.json"), check_coco_results),
}


@pytest.mark.parametrize("target", list(TARGETS))
def test_hostile_files_sample(target: str, tmp_path: Path) -> None:
    seeds, check = TARGETS[target]
    _campaign(f"3 hostile input (sample): {target}", seeds(), SAMPLE, 1, tmp_path, check)


@pytest.mark.faults
@pytest.mark.parametrize("target", list(TARGETS))
def test_hostile_files_full(target: str, tmp_path: Path) -> None:
    seeds, check = TARGETS[target]
    _campaign(f"3 hostile input: {target}", seeds(), FULL, 2, tmp_path, check)


# -- the webhook --

SECRET = b"whsec-hostile-0123456789"
MODEL_TYPE = "local_object_detection"


@contextmanager
def _webhook_service(tmp_path: Path) -> Iterator[httpx.Client]:
    """The app (runs queued, not executed) under uvicorn on loopback, and a client for it."""
    from vmt.config import load_settings
    from vmt.service.app import create_app

    settings = load_settings(
        webhook_secret=SECRET.decode(), api_token="tok", state_dir=tmp_path / "state"
    )
    app = create_app(settings, run_worker=False, model_types=[MODEL_TYPE])
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


_HEADER_VALUES = (
    "",
    "sha1=",
    "sha1=" + "0" * 40,
    "sha1=" + "g" * 40,
    "SHA1=" + "a" * 40,
    "sha256=" + "a" * 64,
    "sha1=" + "a" * 4000,
    "sha1=\u00e9" + "a" * 39,
    "sha1 =" + "a" * 40,
)


def _webhook_request(mutator: Mutator) -> tuple[bytes, dict[str, str], bool]:
    """(body, headers, whether the body is signed correctly)."""
    rng = mutator.rng
    body = json.dumps(
        {"modelId": "m", "modelRunId": f"mr-{rng.randrange(50)}", "modelType": MODEL_TYPE}
    ).encode()
    if rng.random() < 0.8:
        body = mutator.mutate(body)
    from vmt.service.signature import sign

    headers: dict[str, str] = {"Content-Type": "application/json"}
    signed = rng.random() < 0.7
    if signed:
        headers["X-Hub-Signature"] = sign(SECRET, body)
    elif rng.random() < 0.8:
        headers["X-Hub-Signature"] = rng.choice(_HEADER_VALUES)
    roll = rng.random()
    if roll < 0.1:
        headers["Content-Type"] = rng.choice(("text/plain", "", "application/json; charset=x"))
    elif roll < 0.15:
        headers["Content-Encoding"] = rng.choice(("gzip", "br", "identity"))
    elif roll < 0.2:
        headers["X-Labelbox-Id"] = "\u00e9" * rng.randrange(1, 300)
    return body, headers, signed


def _webhook_campaign(part: str, count: int, seed: int, tmp_path: Path) -> None:
    mutator = Mutator(seed)
    statuses: dict[int, int] = {}
    start = time.monotonic()
    with _webhook_service(tmp_path) as client:
        for n in range(count):
            body, headers, signed = _webhook_request(mutator)
            raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
            answer = client.post("/model_run", content=body, headers=raw_headers)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            where = f"request {n} (seed {seed}): {body[:200]!r} {headers}"
            assert answer.status_code < 500, f"{where} -> {answer.status_code} {answer.text}"
            assert "Traceback" not in answer.text, where
            payload = answer.json()
            if answer.status_code >= 400:
                assert payload.get("error"), f"{where} -> {answer.text}"
            else:
                assert signed and payload["run_id"], f"{where} -> {answer.text}"
        runs = client.get("/runs", headers={"Authorization": "Bearer tok"}).json()["runs"]
    model_runs = [r["model_run_id"] for r in runs]
    assert len(model_runs) == len(set(model_runs)), "two runs for one model run"
    figures.record(
        part,
        inputs=count,
        statuses={str(k): v for k, v in sorted(statuses.items())},
        runs=len(runs),
        crashes=0,
        seconds=time.monotonic() - start,
    )


def test_hostile_webhooks_sample(tmp_path: Path) -> None:
    _webhook_campaign("3 hostile input (sample): webhook", SAMPLE, 1, tmp_path)


@pytest.mark.faults
def test_hostile_webhooks_full(tmp_path: Path) -> None:
    _webhook_campaign("3 hostile input: webhook", FULL, 2, tmp_path)
