"""The ``vmt`` command line. Thin: parse arguments, load settings, call one library function.

Each command lives in its own module under ``vmt.cli`` and registers itself through
``register(app)``; heavy imports (SDKs, torch, numba) happen inside the command bodies so
``vmt --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

from vmt.errors import VmtError

app = typer.Typer(
    name="vmt",
    help="Train detectors on Labelbox model runs (Vertex AI AutoML or a local PyTorch model).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_COMMAND_MODULES: tuple[str, ...] = (
    "version",
    "run",
    "runs",
    "resume",
    "cancel",
    "predict",
    "demo",
    "models",
    "serve",
    "serve_model",
    "ui",
    "convert",
    "evaluate",
    "prelabel",
    "select",
    "relabel",
    "publish",
    "pipeline",
)

_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    _state["debug"] = debug


for _name in _COMMAND_MODULES:
    importlib.import_module(f"vmt.cli.{_name}").register(app)


def main() -> None:
    from vmt.config import secret_env_names
    from vmt.logs import protect_last_resort

    protect_last_resort(secret_env_names())
    try:
        app()
    except VmtError as exc:
        if _state["debug"]:
            raise
        from rich.markup import escape

        from vmt.cli.console import err_console

        err_console.print(
            f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True
        )
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        from vmt.pipeline.failure import storage_message, storage_trouble

        if storage_trouble(exc) is None or _state["debug"]:
            raise
        import os

        from vmt.cli.console import err_console

        where = os.environ.get("VMT_STATE_DIR", ".vmt")
        err_console.print(f"error: {storage_message(exc, where)}", highlight=False, markup=False)
        sys.exit(1)
