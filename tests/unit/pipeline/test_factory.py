from pathlib import Path

import pytest

from vmt.backends.factory import build_backends, build_sink, build_source, build_trainer
from vmt.backends.files import FileSource, FolderSink
from vmt.backends.registry import trainer_names, trainer_spec
from vmt.config import Settings
from vmt.errors import ConfigError
from vmt.pipeline.run_config import BackendSpec, RunConfig, files_run_config


def test_files_run_builds_its_backends_from_the_stored_json() -> None:
    config = files_run_config(
        export="/data/export.ndjson",
        out_dir="/out",
        trainer="local",
        trainer_options={"train_seconds": 7.5, "seed": 3},
    )
    backends = build_backends(RunConfig.from_json(config.to_json()), Settings())
    assert isinstance(backends.source, FileSource)
    assert backends.source.export_path == Path("/data/export.ndjson")
    assert isinstance(backends.sink, FolderSink) and backends.sink.out_dir == Path("/out")
    assert backends.source.images_dir == Path("/data")  # relative row_data: the export's folder
    assert backends.trainer.name == "local"
    assert backends.trainer.config.train_seconds == 7.5  # type: ignore[attr-defined]
    assert backends.trainer.config.seed == 3  # type: ignore[attr-defined]


def test_images_dir_is_where_relative_paths_point() -> None:
    spec = BackendSpec(kind="files", options={"export_path": "/a/e.ndjson", "images_dir": "/img"})
    source = build_source(spec, Settings())
    assert isinstance(source, FileSource)
    assert source.images_dir == Path("/img")
    assert source.locate_image("sub/a.png") == "/img/sub/a.png"


@pytest.mark.parametrize(
    ("build", "spec", "message"),
    [
        (
            build_trainer,
            BackendSpec(kind="tpu"),
            f"unknown trainer 'tpu' (known: {', '.join(trainer_names())})",
        ),
        (
            build_trainer,
            BackendSpec(kind="local", options={"train_seconds": -1, "local_epochs": 0}),
            "trainer 'local': invalid options: train_seconds: Input should be greater than 0;"
            " local_epochs: Input should be greater than or equal to 1",
        ),
        (build_sink, BackendSpec(kind="s3"), "unknown sink 's3' (known: folder, labelbox)"),
        (build_sink, BackendSpec(kind="folder"), "folder backend: option 'out_dir' is missing"),
    ],
)
def test_unknown_kinds_and_missing_options_are_config_errors(
    build: object, spec: BackendSpec, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        build(spec, Settings())  # type: ignore[operator]
    assert str(err.value) == message


def test_a_stored_run_s_options_of_another_trainer_are_ignored() -> None:
    stored = BackendSpec(kind="vertex", options={"train_seconds": 3, "seed": 7})
    settings = Settings(gcp_project="p", gcs_bucket="b")
    assert build_trainer(stored, settings).name == "vertex"
    applied = trainer_spec("vertex").settings_for(settings, stored.options)
    assert (applied.train_seconds, applied.seed) == (settings.train_seconds, settings.seed)
