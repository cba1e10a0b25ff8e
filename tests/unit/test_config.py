from pathlib import Path

import pytest

from vmt.config import load_settings
from vmt.errors import ConfigError


def test_env_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "vmt.toml"
    toml.write_text('gcs_bucket = "from-toml"\ngcp_project = "p-toml"\n')
    monkeypatch.setenv("VMT_CONFIG", str(toml))
    monkeypatch.setenv("VMT_GCS_BUCKET", "from-env")
    settings = load_settings()
    assert settings.gcs_bucket == "from-env"
    assert settings.gcp_project == "p-toml"


def test_require_names_every_missing_setting() -> None:
    settings = load_settings()
    with pytest.raises(ConfigError) as info:
        settings.require("gcs_bucket", "labelbox_api_key", "gcp_region")
    assert "VMT_GCS_BUCKET" in info.value.message
    assert "LABELBOX_API_KEY" in info.value.message
    assert "VMT_GCP_REGION" not in info.value.message


def test_labelbox_key_from_sdk_variable_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELBOX_API_KEY", "sk-test-123")
    settings = load_settings()
    assert settings.labelbox_api_key is not None
    assert settings.labelbox_api_key.get_secret_value() == "sk-test-123"
    assert "sk-test-123" not in repr(settings)


def test_invalid_value_is_one_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMT_VERTEX_BUDGET_MILLI_NODE_HOURS", "5")
    with pytest.raises(ConfigError, match="vertex_budget_milli_node_hours"):
        load_settings()


@pytest.mark.parametrize(
    ("line", "env"),
    [
        ('labelbox_api_key = "sk-canary"', "LABELBOX_API_KEY"),
        ('LABELBOX_API_KEY = "sk-canary"', "LABELBOX_API_KEY"),
        ('webhook_secret = "sk-canary"', "VMT_WEBHOOK_SECRET"),
        ('API_TOKEN = "sk-canary"', "VMT_API_TOKEN"),
    ],
)
def test_a_secret_in_vmt_toml_is_refused_saying_where_it_belongs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, env: str
) -> None:
    toml = tmp_path / "vmt.toml"
    toml.write_text(f'gcs_bucket = "b"\n{line}\n')
    monkeypatch.setenv("VMT_CONFIG", str(toml))
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = info.value.message
    assert env in message and "environment" in message and "Secret Manager" in message
    assert str(toml) in message
    assert "sk-canary" not in message


def test_a_missing_secret_never_suggests_vmt_toml() -> None:
    settings = load_settings()
    for name in ("labelbox_api_key", "webhook_secret", "api_token"):
        with pytest.raises(ConfigError) as info:
            settings.require(name)
        assert "vmt.toml" not in info.value.message
        assert "Secret Manager" in info.value.message
    with pytest.raises(ConfigError, match=r"VMT_GCS_BUCKET \(or gcs_bucket in vmt.toml\)"):
        settings.require("gcs_bucket")


def test_the_secrets_are_the_secret_str_settings_stated_once() -> None:
    from pydantic import SecretStr

    from vmt.config import (
        SECRETS,
        Settings,
        configured_secrets,
        secret_env_names,
        secret_setting_names,
    )

    assert SECRETS == {
        "labelbox_api_key": "LABELBOX_API_KEY",
        "webhook_secret": "VMT_WEBHOOK_SECRET",
        "api_token": "VMT_API_TOKEN",
    }
    assert secret_setting_names() == {
        name
        for name, info in Settings.model_fields.items()
        if SecretStr in getattr(info.annotation, "__args__", ())
    }
    assert set(secret_env_names()) == {
        "LABELBOX_API_KEY",
        "VMT_LABELBOX_API_KEY",
        "VMT_WEBHOOK_SECRET",
        "VMT_API_TOKEN",
    }
    settings = Settings(labelbox_api_key="lb-key", api_token="tok-123")
    assert sorted(configured_secrets(settings)) == ["lb-key", "tok-123"]


def test_prediction_imports_stay_within_labelbox_upload_limit() -> None:
    """Labelbox takes at most 150,000 rows per upload task; the default makes few imports."""
    from pydantic import ValidationError

    from vmt.config import Settings

    assert 10_000 <= Settings().prediction_chunk_size <= 150_000
    with pytest.raises(ValidationError):
        Settings(prediction_chunk_size=150_001)
