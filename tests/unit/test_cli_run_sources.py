"""`vmt run` takes exactly one source: --export FILE (with --out) or --model-run ID."""

import subprocess

import pytest

from tests.conftest import VMT, cli_env


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --export FILE (with --out) or --model-run ID"),
        (["--export", "x.ndjson", "--out", "o", "--model-run", "mr"], "give exactly one of"),
        (["--export", "x.ndjson"], "--out is required with --export"),
    ],
)
def test_run_needs_exactly_one_source(args: list[str], message: str) -> None:
    out = subprocess.run([*VMT, "run", *args], capture_output=True, text=True, env=cli_env())
    assert out.returncode == 1
    assert message in out.stderr


def test_run_help_offers_model_run() -> None:
    out = subprocess.run([*VMT, "run", "--help"], capture_output=True, text=True, env=cli_env())
    assert out.returncode == 0 and "--model-run" in out.stdout
