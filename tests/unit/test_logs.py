import json
import logging

import pytest

from vmt.logs import JsonFormatter, SecretRedactor, configure_logging


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord(
        {"name": "vmt", "levelname": "INFO", "levelno": 20, "msg": msg, "args": args}
    )
    rec.__dict__.update(extra)
    return rec


def test_json_lines_carry_message_severity_and_extras() -> None:
    line = JsonFormatter().format(record("run %s created", "r1", run_id="r1"))
    entry = json.loads(line)
    assert entry["message"] == "run r1 created"
    assert entry["severity"] == "INFO"
    assert entry["run_id"] == "r1"
    assert entry["logger"] == "vmt"


def test_redactor_removes_secret_values_from_messages_and_args() -> None:
    redactor = SecretRedactor(["whsec-123456", "tok-abcdef"])
    rec = record("got header %s and token tok-abcdef", "sha1 with whsec-123456")
    redactor.filter(rec)
    assert rec.getMessage() == "got header sha1 with *** and token ***"


def test_configure_logging_json_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging(json=True, secrets=["supersecret"])
        logging.getLogger("vmt").info("key is %s", "supersecret")
        logging.getLogger("uvicorn.error").warning("from uvicorn")
        lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
    assert [x["message"] for x in lines] == ["key is ***", "from uvicorn"]
    assert lines[1]["logger"] == "uvicorn.error"


def test_redactor_removes_url_query_strings_where_signed_urls_carry_credentials() -> None:
    redactor = SecretRedactor([])
    rec = record(
        "HTTP Request: GET %s; retrying after 'reset': /img/a.png?X-Goog-Signature=abc123&b=2",
        "https://storage.googleapis.com/b/a.png?X-Goog-Credential=svc%2Fkey&X-Goog-Signature=f00",
    )
    redactor.filter(rec)
    message = rec.getMessage()
    assert "abc123" not in message and "f00" not in message and "svc" not in message
    assert "https://storage.googleapis.com/b/a.png?..." in message
    assert "/img/a.png?..." in message
    kept = record("what? nothing=here to hide")
    redactor.filter(kept)
    assert kept.getMessage() == "what? nothing=here to hide"


def test_redactor_covers_tracebacks_and_extra_fields() -> None:
    redactor = SecretRedactor(["whsec-123456"])
    try:
        raise ValueError("bad header whsec-123456 for /a?sig=deadbeef")
    except ValueError:
        import sys

        rec = record("failed", detail="secret whsec-123456", count=3)
        rec.exc_info = sys.exc_info()
    redactor.filter(rec)
    line = JsonFormatter().format(rec)
    assert "whsec-123456" not in line and "deadbeef" not in line
    entry = json.loads(line)
    assert "ValueError: bad header *** for /a?..." in entry["exception"]
    assert entry["detail"] == "secret ***" and entry["count"] == 3
    plain = logging.Formatter("%(message)s").format(rec)
    assert "whsec-123456" not in plain and "ValueError" in plain


def test_one_shot_commands_log_warnings_through_the_redactor() -> None:
    import subprocess
    import sys

    from tests.conftest import cli_env

    code = (
        "import logging, os\n"
        "from vmt.config import secret_env_names\n"
        "from vmt.logs import protect_last_resort\n"
        "protect_last_resort(secret_env_names())\n"
        "logging.getLogger('urllib3').warning("
        "'Retrying: /a.png?X-Goog-Signature=s3cr3tsig key %s', os.environ['LABELBOX_API_KEY'])\n"
        "logging.getLogger('vmt').info('not shown')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=cli_env(LABELBOX_API_KEY="lb-canary-key"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stderr == "Retrying: /a.png?... key ***\n"
