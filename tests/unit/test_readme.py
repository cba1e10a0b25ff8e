"""The README documents every setting and every command, so it cannot drift from the code."""

from pathlib import Path

import typer.main

from vmt.cli import app
from vmt.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_table() -> None:
    table = README[README.index("## Configuration") :]
    missing = [name for name in Settings.model_fields if f"| {name} |" not in table]
    assert missing == []


def test_every_command_is_in_the_cli_reference() -> None:
    reference = README[README.index("## CLI reference") :]
    group = typer.main.get_group(app)
    missing = [name for name in group.commands if f"`vmt {name}" not in reference]
    assert missing == []


def test_every_reason_code_is_in_the_reason_table() -> None:
    from vmt.reasons import Reason

    table = README[README.index("## Reason codes") :]
    table = table[: table.index("\n## ")]
    listed = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert listed == {reason.value for reason in Reason}
