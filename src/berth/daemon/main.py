"""``berthd``: the daemon's entry point (DESIGN, "Processes").

Start-up order matters: the data root is locked first, then the exec root, the default bridge
and the unix sockets are claimed (``locks.claim``): a second daemon sharing any of them is refused
before it unlinks a socket or touches a bridge. Then the fork server is forked while the process is still single-threaded
(DESIGN decision 8), then services are built and the API is served. SIGTERM and SIGINT stop
serving and close the store; containers keep running (live restore).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import sys
from pathlib import Path

from berth.daemon.config import DaemonConfig, parse_args
from berth.daemon.locks import DaemonConflict, claim

log = logging.getLogger("berth.daemon")


class DataRootLocked(Exception):
    """Another berthd holds the data root's lock."""


def lock_data_root(data_root: Path) -> int:
    """Take an exclusive ``flock`` on ``data_root/berthd.lock``; returns the fd (kept open).

    Raises DataRootLocked when another process holds it.
    """
    data_root.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_root / "berthd.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataRootLocked(f"another berthd is running on data root {data_root}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _start_forkserver(config: DaemonConfig):
    """Fork the shim fork server before any thread exists (None when the runtime lacks one)."""
    try:
        from berth.runtime.forkserver import ForkServer
    except ImportError:
        return None
    server = ForkServer()
    server.start()
    return server


async def serve(config: DaemonConfig, forkserver=None) -> None:
    """Build the services, serve the API until SIGTERM/SIGINT, then shut down cleanly."""
    from berth.api.server import APIServer
    from berth.daemon.app import build_router, build_services

    services = build_services(config, forkserver)
    for component in (services.networks, services.volumes, services.containers, services.builder):
        # Services set themselves up in ``boot()`` (the container service, whose ``start`` starts a
        # container) or ``start()``.
        boot = getattr(component, "boot", None) or getattr(component, "start", None)
        if boot is not None:
            await boot()
    server = APIServer(build_router(services), list(config.hosts))
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, dump_stacks)
    loop.add_signal_handler(signal.SIGHUP, log.info, "SIGHUP: berthd has no configuration file to reload")
    log.info("berthd serving on %s (data root %s)", ", ".join(config.hosts), config.data_root)
    services.events.publish("daemon", "start", "berthd", {})
    await stop.wait()
    log.info("shutting down")
    await server.close()
    for component in (services.builder, services.containers, services.networks, services.volumes):
        shutdown = getattr(component, "shutdown", None)
        if shutdown is not None:
            try:
                await shutdown()
            except Exception:
                log.exception("shutdown of %s failed", type(component).__name__)
    services.db.close()


def dump_stacks() -> None:
    """SIGUSR1: write the stack of every asyncio task and thread to the log and keep serving, as
    dockerd dumps its goroutines on SIGUSR1 ("dockerd" reference, "Troubleshoot the daemon")."""
    import faulthandler
    import io

    text = io.StringIO()
    tasks = asyncio.all_tasks()
    for task in sorted(tasks, key=lambda t: t.get_name()):
        task.print_stack(limit=8, file=text)
    log.info("=== BEGIN stack dump (%d tasks) ===\n%s=== END task stacks; threads follow ===", len(tasks),
             text.getvalue())
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, config.log_level.upper(), logging.INFO)
                        if config.log_level != "fatal" else logging.CRITICAL,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
    if os.geteuid() != 0:
        print("berthd: must run as root", file=sys.stderr)
        return 1
    try:
        lock_fd = lock_data_root(config.data_root)
    except DataRootLocked as exc:
        print(f"berthd: {exc}", file=sys.stderr)
        return 1
    try:
        locks = claim(config.exec_root, config.hosts, config.bridge_name)
    except (DaemonConflict, ValueError, OSError) as exc:
        print(f"berthd: {exc}", file=sys.stderr)
        os.close(lock_fd)
        return 1
    forkserver = _start_forkserver(config)
    try:
        asyncio.run(serve(config, forkserver))
    except OSError as exc:
        print(f"berthd: {exc}", file=sys.stderr)
        return 1
    finally:
        if forkserver is not None:
            stop = getattr(forkserver, "stop", None)
            if stop:
                stop()
        locks.release()
        os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
