"""The shim's configuration, its state directory and its wire protocol (shared by shim and client).

State directory (``<exec-root>/shims/<id>/``): ``sock`` (the unix socket the shim serves),
``shim.pid``, ``shim.log`` (the shim's own errors) and, once the process has ended,
``exit.json`` (an :class:`ExitStatus`, written atomically).

Protocol, one request per connection on ``sock``:

* the client sends one JSON object on one line: ``{"op": "start"}``, ``{"op": "kill",
  "signal": 15}``, ``{"op": "resize", "height": 24, "width": 80}``, ``{"op": "state"}``,
  ``{"op": "wait"}``, ``{"op": "attach", "stdin": true, "stdout": true, "stderr": true}``;
* the shim answers one JSON line: ``{"ok": true, ...}`` or ``{"ok": false, "kind": K,
  "error": "message"}`` where K is ``runtime`` (:class:`RuntimeFailure`), ``conflict`` or
  ``invalid``. ``wait`` answers when the process has ended, with the exit status;
* after a successful ``attach`` the connection carries frames from the shim,
  ``[stream:1][length:4, big-endian][data]`` (stream 1 stdout, 2 stderr, 0 control: the exit
  status as JSON, sent last before the shim closes), and raw stdin bytes from the client; the
  client's half-close is stdin's EOF.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from berth.errors import Conflict, InvalidParameter
from berth.runtime.process import RuntimeFailure

SOCKET_NAME = "sock"
PID_FILE = "shim.pid"
EXIT_FILE = "exit.json"
LOG_FILE = "shim.log"
MAX_SOCKET_PATH = 107
"""sun_path holds 108 bytes, the terminating NUL included (unix(7))."""

STREAM_CONTROL = 0
STREAM_STDOUT = 1
STREAM_STDERR = 2
FRAME_HEADER = struct.Struct(">BI")

OPS = ("start", "kill", "resize", "state", "wait", "attach")


@dataclass
class ShimConfig:
    """Everything one shim needs; JSON-serialisable (:meth:`to_json` / :meth:`from_json`).

    ``id`` names the shim (container ID for ``mode="init"``, exec ID for ``mode="exec"``);
    ``container_id`` is the runtime's container. ``bundle`` (init) holds ``config.json``;
    ``process`` (exec) is an OCI runtime-spec ``process`` object and ``init_pid`` the host PID
    of the container's init. ``log_path`` is the json-file log (init only). ``runtime`` is
    ``"berth"`` or ``"runc"`` and ``runtime_root`` its state directory.
    """

    id: str
    mode: str
    container_id: str
    state_dir: Path
    runtime: str = "runc"
    runtime_root: Path | None = None
    bundle: Path | None = None
    process: dict[str, Any] | None = None
    init_pid: int | None = None
    log_path: Path | None = None
    terminal: bool = False
    open_stdin: bool = False
    stdin_once: bool = False

    def __post_init__(self) -> None:
        for name in ("state_dir", "runtime_root", "bundle", "log_path"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                setattr(self, name, Path(value))
        if self.mode not in ("init", "exec"):
            raise InvalidParameter(f"invalid shim mode {self.mode!r}")
        if len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH:
            raise InvalidParameter(f"shim socket path too long: {self.socket_path}")

    @property
    def socket_path(self) -> Path:
        """Path of the shim's unix socket."""
        return self.state_dir / SOCKET_NAME

    def to_json(self) -> str:
        """The configuration as one JSON object (paths as strings)."""
        return json.dumps({f.name: _plain(getattr(self, f.name)) for f in fields(self)})

    @classmethod
    def from_json(cls, text: str | bytes) -> ShimConfig:
        """Inverse of :meth:`to_json`. Raises ValueError/TypeError on malformed input."""
        return cls(**json.loads(text))


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended: ``exit_code`` (128+N when killed by signal N), ``oom_killed``,
    ``finished_at`` (RFC3339Nano UTC) and ``error`` (the runtime's message when it never ran)."""

    exit_code: int
    oom_killed: bool = False
    finished_at: str = "0001-01-01T00:00:00Z"
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExitStatus:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        return cls(int(data["exit_code"]), bool(data.get("oom_killed", False)),
                   str(data.get("finished_at", "0001-01-01T00:00:00Z")), data.get("error"))


def start_error_exit_code(message: str) -> int:
    """The exit code docker records for a process the runtime could not start.

    Docker's daemon (``daemon/start.go``) sets 126 for "permission denied" (the program cannot
    be invoked), 127 for "executable file not found"/"no such file or directory", 128 otherwise;
    "is a directory" counts as 126 too, as the docker CLI reads it. The shim records this code
    and the container service reports the failure with it (126/127: a bad request, else 500).
    """
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 128


@dataclass(frozen=True)
class ShimState:
    """Answer to ``state``: host ``pid`` of the process (0 before it exists), ``status``
    ``created``/``running``/``stopped`` and ``exit_code`` once stopped."""

    pid: int
    status: str
    exit_code: int | None = None


@dataclass(frozen=True)
class WireError:
    """A failed request as carried on the wire: ``kind`` selects the exception class."""

    kind: str
    message: str

    @classmethod
    def from_exception(cls, exc: Exception) -> WireError:
        """Map an exception raised by a request handler to its wire form."""
        if isinstance(exc, RuntimeFailure):
            return cls("runtime", exc.message)
        if isinstance(exc, Conflict):
            return cls("conflict", exc.message)
        return cls("invalid", str(exc))

    def to_exception(self) -> Exception:
        """The exception the client raises."""
        if self.kind == "runtime":
            return RuntimeFailure(self.message)
        if self.kind == "conflict":
            return Conflict(self.message)
        return InvalidParameter(self.message)


def encode_message(message: dict[str, Any]) -> bytes:
    """One request or response line."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode_message(line: bytes) -> dict[str, Any]:
    """Parse one request or response line. Raises InvalidParameter when it is not a JSON object."""
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise InvalidParameter(f"malformed shim message: {exc}") from None
    if not isinstance(message, dict):
        raise InvalidParameter("malformed shim message: not an object")
    return message


def error_response(exc: Exception) -> dict[str, Any]:
    """The response line for a failed request."""
    wire = WireError.from_exception(exc)
    return {"ok": False, "kind": wire.kind, "error": wire.message}


def check_response(response: dict[str, Any]) -> dict[str, Any]:
    """Return ``response`` when it says ok; otherwise raise the exception it carries."""
    if response.get("ok"):
        return response
    raise WireError(str(response.get("kind", "invalid")), str(response.get("error", ""))).to_exception()


def encode_frame(stream: int, data: bytes) -> bytes:
    """One attach frame: header then ``data``."""
    return FRAME_HEADER.pack(stream, len(data)) + data


def write_exit(state_dir: Path, status: ExitStatus) -> None:
    """Write ``exit.json`` atomically (temp file, fsync, rename, fsync of the directory)."""
    final = state_dir / EXIT_FILE
    temp = state_dir / f".{EXIT_FILE}.tmp"
    with open(temp, "w") as out:
        json.dump(status.to_dict(), out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, final)
    dir_fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_exit(state_dir: str | os.PathLike[str]) -> ExitStatus | None:
    """The exit status a shim left in ``state_dir``, or None when there is none (yet)."""
    try:
        with open(Path(state_dir) / EXIT_FILE) as source:
            return ExitStatus.from_dict(json.load(source))
    except FileNotFoundError:
        return None
