"""``vmt select`` and ``POST /runs/{id}/select`` expose the same selection options, with the
help the strategy registry states once (``vmt.selection.strategies.OPTION_HELP``)."""

from __future__ import annotations

import typer.main

from vmt.cli import app
from vmt.selection.strategies import BATCH_NAME_HELP, OPTION_HELP
from vmt.service.labelling import SelectRequest


def test_the_cli_and_the_service_take_every_selection_option() -> None:
    command = typer.main.get_command(app).commands["select"]  # type: ignore[attr-defined]
    cli_help = {
        param.opts[0].removeprefix("--").replace("-", "_"): param.help  # type: ignore[attr-defined]
        for param in command.params
    }
    fields = SelectRequest.model_fields
    for name, text in OPTION_HELP.items():
        assert cli_help.get(name) == text, name
        assert fields[name].description == text, name
    assert cli_help["batch"] == fields["batch"].description == BATCH_NAME_HELP
    assert {"strategy", "budget", "project", "priority", "prelabel"} <= set(cli_help) & set(fields)
