"""Settings that cannot be mistyped: every start-up failure is one line naming the variable, with the documented exit
code (2 bad settings, 1 a service the command needs is unreachable), the same in every command."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.cli import run_anonymizer

SAMPLE = Path(__file__).resolve().parents[2] / "processor" / "samples" / "grace_hopper.jpg"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ANONYMIZER_LOG_LEVEL", "verbose", "Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
        ("ANONYMIZER_KAFKA__SECURITY_PROTOCOL", "TLS", "Input should be 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT'"),
        ("ANONYMIZER_KAFKA__SASL_MECHANISM", "GSSAPI", "Input should be 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'"),
        ("ANONYMIZER_HTTP__PORT", "99999", "Input should be less than or equal to 65535"),
        ("ANONYMIZER_STORAGE__SCHEMES", "s3", "list and dict settings are JSON"),
        ("ANONYMIZER_OUTPUT__BOX_SCALE", "face=1.3", "list and dict settings are JSON"),
    ],
)
@pytest.mark.parametrize("command", ["image", "enqueue", "run", "serve", "infer"])
def test_a_mistyped_setting_is_one_line_naming_it_and_exit_2(
    command: str, variable: str, value: str, message: str, tmp_path: Path
) -> None:
    arguments = (command, "frames") if command == "enqueue" else (command,)
    done = run_anonymizer(*arguments, env={variable: value}, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"anonymizer: invalid settings: {variable}: ")
    assert message in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_lowercase_log_level_and_none_for_an_optional_limit_are_accepted(tmp_path: Path) -> None:
    env = {"ANONYMIZER_LOG_LEVEL": "debug", "ANONYMIZER_VIDEO__MAX_DURATION_S": "none"}
    done = run_anonymizer("image", "--dry-run", "--no-progress", str(SAMPLE), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"face":1' in done.stdout


@pytest.mark.parametrize("command", ["serve", "infer", "run"])
def test_a_port_in_use_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"ANONYMIZER_HTTP__PORT": str(port), "ANONYMIZER_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
        done = run_anonymizer(command, env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line == f"anonymizer: cannot listen on 127.0.0.1:{port}: address already in use"


@pytest.mark.parametrize("command", ["run", "enqueue"])
def test_an_unreachable_broker_is_exit_1_in_every_command(command: str, tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    env = {"ANONYMIZER_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1", "ANONYMIZER_HTTP__PORT": "0"}
    arguments = (command, str(tmp_path / "frames")) if command == "enqueue" else (command,)
    done = run_anonymizer(*arguments, env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("anonymizer: cannot reach 127.0.0.1:1")
