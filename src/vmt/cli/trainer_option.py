"""``--trainer``: any trainer of the registry (``vmt.backends.registry``), listed in the help.

The names are read each time the command line is built (help shown, arguments parsed), not when
the CLI module is imported, so a trainer registered later (a plug-in, a test) is listed and
accepted like a built-in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from typer.models import OptionInfo

if TYPE_CHECKING:
    from vmt.pipeline.run_config import RunConfig

TRAINER_HELP = "Training backend: one of the registered trainers (`vmt models` lists them)."


def _registered(value: str) -> str:
    from vmt.backends.registry import trainer_names

    known = trainer_names()
    if value not in known:
        raise typer.BadParameter(f"unknown trainer {value!r} (known: {', '.join(known)})")
    return value


class _TrainerOptionInfo(OptionInfo):
    """An option whose metavar lists the trainers registered when the command is built."""

    @property
    def metavar(self) -> str:
        from vmt.backends.registry import trainer_names

        return "[" + "|".join(trainer_names()) + "]"

    @metavar.setter
    def metavar(self, value: str | None) -> None:
        """Typer sets it from the constructor; the registry decides it."""


def trainer_option(default: str) -> Any:
    """``typer.Option`` for ``--trainer`` with ``default``, checked against the registry."""
    return _TrainerOptionInfo(
        default=default, param_decls=("--trainer",), parser=_registered, help=TRAINER_HELP
    )


def trainer_options_checked(config: RunConfig, *, display_note: Callable[[str], Any]) -> RunConfig:
    """``config`` with only the options its trainer takes (each checked: a bad value raises
    ``ConfigError``); an option it does not take (``--seed`` for ``vertex``) is left out and
    ``display_note`` says so."""
    from vmt.backends.registry import trainer_spec

    spec = trainer_spec(config.trainer.kind)
    own, others = spec.split_options(config.trainer.options)
    spec.validate_options(own)
    if not others:
        return config
    display_note(f"note: trainer {spec.name} takes no option {', '.join(others)}: left out")
    trainer = config.trainer.model_copy(update={"options": own})
    return config.model_copy(update={"trainer": trainer})
