from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vmt.cli.ci_gate import (
    FAIL_UNDER_HELP,
    JSON_HELP,
    exit_on_verdict,
    print_json,
    thresholds_option,
)
from vmt.cli.convert import UnassignedPolicy
from vmt.cli.pipeline import ORCHESTRATOR_HELP, orchestrator_of, submit_pipeline_run
from vmt.cli.trainer_option import trainer_option, trainer_options_checked

if TYPE_CHECKING:
    from vmt.config import Settings


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        export: Path | None = typer.Option(
            None, "--export", help="Labelbox export file (NDJSON, any form `vmt convert` reads)."
        ),
        out: Path | None = typer.Option(
            None, "--out", help="Results folder (predictions, metrics, model); with --export."
        ),
        model_run: str | None = typer.Option(
            None,
            "--model-run",
            help="Labelbox model run id: export it, train, and load the results back into it "
            "(needs LABELBOX_API_KEY).",
        ),
        trainer: str = trainer_option("local"),
        images_dir: Path | None = typer.Option(
            None, "--images-dir", help="Folder that relative row_data paths are relative to."
        ),
        train_seconds: float | None = typer.Option(
            None, "--train-seconds", help="Training time budget (trainers with this option)."
        ),
        seed: int | None = typer.Option(
            None, "--seed", help="Random seed (trainers with this option)."
        ),
        unassigned: UnassignedPolicy | None = typer.Option(
            None,
            "--unassigned",
            case_sensitive=False,
            help="Rows without a split: skip them, put them in a split, or auto (sha256 of the "
            "data row id: 80/10/10). With --model-run the splits given are written back to the "
            "model run and later runs reuse them. Default: VMT_UNASSIGNED; unset: skip, except "
            "for an --export where no row has a split (a project export): auto.",
        ),
        dry_run: bool = typer.Option(
            False,
            "--dry-run",
            help="Cloud trainers with this option: stage, validate, import and print the cost, "
            "but do not launch training.",
        ),
        orchestrator: str | None = typer.Option(
            None, "--orchestrator", help="With --model-run: " + ORCHESTRATOR_HELP
        ),
        fail_under: list[str] | None = typer.Option(None, "--fail-under", help=FAIL_UNDER_HELP),
        as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    ) -> None:
        """Run the whole loop on an export file or a Labelbox model run: prepare, train,
        predict, evaluate, publish."""
        from vmt.backends.factory import build_backends, estimated_cost
        from vmt.cli.console import err_console
        from vmt.cli.run_display import finish_run
        from vmt.cli.run_summary import run_display, run_summary
        from vmt.config import load_settings
        from vmt.errors import InputError
        from vmt.pipeline.run_config import UNASSIGNED_OPTION, requested_run_config
        from vmt.pipeline.runner import Runner
        from vmt.pipeline.store import RunState

        thresholds = thresholds_option(fail_under)
        settings = load_settings()
        config = requested_run_config(
            export=export,
            out=out,
            model_run=model_run,
            trainer=trainer,
            images_dir=images_dir,
            train_seconds=train_seconds,
            seed=seed,
            dry_run=dry_run,
            unassigned=_named_policy(unassigned, settings),
        )
        config = trainer_options_checked(
            config, display_note=lambda text: err_console.print(text, highlight=False)
        )
        if orchestrator_of(settings, orchestrator) == "vertex-pipelines":
            if model_run is None:
                raise InputError("--orchestrator vertex-pipelines runs a Labelbox --model-run")
            submit_pipeline_run(
                settings,
                model_run=model_run,
                trainer=trainer,
                options=config.trainer.options,
                unassigned=config.source.options.get(UNASSIGNED_OPTION, "skip"),
            )
            return
        if model_run is not None:
            settings.require("labelbox_api_key")  # before a run is created that cannot start
        with run_display(json_logs=as_json or settings.log_json) as display:
            runner = Runner(settings, backends_factory=build_backends, observer=display)
            run_id = runner.create_run(config)
            display.note(f"run {run_id} (resume with: vmt resume {run_id})")
            cost = estimated_cost(settings, config.trainer)
            if cost is not None:
                display.note(f"{config.trainer.kind}: training costs at most ${cost:,.2f}")
            record = runner.advance(run_id)
        summary, verdict = run_summary(runner.store, record, thresholds)
        if as_json:
            print_json(summary)
        if not as_json or record.state is not RunState.COMPLETE:
            finish_run(runner.store, record)
        exit_on_verdict(verdict)


def _named_policy(flag: UnassignedPolicy | None, settings: Settings) -> str | None:
    """The policy the user named: ``--unassigned``, else ``VMT_UNASSIGNED`` when set; None
    leaves the choice to the run (``vmt.pipeline.run_config.UNASSIGNED_OPTION``)."""
    if flag is not None:
        return flag.value
    return settings.unassigned if "unassigned" in settings.model_fields_set else None
