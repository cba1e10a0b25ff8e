"""The trainers vmt knows, each declared once as a ``TrainerSpec`` and registered by name.

Everything that lists, offers, checks, builds, prices or links trainers reads this registry:
``GET /models`` and ``vmt models`` (the model types each trainer offers), ``vmt run --trainer``
(validation and help), the service's availability check, the Vertex AI Pipelines app (trainers
whose steps run in the pipeline image), the dashboard (trainer title, recorded cost, console
links), the cost printed before a launch and the compiled pipeline's step links.

Adding a trainer is its own package with a ``spec.py`` declaring a ``TrainerSpec`` plus one line
in ``vmt.backends.builtin_trainers`` (or one ``register_trainer(spec)`` call, e.g. in a test).
Importing this module imports no SDK and no torch: builders are ``"module:attribute"`` strings
imported when a run builds its trainer.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from vmt.config import Settings
from vmt.errors import ConfigError

if TYPE_CHECKING:
    from vmt.formats.outbound_policy import OutboundRules
    from vmt.pipeline.protocols import Trainer

LinkStep = Literal["train", "predict"]


@dataclass(frozen=True, slots=True)
class ModelTypeOffer:
    """One entry of Labelbox's "Train model" menu: a key of ``GET /models`` and the
    ``modelType`` of ``POST /model_run`` (FORMATS.md 1.4)."""

    name: str
    description: str


@dataclass(frozen=True, slots=True)
class ResourceLink:
    """A cloud resource a run of this trainer records under handle ``handle`` (its resource
    name), linked from the dashboard (``label``) and from the pipeline step ``step``
    (``resource_type``: the ``GcpResources`` type the Vertex AI Pipelines console shows)."""

    handle: str
    label: str
    step: LinkStep
    resource_type: str


class TrainerOptions(BaseModel):
    """A trainer's options (``RunConfig.trainer.options``): each field is the name of the
    ``Settings`` field (``VMT_<NAME>``) it overrides for that run; None leaves the setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def settings_options(name: str, *fields: str) -> type[TrainerOptions]:
    """A ``TrainerOptions`` model whose fields are the ``Settings`` fields ``fields``, with
    their types and bounds (declared once, in ``vmt.config``), each optional."""
    definitions: dict[str, Any] = {}
    for setting in fields:
        info = Settings.model_fields[setting]
        typed: Any = info.annotation
        if info.metadata:
            typed = Annotated[(typed, *info.metadata)]
        definitions[setting] = (typed | None, None)
    model: type[TrainerOptions] = create_model(name, __base__=TrainerOptions, **definitions)
    return model


def _available(settings: Settings) -> str | None:
    return None


def _no_estimate(settings: Settings) -> float | None:
    return None


