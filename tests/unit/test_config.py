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
