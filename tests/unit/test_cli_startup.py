import subprocess

from tests.conftest import VMT, cli_env


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys, runpy; sys.argv=['vmt','--help']\n"
        "try:\n    runpy.run_module('vmt', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch','numba','labelbox','google.cloud.aiplatform',"
        "'google.cloud.storage','fastapi','uvicorn') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [VMT[0], "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert "HEAVY []" in out.stdout


def test_version_command() -> None:
    out = subprocess.run([*VMT, "version"], capture_output=True, text=True, env=cli_env())
    assert out.returncode == 0
    assert out.stdout.strip() == "0.1.0"
