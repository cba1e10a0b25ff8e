"""Every command in the README's ``bash`` blocks, tried as a new user would.

Each command is in ``COMMANDS`` with how it is proven: ``run`` ones are run here, as written, in
a fresh folder holding the files they name (a synthetic export, predictions, new rows); the
others say why not (a cloud account, a server that runs until stopped, a 5-minute demo) and
where they are tested. A command added to the README and not to this list fails the test, and
every ``vmt`` command, run here or not, must parse against the real CLI with all its options.
Optional ``[--flag VALUE]`` groups are parsed, and left out when the command is run.
"""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import time
from pathlib import Path

import click
import httpx
import orjson
import pytest
import typer.main

from tests.conftest import VMT, cli_env
from vmt.cli import app
from vmt.domain import Detection, Prediction, Sample
from vmt.formats.export_options import ExportOptions
from vmt.formats.labelbox_export import read_samples
from vmt.formats.labelbox_predictions import deterministic_uuids, prediction_rows
from vmt.pipeline.run_config import files_run_config
from vmt.pipeline.store import RunStore
from vmt.synthetic import generate_dataset

README = Path(__file__).resolve().parents[2] / "README.md"

RUN = "run"
COMMANDS: dict[str, str] = {
    # installing and the make targets
    "make demo": "CI runs `make test`; `vmt demo` is what `make demo` runs (below)",
    "make test": "CI runs it (.ci/run)",
    "python3.11 -m venv .venv && . .venv/bin/activate": "the Makefile's $(STAMP) target does it",
    'pip install -c constraints.txt ".[all]"': "the Makefile's $(STAMP) target runs it",
    # the local loop
    "vmt demo": "trains for 270 s; tests/e2e/test_local_run.py runs it with a 1 s budget",
    "vmt demo --out demo-out --images 600 --train-seconds 270 --seed 0": "same, 270 s",
    "vmt run --export export.ndjson --trainer local --out results/ [--images-dir DIR] "
    "[--train-seconds S] [--seed K] [--unassigned skip|training|validation|test|auto]": RUN,
    "vmt runs": RUN,
    "vmt runs show RUN_ID": RUN,
    "vmt resume RUN_ID": RUN,
    "vmt cancel RUN_ID": RUN,
    "vmt predict --run RUN_ID --export new.ndjson -o preds.ndjson": RUN,
    "vmt convert export.ndjson -o import.jsonl [--image-uri-prefix gs://bucket/images/] "
    "[--model-run-id RUN_ID] [--unassigned skip|training|validation|test|auto] "
    "[--report report.json] [--strict]": RUN,
    "vmt evaluate --ground-truth export.ndjson --predictions predictions.ndjson [-o metrics.json] "
    "[--html report.html] [--row-metrics row_metrics.ndjson] [--iou 0.5] [--confidence auto|X] "
    "[--splits validation,test|all] [--images DIR] [--gt-format labelbox|coco] "
    "[--pred-format labelbox|vertex|coco] [--model-run RUN_ID]": RUN,
    "vmt evaluate --ground-truth export.ndjson --predictions predictions.ndjson -o metrics.json "
    "--fail-under map_50=0.5 --json": RUN,
    "vmt ui": RUN,
    # a Labelbox or Google Cloud account
    "export LABELBOX_API_KEY=...": "cloud: a Labelbox API key",
    "vmt run --model-run <MODEL_RUN_ID> --trainer local": "cloud: Labelbox (tests/e2e/"
    "test_labelbox_run.py drives the real SDK against tests/fakes/labelbox_server.py)",
    "vmt models": RUN,
    "export VMT_GCP_PROJECT=my-project VMT_GCS_BUCKET=my-vmt-bucket": "cloud: a GCP project",
    "PROJECT_NUMBER=$(gcloud projects describe my-project --format='value(projectNumber)')": (
        "cloud: a GCP project (gcloud)"
    ),
    (
        "gcloud storage buckets add-iam-policy-binding gs://their-images-bucket "
        '--member="serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-aiplatform.'
        'iam.gserviceaccount.com" --role="roles/storage.objectViewer"'
    ): "cloud: IAM on a real bucket (gcloud)",
    "vmt run --export export.ndjson --out results --trainer vertex --dry-run": "cloud: GCP "
    "(tests/e2e/test_vertex_run.py against tests/fakes/vertex_server.py)",
    "vmt run --export export.ndjson --out results --trainer vertex": "cloud: GCP (same)",
    "export VMT_WEBHOOK_SECRET=...": "cloud: the secret entered in Labelbox",
    "export VMT_API_TOKEN=...": "a token you choose (tests/integration/service)",
    "vmt serve --host 0.0.0.0 --port 8080 --workers 1": "cloud: needs LABELBOX_API_KEY and a "
    "webhook secret; serves until stopped (tests/integration/service/test_serve_cli.py)",
}


def readme_commands() -> list[str]:
    """The commands of the README's bash blocks: comments dropped, continued lines joined."""
    commands: list[str] = []
    in_block = False
    for raw in README.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("```"):
            in_block = line == "```bash"
            continue
        if not in_block:
            continue
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not line:
            continue
        if commands and (commands[-1].endswith("\\") or line.startswith("[")):
            commands[-1] = commands[-1].rstrip("\\").rstrip() + " " + line
        else:
            commands.append(line)
    return list(dict.fromkeys(commands))


