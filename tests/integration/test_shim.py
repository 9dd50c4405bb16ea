"""Shims started by the fork server, driven with ShimClient, running busybox under runc."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

try:  # tests/ is a package in the final layout; a plain directory before that
    from .test_shim_support import Sandbox, open_sandbox, process_alive, wait_until
except ImportError:
    from test_shim_support import Sandbox, open_sandbox, process_alive, wait_until  # type: ignore[no-redef]

from berth.errors import Conflict, InvalidParameter
from berth.runtime.forkserver import ForkServer
from berth.runtime.jsonlog import read_log
from berth.runtime.process import RuntimeFailure
from berth.runtime.shimclient import AttachStream, ShimClient, ShimGone, read_exit
from berth.runtime.shimproto import ExitStatus, ShimConfig
from berth.timeutil import parse_rfc3339_ns

COUNT_LINES = "i=0; while [ $i -lt {n} ]; do echo line $i; i=$((i+1)); sleep {pause}; done"


@pytest.fixture(scope="module")
def forkserver() -> Iterator[ForkServer]:
    server = ForkServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox(busybox_rootfs) -> Iterator[Sandbox]:
    with open_sandbox(busybox_rootfs) as box:
        yield box


def run(coro: Any, timeout: float = 30.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def spawn(server: ForkServer, box: Sandbox, cfg: ShimConfig) -> ShimClient:
    box.pids.append(await server.aspawn_shim(cfg))
    return ShimClient(cfg.state_dir)


async def collect(stream: AttachStream) -> list[tuple[int, bytes]]:
    frames = []
    while (frame := await stream.read()) is not None:
        frames.append(frame)
    return frames


def log_of(cfg: ShimConfig) -> list[tuple[str, bytes]]:
    assert cfg.log_path is not None
    return [(entry.stream, entry.data) for entry in read_log(cfg.log_path)]


def test_pipes_output_to_log_and_attached_client(forkserver: ForkServer, sandbox: Sandbox) -> None:
    cfg = sandbox.init_config(["sh", "-c", "echo out1; echo err1 >&2; echo out2; printf tail"])

    async def scenario() -> tuple[list[tuple[int, bytes]], AttachStream]:
        client = await spawn(forkserver, sandbox, cfg)
        state = await client.state()
        assert state.status == "created" and state.pid > 0
        stream = await client.attach(stdin=False, stdout=True, stderr=True)
        assert await client.start() == state.pid
        return await collect(stream), stream

    frames, stream = run(scenario())
    assert b"".join(data for s, data in frames if s == 1) == b"out1\nout2\ntail"
    assert b"".join(data for s, data in frames if s == 2) == b"err1\n"
    assert stream.exit_status is not None and stream.exit_status.exit_code == 0
    assert sorted(log_of(cfg)) == [("stderr", b"err1\n"), ("stdout", b"out1\n"), ("stdout", b"out2\n"),
                                   ("stdout", b"tail")]
    raw = cfg.log_path.read_bytes().splitlines() if cfg.log_path else []
    assert json.loads(raw[-1])["log"] == "tail"
    status = read_exit(cfg.state_dir)
    assert status == stream.exit_status
    assert abs(parse_rfc3339_ns(status.finished_at) - time.time_ns()) < 60e9
    assert wait_until(lambda: not cfg.socket_path.exists())


@pytest.mark.parametrize("script, sig, code", [
    ("exit 3", None, 3),
    ("true", None, 0),
    ("sleep 100", signal.SIGKILL, 137),
    ("trap 'exit 7' TERM; while :; do sleep 0.05; done", signal.SIGTERM, 7),
])
def test_exit_codes(forkserver: ForkServer, sandbox: Sandbox, script: str, sig: int | None, code: int) -> None:
    cfg = sandbox.init_config(["sh", "-c", script])

    async def scenario() -> ExitStatus:
        client = await spawn(forkserver, sandbox, cfg)
        await client.start()
        if sig is not None:
            await asyncio.sleep(0.2)
            assert (await client.state()).status == "running"
            await client.kill(sig)
        return await client.wait()

    status = run(scenario())
    assert (status.exit_code, status.oom_killed, status.error) == (code, False, None)
    assert read_exit(cfg.state_dir) == status


def test_tty_session(forkserver: ForkServer, sandbox: Sandbox) -> None:
    cfg = sandbox.init_config(["sh"], terminal=True, open_stdin=True, stdin_once=True)

    async def scenario() -> tuple[bytes, ExitStatus | None]:
        client = await spawn(forkserver, sandbox, cfg)
        stream = await client.attach(stdin=True, stdout=True, stderr=True)
        await client.resize(30, 100)
        await client.start()
        stream.write(b"stty size; echo $((6*7)); tty\n")
        stream.write(b"exit 4\n")
        await stream.drain()
        frames = await collect(stream)
        assert {s for s, _ in frames} == {1}
        return b"".join(data for _, data in frames), stream.exit_status

    output, status = run(scenario())
    assert b"30 100\r\n" in output
    assert b"42\r\n" in output
    assert b"/dev/pts/0\r\n" in output
    assert status is not None and status.exit_code == 4
    logged = log_of(cfg)
    assert {stream for stream, _ in logged} == {"stdout"}
    assert ("stdout", b"42\r\n") in logged


def test_stdin_once_closes_the_pipe(forkserver: ForkServer, sandbox: Sandbox) -> None:
    cfg = sandbox.init_config(["sh", "-c", "cat; echo done"], open_stdin=True, stdin_once=True)

    async def scenario() -> tuple[list[tuple[int, bytes]], ExitStatus]:
        client = await spawn(forkserver, sandbox, cfg)
        stream = await client.attach(stdin=True, stdout=True, stderr=False)
        await client.start()
        stream.write(b"abc\n" * 1000)
        stream.close_stdin()
        return await collect(stream), await client.wait()

    frames, status = run(scenario())
    assert b"".join(data for _, data in frames) == b"abc\n" * 1000 + b"done\n"
    assert status.exit_code == 0
    assert log_of(cfg) == [("stdout", b"abc\n")] * 1000 + [("stdout", b"done\n")]


def test_stdin_backpressure_keeps_every_byte(forkserver: ForkServer, sandbox: Sandbox) -> None:
    cfg = sandbox.init_config(["sh", "-c", "sleep 0.5; wc -c"], open_stdin=True, stdin_once=True)
    payload = bytes(range(256)) * (16 << 10)  # 4 MiB, more than the shim queues

    async def scenario() -> bytes:
        client = await spawn(forkserver, sandbox, cfg)
        stream = await client.attach(stdin=True, stdout=True, stderr=True)
        await client.start()
        stream.write(payload)
        await stream.drain()
        stream.close_stdin()
        return b"".join(data for _, data in await collect(stream))

    assert run(scenario()).strip() == str(len(payload)).encode()


def test_exit_while_no_client_is_connected(forkserver: ForkServer, sandbox: Sandbox) -> None:
    cfg = sandbox.init_config(["sh", "-c", "sleep 0.3; echo bye; exit 42"])
    client = ShimClient(cfg.state_dir)

    async def scenario() -> int:
        await spawn(forkserver, sandbox, cfg)
        return await client.start()

    run(scenario())
    assert wait_until(lambda: read_exit(cfg.state_dir) is not None and not client.is_alive())
    status = read_exit(cfg.state_dir)
    assert status is not None and status.exit_code == 42
    assert run(client.wait()) == status
    with pytest.raises(ShimGone):
        run(client.kill(signal.SIGTERM))
    assert log_of(cfg) == [("stdout", b"bye\n")]


def test_requests_out_of_order(forkserver: ForkServer, sandbox: Sandbox) -> None:
    cfg = sandbox.init_config(["sleep", "100"])

    async def scenario() -> None:
        client = await spawn(forkserver, sandbox, cfg)
        with pytest.raises(InvalidParameter):
            await client.resize(10, 10)  # no tty
        with pytest.raises(InvalidParameter):
            await client.kill(0)
        await client.start()
        with pytest.raises(Conflict):
            await client.start()
        await client.kill(signal.SIGKILL)
        assert (await client.wait()).exit_code == 137
        try:  # the shim lingers briefly after the exit: an attach then gets just the status
            late = await client.attach(stdin=False, stdout=True, stderr=True)
        except ShimGone:
            return
        assert await collect(late) == []
        assert late.exit_status is not None and late.exit_status.exit_code == 137

    run(scenario())


def test_create_failure_is_reported_by_spawn(forkserver: ForkServer, sandbox: Sandbox) -> None:
    cfg = sandbox.init_config(["nonexist"])
    with pytest.raises(RuntimeFailure) as failure:
        forkserver.spawn_shim(cfg)
    assert failure.value.message == ('runc create failed: unable to start container process: '
                                     'exec: "nonexist": executable file not found in $PATH')
    status = read_exit(cfg.state_dir)
    assert status is not None and (status.exit_code, status.error) == (127, failure.value.message)
    assert not cfg.socket_path.exists()


def test_unknown_runtime_is_reported_by_spawn(forkserver: ForkServer, sandbox: Sandbox) -> None:
    cfg = sandbox.init_config(["true"])
    cfg.runtime = "nope"
    with pytest.raises(RuntimeFailure, match="unknown runtime: nope"):
        forkserver.spawn_shim(cfg)


def test_exec_mode(forkserver: ForkServer, sandbox: Sandbox) -> None:
    container = sandbox.init_config(["sleep", "100"])

    async def scenario() -> None:
        init = await spawn(forkserver, sandbox, container)
        init_pid = await init.start()
        cfg = sandbox.exec_config(container, init_pid, ["sh", "-c", "read x; echo got $x; hostname; exit 5"],
                                  open_stdin=True)
        execd = await spawn(forkserver, sandbox, cfg)
        assert (await execd.state()).status == "created"
        stream = await execd.attach(stdin=True, stdout=True, stderr=True)
        stream.write(b"hi\n")  # before the process exists: kept for it
        await stream.drain()
        assert await execd.start() > 0
        frames = await collect(stream)
        assert b"".join(data for _, data in frames) == f"got hi\n{container.id[-12:]}\n".encode()
        assert (await execd.wait()).exit_code == 5
        assert read_exit(cfg.state_dir).exit_code == 5
        assert cfg.log_path is None

        tty_cfg = sandbox.exec_config(container, init_pid, ["tty"], terminal=True)
        tty = await spawn(forkserver, sandbox, tty_cfg)
        tty_stream = await tty.attach(stdin=False, stdout=True, stderr=True)
        await tty.start()
        assert b"".join(data for _, data in await collect(tty_stream)).startswith(b"/dev/pts/")

        bad_cfg = sandbox.exec_config(container, init_pid, ["nope"])
        bad = await spawn(forkserver, sandbox, bad_cfg)
        with pytest.raises(RuntimeFailure, match='exec: "nope": executable file not found'):
            await bad.start()
        status = await bad.wait()
        assert (status.exit_code, "nope" in (status.error or "")) == (127, True)

        assert (await init.state()).status == "running"
        await init.kill(signal.SIGKILL)
        assert (await init.wait()).exit_code == 137

    run(scenario())


def test_oom_kill_is_reported(forkserver: ForkServer, sandbox: Sandbox) -> None:
    cfg = sandbox.init_config(["sh", "-c", "x=0123456789abcdef; while :; do x=$x$x; done"],
                              memory_limit=32 << 20)

    async def scenario() -> ExitStatus:
        client = await spawn(forkserver, sandbox, cfg)
        await client.start()
        return await client.wait()

    status = run(scenario())
    assert (status.exit_code, status.oom_killed) == (137, True)


STAND_IN = textwrap.dedent("""
    import asyncio, json, sys
    from berth.runtime.forkserver import ForkServer
    from berth.runtime.shimclient import ShimClient
    from berth.runtime.shimproto import ShimConfig

    cfg = ShimConfig.from_json(sys.argv[1])
    server = ForkServer()
    server.start()

    async def main():
        pid = await server.aspawn_shim(cfg)
        client = ShimClient(cfg.state_dir)
        stream = await client.attach(False, True, True)
        await client.start()
        print(json.dumps({"shim": pid, "forkserver": server.pid}), flush=True)
        while (frame := await stream.read()) is not None:
            print(json.dumps({"frame": frame[1].decode()}), flush=True)

    asyncio.run(main())
