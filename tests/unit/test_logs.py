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