def test_every_readme_command_is_listed() -> None:
    assert set(readme_commands()) == set(COMMANDS)


def _with_options(command: str, values: dict[str, str]) -> list[str]:
    """argv with every optional group kept, its first alternative and placeholders filled."""
    text = command.replace("[", "").replace("]", "")
    argv = []
    for word in shlex.split(text):
        if "|" in word and not word.startswith("-"):
            word = word.split("|")[0]
        argv.append(values.get(word, word))
    return argv


KEPT_WHEN_RUN = ("--image-uri-prefix",)
"""Optional groups a run needs here (the synthetic export's images are local files)."""


def _without_options(command: str, values: dict[str, str]) -> list[str]:
    def drop(match: re.Match[str]) -> str:
        return " " + match.group(1) if match.group(1).startswith(KEPT_WHEN_RUN) else ""

    text = re.sub(r"\s*\[([^\]]*)\]", drop, command)
    return [values.get(w, w) for w in shlex.split(text)]


def _parse(argv: list[str]) -> None:
    """Parse ``vmt ...`` with the real CLI (options exist, required ones given, types)."""
    command: click.Command = typer.main.get_command(app)
    ctx = command.make_context("vmt", argv[1:])
    while isinstance(command, click.Group):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            break
        name, sub, args = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, args, parent=ctx)
        command = sub


PLACEHOLDERS = {
    "RUN_ID": "20260101-000000-abcdef",
    "<MODEL_RUN_ID>": "clx-model-run",
    "DIR": ".",
    "S": "2",
    "K": "0",
    "X": "0.5",
}


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("vmt ")])
def test_every_vmt_command_parses_with_all_its_options(command: str) -> None:
    _parse(_with_options(command, PLACEHOLDERS))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _perfect_predictions(export: Path, out: Path) -> None:
    uuid_for = deterministic_uuids("readme")
    with out.open("wb") as lines:
        for item in read_samples(export, ExportOptions(require_dimensions=False)):
            if isinstance(item, Sample) and item.boxes:
                prediction = Prediction(
                    item.data_row_id, tuple(Detection(b, 0.9) for b in item.boxes)
                )
                for row in prediction_rows(prediction, uuid_for=uuid_for):
                    lines.write(orjson.dumps(row) + b"\n")


def test_readme_commands_run_as_written(tmp_path: Path) -> None:
    dataset = generate_dataset(tmp_path / "dataset", images=20, seed=3)
    home = tmp_path / "new-user"
    home.mkdir()
    (home / "export.ndjson").write_bytes(dataset.read_bytes())
    (home / "new.ndjson").write_bytes(b"".join(dataset.read_bytes().splitlines(True)[:5]))
    _perfect_predictions(dataset, home / "predictions.ndjson")
    env = cli_env(COLUMNS="200", VMT_LOCAL_DEVICE="cpu", VMT_TRAIN_SECONDS="3")
    env.pop("VMT_STATE_DIR", None)  # as a new user: the default ./.vmt
    values = dict(PLACEHOLDERS, DIR=str(dataset.parent / "images"))

    def vmt(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*VMT, *argv[1:]], cwd=home, env=env, capture_output=True, text=True, timeout=300
        )

    ran = []
    order = sorted(
        (c for c, how in COMMANDS.items() if how == RUN and c != "vmt ui"),
        key=lambda c: (not c.startswith("vmt run "), c.startswith("vmt cancel")),
    )
    for command in order:
        if command.startswith("vmt cancel"):
            store = RunStore(home / ".vmt" / "runs.sqlite")
            config = files_run_config(export=str(home / "export.ndjson"), out_dir=str(home / "o"))
            values["RUN_ID"] = store.create_run(config)
            store.close()
        argv = _without_options(command, values)
        result = vmt(argv)
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
        ran.append(command)
        if "--json" in argv:
            assert orjson.loads(result.stdout)["gate"]["passed"] is True
            assert "quality gate passed: map_50 1 >= 0.5" in result.stderr
        if command.startswith("vmt run "):
            store = RunStore(home / ".vmt" / "runs.sqlite")
            (run,) = store.list_runs()
            values["RUN_ID"] = run.id
            store.close()
            assert (home / "results" / "metrics.json").is_file()
    assert (home / "import.jsonl").is_file() and (home / "preds.ndjson").is_file()
    assert len(ran) == sum(how == RUN for how in COMMANDS.values()) - 1

    port = _free_port()
    ui = subprocess.Popen(
        [*VMT, "ui", "--port", str(port)], cwd=home, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/ui/", timeout=5)
                break
            except httpx.TransportError:
                assert ui.poll() is None and time.monotonic() < deadline, "vmt ui did not start"
                time.sleep(0.2)
        assert page.status_code == 200
        assert 'data-run="' in page.text  # the run made above, from ./.vmt
    finally:
        ui.terminate()
        ui.wait(10)
