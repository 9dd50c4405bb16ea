"""The shim's wire protocol and state files (pure parts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from berth.errors import Conflict, InvalidParameter
from berth.runtime.process import RuntimeFailure
from berth.runtime.shimproto import (
    FRAME_HEADER,
    ExitStatus,
    ShimConfig,
    check_response,
    decode_message,
    encode_frame,
    encode_message,
    error_response,
    read_exit,
    start_error_exit_code,
    write_exit,
)


def test_config_round_trip() -> None:
    cfg = ShimConfig(id="e1", mode="exec", container_id="c1", state_dir=Path("/run/berth/shims/e1"),
                     runtime="berth", runtime_root=Path("/run/berth/runtime"),
                     process={"args": ["sh"], "cwd": "/"}, init_pid=42, terminal=True, open_stdin=True)
    text = cfg.to_json()
    assert json.loads(text)["state_dir"] == "/run/berth/shims/e1"
    again = ShimConfig.from_json(text)
    assert again == cfg
    assert again.socket_path == Path("/run/berth/shims/e1/sock")


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "daemon"}, "invalid shim mode 'daemon'"),
    ({"state_dir": Path("/" + "x" * 110)}, "shim socket path too long"),
])
def test_config_rejects(kwargs: dict, message: str) -> None:
    base = {"id": "c1", "mode": "init", "container_id": "c1", "state_dir": Path("/run/s/c1")}
    with pytest.raises(InvalidParameter, match=message):
        ShimConfig(**{**base, **kwargs})


@pytest.mark.parametrize("message, code", [
    ('runc create failed: unable to start container process: exec: "foo": executable file not found in $PATH', 127),
    ('exec: "/nope": stat /nope: no such file or directory', 127),
    ('exec: "/etc/passwd": permission denied', 126),
    ("unable to apply cgroup configuration", 128),
])
def test_start_error_exit_code(message: str, code: int) -> None:
    assert start_error_exit_code(message) == code


def test_frames_and_messages() -> None:
    assert encode_frame(1, b"hi") == b"\x01\x00\x00\x00\x02hi"
    assert encode_frame(0, b"") == b"\x00\x00\x00\x00\x00"
    assert FRAME_HEADER.size == 5
    assert encode_message({"op": "kill", "signal": 9}) == b'{"op":"kill","signal":9}\n'
    assert decode_message(b'{"op":"state"}\n') == {"op": "state"}
    for bad in (b"[1]", b"nope"):
        with pytest.raises(InvalidParameter):
            decode_message(bad)


@pytest.mark.parametrize("exc", [RuntimeFailure("exec failed"), Conflict("not running"), InvalidParameter("bad")])
def test_errors_cross_the_wire(exc: Exception) -> None:
    response = json.loads(encode_message(error_response(exc)))
    assert response["ok"] is False
    with pytest.raises(type(exc)) as raised:
        check_response(response)
    assert str(raised.value) == str(exc)
    assert check_response({"ok": True, "pid": 1}) == {"ok": True, "pid": 1}


def test_exit_file(tmp_path: Path) -> None:
    assert read_exit(tmp_path) is None
    status = ExitStatus(137, True, "2024-01-02T03:04:05.123456789Z")
    write_exit(tmp_path, status)
    assert read_exit(tmp_path) == status
    assert json.loads((tmp_path / "exit.json").read_text()) == {
        "exit_code": 137, "oom_killed": True, "finished_at": "2024-01-02T03:04:05.123456789Z", "error": None}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exit.json"]
