"""Reading the trainer registry imports no SDK, torch or image library (a fresh process)."""

from __future__ import annotations

import subprocess

from tests.conftest import VMT, cli_env

HEAVY = (
    "torch",
    "PIL",
    "numpy",
    "labelbox",
    "google.protobuf",
    "google.cloud.aiplatform",
    "google.cloud.storage",
    "kfp",
)


def test_the_registry_loads_no_heavy_module() -> None:
    code = (
        "import sys\n"
        "from vmt.backends.registry import trainer_specs\n"
        "from vmt.model_types import models_response\n"
        "assert [s.name for s in trainer_specs()][:2] == ['local', 'vertex']\n"
        "assert 'local_object_detection' in models_response()\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [VMT[0], "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert "HEAVY []" in out.stdout, out.stdout
