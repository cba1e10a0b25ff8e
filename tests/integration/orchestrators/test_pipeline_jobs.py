"""Pipeline jobs through the real ``google-cloud-aiplatform`` SDK against the fake Vertex server:
create-once by job id, attach, labels, template, root, read back by label, cancel."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import yaml

from tests.fakes.gcp import BUCKET, PROJECT, REGION, LocalGcp, local_gcp
from vmt.backends.vertex.pipeline_jobs import (
    JOB_ID_PATTERN,
    LABEL_MODEL_RUN,
    job_id_for,
    label_value,
)
from vmt.config import load_settings
from vmt.errors import InputError, NotFoundError
from vmt.orchestrators.kfp_pipeline import STAGE_ORDER
from vmt.orchestrators.vertex_pipelines import pipeline_jobs
from vmt.pipeline.run_config import RunConfig, labelbox_run_config

IMAGE = "us-central1-docker.pkg.dev/test-project/vmt/vmt:0.1.0"
MODEL_RUN = "0c8a3c5e-6f0b-4a59-9d35-1f0b6a1d2c3e"


@pytest.fixture
def gcp(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalGcp]:
    calls: list[object] = []

    def no_default_credentials(*args: object, **kwargs: object) -> None:
        import traceback

        calls.append(traceback.format_stack(limit=14))
        raise AssertionError("google.auth.default() called")

    monkeypatch.setattr("google.auth.default", no_default_credentials)
    with local_gcp() as world:
        for key, value in world.settings_env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("VMT_PIPELINE_IMAGE", IMAGE)
        yield world
    assert not calls, "".join(calls[0][-8:]) if calls else ""


def _config(model_run: str = MODEL_RUN) -> RunConfig:
    return labelbox_run_config(model_run_id=model_run, trainer="vertex")


@pytest.mark.parametrize(
    ("model_run_id", "expected"),
    [
        # a UUID (starts with a digit): prefixed, kept as it is
        (MODEL_RUN, f"vmt-{MODEL_RUN}"),
        # a cuid: lower case already
        ("clq3x9k2b0001", "vmt-clq3x9k2b0001"),
        # upper case and other characters: folded, with a hash so ids stay distinct
        ("Run_ONE", None),
        # too long for 128 characters: cut, with a hash
        ("a" * 300, None),
    ],
)
def test_job_id_for_matches_vertex_pattern(model_run_id: str, expected: str | None) -> None:
    job_id = job_id_for(model_run_id)
    assert JOB_ID_PATTERN.fullmatch(job_id)
    assert job_id == job_id_for(model_run_id)
    if expected is not None:
        assert job_id == expected
    else:
        assert job_id.startswith("vmt-") and len(job_id) <= 128
    assert job_id_for(model_run_id, attempt=2).endswith("-a2")
    assert JOB_ID_PATTERN.fullmatch(job_id_for(model_run_id, attempt=2))


def test_distinct_model_runs_get_distinct_ids_and_labels() -> None:
    assert job_id_for("Run_ONE") != job_id_for("run-one")
    assert label_value("Run_ONE") != label_value("run_one")
    assert len(label_value("x" * 200)) <= 63
    with pytest.raises(InputError):
        job_id_for(" ")


def test_submit_records_id_labels_template_root_and_parameters(gcp: LocalGcp) -> None:
    jobs = pipeline_jobs(load_settings())
    run, created = jobs.submit(_config(), model_run_id=MODEL_RUN)

    assert created
    job_id = f"vmt-{MODEL_RUN}"
    assert run.job_id == job_id
    assert run.state == "running"
    (body,) = gcp.vertex.pipeline_jobs.jobs.values()
    (create,) = [r for r in gcp.vertex.requests if r.method == "POST"]
    assert create.query["pipelineJobId"] == [job_id]
    assert body["labels"] == {
        "vmt-app": "vmt",
        "vmt-model-run": MODEL_RUN,
        "vmt-trainer": "vertex",
    }
    assert body["runtimeConfig"]["gcsOutputDirectory"] == f"gs://{BUCKET}/vmt/pipelines"
    spec = body["pipelineSpec"]
    assert spec["pipelineInfo"]["name"] == "vmt-run"
    assert {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()} == {
        IMAGE
    }
    params = body["runtimeConfig"]["parameterValues"]
    assert params["run_id"] == job_id
    assert params["run_dir"] == f"gs://{BUCKET}/vmt/pipelines/{job_id}/run"
    assert RunConfig.from_json(params["run_config"]) == _config()
    settings = yaml.safe_load(params["settings"])
    assert settings["gcp_project"] == PROJECT and settings["gcp_region"] == REGION
    assert not {"labelbox_api_key", "webhook_secret", "api_token", "state_dir"} & set(settings)
    assert run.model_run_id == MODEL_RUN


def test_secrets_never_reach_the_pipeline_job(
    gcp: LocalGcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABELBOX_API_KEY", "lb-secret-value-123")
    monkeypatch.setenv("VMT_WEBHOOK_SECRET", "hook-secret-value-456")
    pipeline_jobs(load_settings()).submit(_config(), model_run_id=MODEL_RUN)
    sent = repr([r.body for r in gcp.vertex.requests])
    assert "lb-secret-value-123" not in sent and "hook-secret-value-456" not in sent


def test_second_submit_attaches(gcp: LocalGcp) -> None:
    jobs = pipeline_jobs(load_settings())
    first, created = jobs.submit(_config(), model_run_id=MODEL_RUN)
    again, created_again = pipeline_jobs(load_settings()).submit(_config(), model_run_id=MODEL_RUN)
    assert created and not created_again
    assert again.job_id == first.job_id
    assert len(gcp.vertex.pipeline_jobs.jobs) == 1
    assert gcp.vertex.pipeline_jobs.create_requests == 2


def test_concurrent_submits_create_one_job(gcp: LocalGcp) -> None:
    jobs = pipeline_jobs(load_settings())
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def submit() -> None:
        try:
            run, created = jobs.submit(_config(), model_run_id=MODEL_RUN)
            with lock:
                results.append((run.job_id, created))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 40
    assert {job_id for job_id, _ in results} == {f"vmt-{MODEL_RUN}"}
    assert sum(created for _, created in results) == 1
    assert len(gcp.vertex.pipeline_jobs.jobs) == 1


def test_read_list_by_label_and_task_details(gcp: LocalGcp) -> None:
    jobs = pipeline_jobs(load_settings())
    jobs.submit(_config(), model_run_id=MODEL_RUN)
    jobs.submit(_config("other-run"), model_run_id="other-run")
    gcp.vertex.pipeline_jobs.advance(f"vmt-{MODEL_RUN}", done=2, running="train")

    run = jobs.get(f"vmt-{MODEL_RUN}")
    assert run.stage == "train"
    assert [(t.name, t.state) for t in run.tasks] == [
        ("export", "SUCCEEDED"),
        ("prepare", "SUCCEEDED"),
        ("train", "RUNNING"),
    ]
    listed = jobs.list()
    assert [r.job_id for r in listed] == ["vmt-other-run", f"vmt-{MODEL_RUN}"]  # newest first
    assert [r.job_id for r in jobs.list(model_run_id="other-run")] == ["vmt-other-run"]
    (listing,) = [r for r in gcp.vertex.requests if r.method == "GET" and r.query.get("filter")
                  and LABEL_MODEL_RUN in r.query["filter"][0]]  # fmt: skip
    assert 'labels.vmt-app="vmt"' in listing.query["filter"][0]
    with pytest.raises(NotFoundError):
        jobs.get("vmt-no-such-run")


def test_cancel_cancels(gcp: LocalGcp) -> None:
    jobs = pipeline_jobs(load_settings())
    jobs.submit(_config(), model_run_id=MODEL_RUN)
    cancelled = jobs.cancel(f"vmt-{MODEL_RUN}")
    assert cancelled.state == "cancelled"
    assert any(r.path.endswith(f"vmt-{MODEL_RUN}:cancel") for r in gcp.vertex.requests)
    with pytest.raises(InputError, match="already cancelled"):
        jobs.cancel(f"vmt-{MODEL_RUN}")


def test_failed_job_reports_its_failing_task(gcp: LocalGcp) -> None:
    jobs = pipeline_jobs(load_settings())
    jobs.submit(_config(), model_run_id=MODEL_RUN)
    gcp.vertex.pipeline_jobs.finish(
        f"vmt-{MODEL_RUN}", "FAILED", failed_task="train", error="Training failed: quota"
    )
    run = jobs.get(f"vmt-{MODEL_RUN}")
    assert run.state == "failed" and run.stage == "train"
    assert run.error == "Training failed: quota"
    assert [t.name for t in run.tasks] == list(STAGE_ORDER[:3])