def _no_console(resource: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class TrainerSpec:
    """One trainer, declared once.

    ``builder``: ``"module:attribute"`` of a callable ``(Settings, *, outbound) -> Trainer``
    (a class; ``outbound``: the ``OutboundRules`` its image fetches follow, None for the
    service's), imported only when a run builds the trainer. ``unavailable(settings)``: why this
    deployment cannot run it (None: it can). ``estimate_cost(settings)``: the most a training
    may cost in USD before launch, with the run's options applied (None: nothing to pay).
    ``console_url(resource)``: a handle's resource name -> its page in a browser (None: no
    page). ``in_pipeline_image``: its steps run in the vmt image of Vertex AI Pipelines.
    """

    name: str
    title: str
    model_types: tuple[ModelTypeOffer, ...]
    builder: str
    options: type[TrainerOptions] = TrainerOptions
    extra: str | None = None
    unavailable: Callable[[Settings], str | None] = _available
    estimate_cost: Callable[[Settings], float | None] = _no_estimate
    resources: tuple[ResourceLink, ...] = ()
    console_url: Callable[[str], str | None] = _no_console
    in_pipeline_image: bool = False

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` checked against ``self.options`` -> the settings overrides they make
        (validated values, unset ones left out). Raises ``ConfigError`` naming every bad or
        unknown option."""
        try:
            parsed = self.options.model_validate(dict(options))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"trainer {self.name!r}: invalid options: {problems}") from None
        return parsed.model_dump(exclude_none=True)

    def split_options(self, options: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """``options`` -> (those this trainer takes, the names of the others): a command line
        with options for several trainers keeps each trainer's own and says what it left out."""
        fields = self.options.model_fields
        own = {name: value for name, value in options.items() if name in fields}
        return own, sorted(name for name in options if name not in fields)

    def settings_for(self, settings: Settings, options: Mapping[str, Any]) -> Settings:
        """``settings`` with this run's options applied: its own options validated (a bad
        value is a ``ConfigError``); others are ignored, as runs stored before trainers had
        typed options hold settings of other trainers (e.g. ``train_seconds`` on a Vertex
        run)."""
        own, _others = self.split_options(options)
        overrides = self.validate_options(own)
        return settings.model_copy(update=overrides) if overrides else settings

    def build(
        self,
        settings: Settings,
        options: Mapping[str, Any],
        *,
        outbound: OutboundRules | None = None,
    ) -> Trainer:
        """The trainer for a run with ``options`` (see ``settings_for``) whose fetches of
        user-supplied locations follow ``outbound`` (None: the service's rules). Raises
        ``ConfigError`` for a bad option value or a missing optional dependency (naming the
        extra to install)."""
        run_settings = self.settings_for(settings, options)
        module_name, _, attribute = self.builder.partition(":")
        try:
            builder = getattr(importlib.import_module(module_name), attribute)
        except ModuleNotFoundError as exc:
            hint = f' (pip install "vertex-model-training[{self.extra}]")' if self.extra else ""
            raise ConfigError(f"trainer {self.name!r} is not available: {exc}{hint}") from exc
        trainer: Trainer = builder(run_settings, outbound=outbound)
        return trainer


_lock = threading.Lock()
_specs: dict[str, TrainerSpec] = {}
_builtins_loaded = False


def register_trainer(spec: TrainerSpec) -> TrainerSpec:
    """Add ``spec``. Raises ``ConfigError`` when its name or one of its model types is taken
    by another trainer (registering the same spec again is a no-op)."""
    _load_builtins()
    with _lock:
        _check_free(spec)
        _specs[spec.name] = spec
    return spec


def unregister_trainer(name: str) -> None:
    """Remove the trainer ``name`` (tests); unknown names are ignored."""
    with _lock:
        _specs.pop(name, None)


def _check_free(spec: TrainerSpec) -> None:
    current = _specs.get(spec.name)
    if current is not None and current is not spec:
        raise ConfigError(f"trainer {spec.name!r} is already registered")
    for other in _specs.values():
        if other.name == spec.name:
            continue
        taken = {m.name for m in other.model_types} & {m.name for m in spec.model_types}
        if taken:
            raise ConfigError(
                f"model type(s) {', '.join(sorted(taken))} already offered by trainer "
                f"{other.name!r}"
            )


def _load_builtins() -> None:
    """Register ``vmt.backends.builtin_trainers`` once (a spec module must not read the
    registry while it is imported)."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _lock:
        if _builtins_loaded:
            return
        from vmt.backends.builtin_trainers import BUILTIN_TRAINERS

        for spec in BUILTIN_TRAINERS:
            _check_free(spec)
            _specs[spec.name] = spec
        _builtins_loaded = True


def trainer_specs() -> tuple[TrainerSpec, ...]:
    """Every registered trainer, built-ins first, then in registration order."""
    _load_builtins()
    with _lock:
        return tuple(_specs.values())


def trainer_names() -> tuple[str, ...]:
    return tuple(spec.name for spec in trainer_specs())


def trainer_spec(name: str) -> TrainerSpec:
    """The trainer called ``name``. Raises ``ConfigError`` naming the known ones otherwise."""
    _load_builtins()
    with _lock:
        spec = _specs.get(name)
    if spec is None:
        raise ConfigError(f"unknown trainer {name!r} (known: {', '.join(trainer_names())})")
    return spec


def trainers_help(prefix: str = "Training backend") -> str:
    """``--trainer``'s help: the registered trainers with their titles."""
    listed = "; ".join(f"{s.name} ({s.title})" for s in trainer_specs())
    return f"{prefix}: {listed}."


def model_type_offers() -> dict[str, tuple[ModelTypeOffer, TrainerSpec]]:
    """Every offered model type by name, with the trainer that runs it (registry order)."""
    return {offer.name: (offer, spec) for spec in trainer_specs() for offer in spec.model_types}


def resource_types() -> dict[str, str]:
    """Handle -> ``GcpResources`` resource type, over every trainer's resources."""
    return {link.handle: link.resource_type for s in trainer_specs() for link in s.resources}
