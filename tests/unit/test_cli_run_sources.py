"""`vmt run` takes exactly one source: --export FILE (with --out) or --model-run ID."""

import subprocess
from pathlib import Path

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


def test_a_model_run_without_an_api_key_fails_before_any_run_is_created(tmp_path: Path) -> None:
    state = tmp_path / "state"
    out = subprocess.run(
        [*VMT, "run", "--model-run", "mr-1"],
        capture_output=True,
        text=True,
        env=cli_env(VMT_STATE_DIR=str(state)),
    )
    assert out.returncode == 1
    assert "missing setting(s): LABELBOX_API_KEY" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (state / "runs.sqlite").exists()  # no run left behind to fail on resume


@pytest.mark.parametrize("policy", [None, "skip", "training", "auto"])
def test_the_unassigned_policy_travels_in_the_run_config_to_either_source(
    tmp_path: Path, policy: str | None
) -> None:
    """The policy is a source option (so a resumed run and a Vertex AI pipeline step rebuild
    the same source from the stored config). None (the user named none): absent, which a
    model run reads as skip and an export file as the policy its rows call for
    (`vmt.formats.split_policy`), so a named skip is kept for a file."""
    from vmt.backends.factory import build_source
    from vmt.config import load_settings
    from vmt.pipeline.run_config import RunConfig, requested_run_config

    export = tmp_path / "x.ndjson"
    export.write_text("{}\n")
    settings = load_settings(state_dir=tmp_path / "state")
    file_run = requested_run_config(
        export=export, out=tmp_path / "o", model_run=None, unassigned=policy
    )
    model_run = requested_run_config(export=None, out=None, model_run="mr-1", unassigned=policy)
    for config, stored_when, read_as in (
        (file_run, policy is not None, policy),
        (model_run, policy not in (None, "skip"), policy or "skip"),
    ):
        stored = RunConfig.from_json(config.to_json())
        assert ("unassigned" in stored.source.options) == stored_when
        assert build_source(stored.source, settings).unassigned == read_as


@pytest.mark.parametrize(
    ("flag", "env", "named"),
    [
        (None, None, None),
        (None, "skip", "skip"),
        (None, "auto", "auto"),
        ("test", "skip", "test"),
        ("skip", None, "skip"),
    ],
)
def test_the_policy_the_user_named_is_the_flag_else_vmt_unassigned(
    monkeypatch: pytest.MonkeyPatch, flag: str | None, env: str | None, named: str | None
) -> None:
    from vmt.cli.convert import UnassignedPolicy
    from vmt.cli.run import _named_policy
    from vmt.config import load_settings

    monkeypatch.delenv("VMT_UNASSIGNED", raising=False)
    if env is not None:
        monkeypatch.setenv("VMT_UNASSIGNED", env)
    given = UnassignedPolicy(flag) if flag is not None else None
    assert _named_policy(given, load_settings()) == named


def test_run_refuses_an_unknown_unassigned_policy() -> None:
    out = subprocess.run(
        [*VMT, "run", "--model-run", "mr", "--unassigned", "sometimes"],
        capture_output=True,
        text=True,
        env=cli_env(),
    )
    assert out.returncode == 2 and "sometimes" in out.stderr