""")


def test_shim_outlives_its_daemon_and_a_new_client_reconnects(sandbox: Sandbox) -> None:
    """A daemon stand-in (own process, own fork server) spawns and attaches, then is SIGKILLed:
    the fork server goes with it, the shim keeps logging; a new client reconnects and waits."""
    cfg = sandbox.init_config(["sh", "-c", COUNT_LINES.format(n=40, pause=0.05)])
    daemon = subprocess.Popen([sys.executable, "-c", STAND_IN, cfg.to_json()], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert daemon.stdout is not None
        pids = json.loads(daemon.stdout.readline())
        sandbox.pids.extend([pids["shim"], pids["forkserver"]])
        assert json.loads(daemon.stdout.readline()) == {"frame": "line 0\n"}
    finally:
        daemon.kill()
        daemon.wait()
    assert wait_until(lambda: not process_alive(pids["forkserver"]))
    assert process_alive(pids["shim"])
    client = ShimClient(cfg.state_dir)
    assert client.is_alive()

    async def reconnect() -> tuple[list[tuple[int, bytes]], ExitStatus]:
        state = await client.state()
        assert state.status == "running"
        stream = await client.attach(stdin=False, stdout=True, stderr=True)
        return await collect(stream), await client.wait()

    frames, status = run(reconnect())
    assert status.exit_code == 0
    assert frames and frames[-1] == (1, b"line 39\n")
    assert log_of(cfg) == [("stdout", f"line {i}\n".encode()) for i in range(40)]
    assert wait_until(lambda: not process_alive(pids["shim"]))


def test_shim_killed_without_exit_status(forkserver: ForkServer, sandbox: Sandbox) -> None:
    cfg = sandbox.init_config(["sleep", "100"])

    async def scenario() -> ExitStatus:
        client = await spawn(forkserver, sandbox, cfg)
        await client.start()
        waiter = asyncio.create_task(client.wait())
        await asyncio.sleep(0.2)
        os.kill(sandbox.pids[-1], signal.SIGKILL)
        return await waiter

    status = run(scenario())
    assert status.exit_code == 137 and status.error and "without an exit status" in status.error


def test_berth_executor_through_the_shim(forkserver: ForkServer, sandbox: Sandbox) -> None:
    """The same shim drives berth's own runtime, chosen by name (smoke test of the contract)."""
    pytest.importorskip("berth.runtime.executor")
    cfg = sandbox.init_config(["sh", "-c", "echo out; echo err >&2; exit 3"])
    cfg.runtime, cfg.runtime_root = "berth", sandbox.base / "berth"
    bad = sandbox.init_config(["nonexist"])
    bad.runtime, bad.runtime_root = "berth", sandbox.base / "berth"

    async def scenario() -> None:
        client = await spawn(forkserver, sandbox, cfg)
        stream = await client.attach(stdin=False, stdout=True, stderr=True)
        await client.start()
        assert sorted(await collect(stream)) == [(1, b"out\n"), (2, b"err\n")]
        assert (await client.wait()).exit_code == 3
        try:  # the executor may report a missing program at create or at start
            failing = await spawn(forkserver, sandbox, bad)
            await failing.start()
        except RuntimeFailure as exc:
            assert 'exec: "nonexist": executable file not found in $PATH' in exc.message
        else:
            raise AssertionError("start of a missing program succeeded")
        assert (await ShimClient(bad.state_dir).wait()).exit_code == 127

    run(scenario())


def test_forkserver_exits_when_the_daemon_closes_its_end() -> None:
    server = ForkServer()
    server.start()
    pid = server.pid
    assert pid is not None and process_alive(pid)
    assert server._sock is not None
    server._sock.close()  # what the daemon's exit does to the socketpair
    assert wait_until(lambda: not process_alive(pid))
    server._sock = None
    server.stop()
    with pytest.raises(RuntimeFailure, match="fork server is not running"):
        server.spawn_shim(ShimConfig(id="x", mode="init", container_id="x", state_dir=Path("/tmp/none")))
