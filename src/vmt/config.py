"""All configuration in one place: environment variables ``VMT_*`` and an optional ``vmt.toml``.

Precedence: explicit arguments > environment > ``vmt.toml`` (path in ``VMT_CONFIG``, default
``./vmt.toml``) > defaults. Secrets are ``SecretStr`` so they never print, and are read from the
environment only (where Cloud Run puts Secret Manager values): a secret found in ``vmt.toml`` is
refused with a ConfigError saying where it belongs. Code that needs a setting calls
:meth:`Settings.require`, which fails at start-up with a message naming what is missing rather
than deep inside a run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from vmt.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VMT_", extra="ignore", validate_default=True)

    # --- local state -----------------------------------------------------------------------
    state_dir: Path = Path(".vmt")
    log_json: bool = False

    # --- Labelbox --------------------------------------------------------------------------
    labelbox_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LABELBOX_API_KEY", "VMT_LABELBOX_API_KEY")
    )
    labelbox_endpoint: str | None = None
    labelbox_api_key_secret: str | None = None
    """Secret Manager version holding the API key, for processes without it in their environment
    (Vertex AI pipeline steps): projects/P/secrets/labelbox-api-key/versions/latest."""
    secret_manager_endpoint: str | None = None
    """Secret Manager REST endpoint override (tests)."""
    """GraphQL endpoint override (tests, private deployments), e.g. http://127.0.0.1:8080/graphql."""
    prediction_chunk_size: int = Field(default=50_000, ge=1, le=100_000)
    """Rows per prediction / metric import (Labelbox takes at most 150,000 per upload task): 200k
    rows of a 1M-row run make 2M upload rows, 40 imports, each waited on, not 1,000."""
    labelbox_poll_seconds: float = Field(default=5.0, ge=0)
    """Pause between look-ups of a running Labelbox export task or prediction import."""
    labelbox_wait_timeout_s: float = Field(default=7200.0, gt=0)
    """Longest wait for one Labelbox export task or prediction import to finish."""
    labelbox_retry_deadline_s: float = Field(default=300.0, gt=0)
    """Retries of one Labelbox call (rate limits, 5xx, network) stop after this many seconds."""

    # --- the labelling loop (pre-labels, selection, splits) ---------------------------------
    unassigned: Literal["skip", "training", "validation", "test", "auto"] = "skip"
    """The split of data rows the model run leaves unassigned: skip (left out, reported), a
    split, or auto (80/10/10 by a hash of the data row id); assigned splits are written back to
    the model run. ``vmt run --unassigned`` overrides it; the service uses it."""
    pool_dir: Path | None = None
    """Folder of pool export files (and global-keys files) the service may read:
    ``POST /runs/{id}/prelabel`` and ``/select`` name a file in it (never a path elsewhere);
    Labelbox pools (``labelbox-project:ID``, ``labelbox-dataset:ID``) need no file."""
    auto_prelabel_project: str | None = None
    """When set (with ``auto_prelabel_pool``), the service pre-labels this Labelbox project
    with every run that completes."""
    auto_prelabel_pool: str | None = None
    """The pool automatic pre-labelling predicts on: a file in ``pool_dir``, or
    ``labelbox-project:ID`` (usually the project itself: its rows without a label), or
    ``global-keys:FILE`` (a file in ``pool_dir``); see ``vmt.pool.pool_spec``."""

    # --- Google Cloud / Vertex AI ----------------------------------------------------------
    gcp_project: str | None = None
    gcp_region: str = "us-central1"
    gcs_bucket: str | None = None
    gcs_prefix: str = "vmt"
    vertex_api_endpoint: str | None = None
    """Vertex REST endpoint override (tests), e.g. http://127.0.0.1:9090."""
    vertex_model_type: str = "CLOUD_HIGH_ACCURACY_1"
    vertex_budget_milli_node_hours: int = Field(default=20_000, ge=1_000, le=900_000)
    vertex_confidence_threshold: float = Field(default=0.0, ge=0.0, le=1.0)
    vertex_max_predictions: int = Field(default=100, ge=1, le=500)
    staging_concurrency: int = Field(default=64, ge=1, le=1024)
    """Images in flight at once when staging or writing shards, all processes together."""
    staging_processes: int = Field(default=0, ge=0, le=256)
    """Processes that stage images and write shards (each with its share of
    ``staging_concurrency`` threads); 0: one per CPU core."""
    shard_size: int = Field(default=1000, ge=1, le=1_000_000)
    """Samples per training shard (``vmt.formats.shard_layout``)."""
    gcs_use_sources_in_place: bool = False
    """Train on Cloud Storage source images (``gs://`` or their https URLs) where they are (the
    Vertex service agent must read them); false: copy them inside Cloud Storage."""
    gcp_anonymous_credentials: bool = False
    """Anonymous credentials for GCS/Vertex (local fakes and emulators only)."""
    vertex_dry_run: bool = False
    """Stage, validate, import and print the cost, but do not launch training."""
    vertex_poll_seconds: float = Field(default=60.0, gt=0)
    """First delay between status polls of a Vertex job; grows to ``vertex_poll_max_seconds``."""
    vertex_poll_max_seconds: float = Field(default=600.0, gt=0)
    vertex_retry_deadline_s: float = Field(default=300.0, gt=0)
    """Retries of one Vertex or GCS call (429, 5xx, resets, timeouts) stop after this long."""
    stage_retry_deadline_s: float = Field(default=300.0, gt=0)
    """A stage that failed on a transient error is started again until this long has passed
    since its first attempt (then the run is FAILED, saying why)."""
    vertex_call_timeout_s: float = Field(default=60.0, gt=0)
    """Longest wait for one answer of the Vertex API (the SDK's own default is none: a hung
    connection would hang the run); a timed-out call is retried like a 503."""

    # --- Vertex AI custom training: model upload, serving, batch prediction (issue 21, C) ----
    vertex_custom_serve_host: str = "0.0.0.0"
    """Address ``vmt serve-model`` binds (Vertex's contract: 0.0.0.0; tests: 127.0.0.1)."""
    vertex_custom_predict_machine_type: str = "n1-standard-4"
    """Machine of the batch prediction replicas on a custom-trained model."""
    vertex_custom_predict_accelerator_type: str | None = None
    """e.g. NVIDIA_TESLA_T4 (with ``vertex_custom_predict_accelerator_count`` >= 1); unset: CPU."""
    vertex_custom_predict_accelerator_count: int = Field(default=0, ge=0, le=8)
    vertex_custom_predict_replicas: int = Field(default=1, ge=1, le=1000)
    """Most replicas a batch prediction job on a custom-trained model may scale to."""
    vertex_custom_predict_batch_size: int = Field(default=16, ge=1, le=1000)
    """Instances Vertex sends the serving container in one predict request."""

    # --- Vertex AI Pipelines (--orchestrator vertex-pipelines) -------------------------------
    orchestrator: Literal["local", "vertex-pipelines"] = "local"
    """Who advances runs: this process (local) or Vertex AI Pipelines (``vmt run``, ``vmt runs``,
    ``vmt cancel``, ``vmt serve``; each has ``--orchestrator``)."""
    pipeline_image: str | None = None
    """The vmt image the pipeline steps run in, e.g. us-central1-docker.pkg.dev/P/vmt/vmt:0.1.0."""
    pipeline_template: str | None = None
    """A compiled pipeline (`vmt pipeline compile`): path, gs:// or Artifact Registry URI;
    unset: compiled for ``pipeline_image`` when a run is submitted."""
    pipeline_root: str | None = None
    """gs:// folder for pipeline outputs and run folders; unset: gs://<bucket>/<prefix>/pipelines."""
    pipeline_service_account: str | None = None
    """The service account pipeline steps run as (needs Vertex AI, GCS and the secrets)."""

    # --- outbound policy: what image locations of data rows may reach -----------------------
    outbound_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Host names (``images.corp``, ``*.corp``), addresses or networks (``10.2.0.0/16``) that
    image URLs may reach although private; comma-separated in ``VMT_OUTBOUND_ALLOW``. Runs made
    by the service or from a Labelbox model run otherwise fetch only public addresses."""
    outbound_allow_http: bool = False
    """Let those runs fetch ``http://`` images too (default: ``https://`` and ``gs://`` only)."""

    # --- service ---------------------------------------------------------------------------
    webhook_secret: SecretStr | None = None
    api_token: SecretStr | None = None
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Host names ``vmt serve`` / ``vmt ui`` answer to, besides loopback names when bound to
    loopback (DNS rebinding is refused); empty on a non-loopback address: any Host."""
    trusted_proxies: str = "127.0.0.1"
    """Addresses whose ``X-Forwarded-Proto``/``-For`` are believed (uvicorn's
    ``forwarded_allow_ips``; ``*`` behind Cloud Run, whose front end is the only way in)."""
    request_body_timeout_s: float = Field(default=10.0, gt=0, le=600)
    """A request body not fully received this long after it starts is cut (408)."""
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30)
    """How long a dashboard login lasts."""
    api_docs: bool = False
    """Serve ``/docs`` (Swagger UI, scripts from a CDN) and ``/redoc``; ``/openapi.json`` is
    always served."""

    # --- local trainer ---------------------------------------------------------------------
    train_seconds: float = Field(default=270.0, gt=0)
    seed: int = 0
    local_epochs: int | None = Field(default=None, ge=1)
    """Fixed epoch count (reproducible runs); unset: as many as fit in ``train_seconds``."""
    local_device: str | None = None
    """``cpu`` or ``cuda``; unset: CUDA when present."""

    @field_validator("outbound_allow", "allowed_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("VMT_CONFIG", "vmt.toml"))
        return (
            init_settings,
            env_settings,
            _SecretFreeToml(settings_cls, toml_file=toml_path),
        )

    def require(self, *names: str) -> None:
        """Raise ConfigError naming every listed setting that is unset or empty."""
        missing = [name for name in names if _is_unset(getattr(self, name))]
        if missing:
            described = ", ".join(_describe(name) for name in missing)
            raise ConfigError(f"missing setting(s): {described}")


def _secret_env_names() -> dict[str, tuple[str, ...]]:
    """Each ``SecretStr`` setting -> the environment variables it is read from, first the one
    to name in messages (its first alias, else ``VMT_<NAME>``)."""
    found: dict[str, tuple[str, ...]] = {}
    for name, info in Settings.model_fields.items():
        if SecretStr not in getattr(info.annotation, "__args__", (info.annotation,)):
            continue
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else ()
        found[name] = tuple(str(c) for c in choices) or (f"VMT_{name.upper()}",)
    return found


SECRET_ENV: dict[str, tuple[str, ...]] = _secret_env_names()
"""The secrets, stated once (the ``SecretStr`` settings above): setting name -> the
environment variables it may come from."""
SECRETS = {name: envs[0] for name, envs in SECRET_ENV.items()}
"""Settings that are secrets, with the environment variable each is read from."""


def secret_setting_names() -> frozenset[str]:
    """Names of the settings that hold secrets (never in a pipeline parameter or a file)."""
    return frozenset(SECRET_ENV)


def secret_env_names() -> tuple[str, ...]:
    """Every environment variable a secret may be read from (log redaction before settings
    are loaded)."""
    return tuple(env for envs in SECRET_ENV.values() for env in envs)


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret value set in ``settings`` (for log redaction)."""
    values = (getattr(settings, name) for name in SECRET_ENV)
    return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


class _SecretFreeToml(TomlConfigSettingsSource):
    """``vmt.toml`` without secrets: a file that holds one is refused, naming where it goes."""

    def __call__(self) -> dict[str, Any]:
        keys = {str(key).lower() for key in self.toml_data}
        found = [name for name, env in SECRETS.items() if {name, env.lower()} & keys]
        if found:
            where = ", ".join(f"{name} -> {SECRETS[name]}" for name in found)
            raise ConfigError(
                f"secret(s) found in {self.toml_file_path}: {where}; secrets are read from the"
                " environment only (on Cloud Run, from Secret Manager with --set-secrets)."
                " Remove them from the file and set the environment variable instead"
            )
        return super().__call__()


def _is_unset(value: Any) -> bool:
    if isinstance(value, SecretStr):
        return not value.get_secret_value()
    return value is None or value == ""


def _describe(name: str) -> str:
    if name in SECRETS:
        return f"{SECRETS[name]} (a secret: from the environment or Secret Manager)"
    return f"VMT_{name.upper()} (or {name} in vmt.toml)"


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one readable ConfigError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
