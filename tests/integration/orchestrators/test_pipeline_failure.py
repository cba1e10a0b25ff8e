"""A pipeline that fails marks the Labelbox model run FAILED with the failing step's message:
steps (``run_step``) against the fake Labelbox server report each stage's status and record
their failure in the run folder; the exit handler's function (``report_pipeline_end``, given
the state and error Vertex AI passes as ``PipelineTaskFinalStatus``) reports FAILED."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.builders.labelbox_rows import model_run_row
from tests.fakes.gcp import local_gcp
from tests.fakes.labelbox_server import API_KEY, FakeLabelbox
from vmt.config import load_settings
from vmt.errors import InputError
from vmt.orchestrators.run_folder import FolderRunContext
from vmt.orchestrators.steps import (
    CANCELLED_MESSAGE,
    report_pipeline_end,
    run_step,
    step_settings_json,
)
from vmt.orchestrators.vertex_pipelines import pipeline_jobs
from vmt.pipeline.protocols import Stage
from vmt.pipeline.run_config import labelbox_run_config

MODEL_RUN = "mr-failing"
JOB = "vmt-mr-failing"


@pytest.fixture
def params(
    fake_labelbox: FakeLabelbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, str]:
    rows = [  # validation rows only: nothing to train on
        model_run_row(f"dr-{i}", split="validation", run_id=MODEL_RUN) for i in range(3)
    ]
    fake_labelbox.add_model_run(MODEL_RUN, rows=rows, classes=["car"])
    monkeypatch.setenv("LABELBOX_API_KEY", API_KEY)  # the step's environment
    monkeypatch.setenv("VMT_LABELBOX_POLL_SECONDS", "0.01")
    settings = load_settings(labelbox_endpoint=fake_labelbox.endpoint)
    config = labelbox_run_config(model_run_id=MODEL_RUN, trainer="local")
    return {
        "run_id": JOB,
        "run_config": config.to_json(),
        "settings": step_settings_json(settings),
        "run_dir": str(tmp_path / "run"),
    }


def test_failing_step_then_exit_handler_marks_the_model_run_failed(
    fake_labelbox: FakeLabelbox, params: dict[str, str]
) -> None:
    assert API_KEY not in params["settings"]
    assert run_step("export", **params)["export_bytes"] > 0
    with pytest.raises(InputError):
        run_step("prepare", **params)
    ctx = FolderRunContext(JOB, Path(params["run_dir"]))
    failure = ctx.failure()
    assert failure is not None and failure["stage"] == "prepare"
    assert failure["message"].startswith("Data preparation failed: ")
    assert "training" in failure["message"] or "rejected" in failure["message"]

    reported = report_pipeline_end(
        **params,
        state="FAILED",
        error_message="The DAG failed because some tasks failed. The failed tasks are: [prepare].",
    )
    assert reported == "FAILED"
    statuses = fake_labelbox.statuses(MODEL_RUN)
    assert [s["status"] for s in statuses] == ["EXPORTING_DATA", "PREPARING_DATA", "FAILED"]
    assert statuses[-1]["errorMessage"] == failure["message"]
    assert len(statuses[-1]["errorMessage"]) <= 255
    assert statuses[-1]["metadata"]["orchestrator"] == "vertex-pipelines"
    assert statuses[-1]["metadata"]["vmt_run_id"] == JOB
    assert ctx.stage_outputs(Stage.EXPORT) is not None
    assert ctx.stage_outputs(Stage.PREPARE) is None


def test_retried_step_of_a_finished_stage_is_not_redone(params: dict[str, str]) -> None:
    run_step("export", **params)
    ctx = FolderRunContext(JOB, Path(params["run_dir"]))
    again = run_step("export", **params)  # a retry after the stage finished
    assert again["export_bytes"] > 0
    assert [e["message"] for e in ctx.events()].count("stage already done; not redone") == 1


def test_failed_job_without_a_step_message_reports_the_job_error(
    fake_labelbox: FakeLabelbox, params: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job that Vertex AI failed before any step could say why (e.g. a step's container could
    not start): the FAILED status carries the pipeline job's own error, as the fake Vertex
    server reports it through the SDK."""
    with local_gcp() as world:
        for key, value in world.settings_env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("VMT_PIPELINE_IMAGE", "python:3.11-slim")
        jobs = pipeline_jobs(load_settings())
        run, _ = jobs.submit(labelbox_run_config(model_run_id=MODEL_RUN), model_run_id=MODEL_RUN)
        world.vertex.pipeline_jobs.finish(
            run.job_id, "FAILED", failed_task="export", error="The replica workerpool0-0 exited "
            "with a non-zero status of 137 (out of memory)."
        )  # fmt: skip
        failed = jobs.get(run.job_id)
    assert failed.state == "failed"
    assert failed.error is not None
    report_pipeline_end(**params, state="FAILED", error_message=failed.error)
    final = fake_labelbox.statuses(MODEL_RUN)[-1]
    assert final["status"] == "FAILED"
    assert final["errorMessage"] == f"Run failed: {failed.error}"


def test_cancelled_job_reports_cancelled(
    fake_labelbox: FakeLabelbox, params: dict[str, str]
) -> None:
    report_pipeline_end(**params, state="CANCELLED", error_message="")
    final = fake_labelbox.statuses(MODEL_RUN)[-1]
    assert (final["status"], final["errorMessage"]) == ("FAILED", CANCELLED_MESSAGE)


def test_succeeded_pipeline_reports_nothing_more(
    fake_labelbox: FakeLabelbox, params: dict[str, str]
) -> None:
    assert report_pipeline_end(**params, state="SUCCEEDED", error_message="") == "COMPLETE"
    assert fake_labelbox.statuses(MODEL_RUN) == []
