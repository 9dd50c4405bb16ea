"""``berth``: the docker-compatible command line.

Start-up is kept small (DESIGN decision 9): this module imports only the stdlib; the command's
module is imported after the command is known, and a command imports what it alone needs.
Global options come before the command: ``-H/--host``, ``-D/--debug``, ``-l/--log-level``,
``--config``, ``-c/--context`` (accepted, unused), ``-v/--version``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from berth import __version__

# command words -> "module:function" under berth.cli.commands
COMMANDS: dict[tuple[str, ...], str] = {}


def _register(target: str, *paths: str) -> None:
    for path in paths:
        COMMANDS[tuple(path.split())] = target


_register("images:ls", "images", "image ls", "image list")
_register("images:inspect_image", "image inspect")
_register("images:tag", "tag", "image tag")
_register("images:rmi", "rmi", "image rm", "image remove")
_register("images:prune", "image prune")
_register("images:history", "history", "image history")
_register("image_transfer:import_", "import", "image import")
_register("image_transfer:save", "save", "image save")
_register("image_transfer:load", "load", "image load")
_register("image_transfer:pull", "pull", "image pull")
_register("image_transfer:push", "push", "image push")
_register("image_transfer:search", "search")
_register("system:version", "version")
_register("system:info", "info", "system info")
_register("system:events", "events", "system events")
_register("system:df", "system df")
_register("system:prune", "system prune")
_register("inspect:inspect", "inspect")
_register("run:run", "run", "container run")
_register("run:create", "create", "container create")
_register("run:start", "start", "container start")
_register("containers:stop", "stop", "container stop")
_register("containers:restart", "restart", "container restart")
_register("containers:kill", "kill", "container kill")
_register("containers:rm", "rm", "container rm", "container remove")
_register("ps:ps", "ps", "container ls", "container list", "container ps")
_register("containers:logs", "logs", "container logs")
_register("containers:wait", "wait", "container wait")
_register("containers:inspect_container", "container inspect")
_register("containers:rename", "rename", "container rename")
_register("containers:pause", "pause", "container pause")
_register("containers:unpause", "unpause", "container unpause")
_register("containers:prune", "container prune")
_register("containers:port", "port", "container port")
_register("containers_io:exec_", "exec", "container exec")
_register("containers_io:attach", "attach", "container attach")
_register("containers_io:top", "top", "container top")
_register("stats:stats", "stats", "container stats")
_register("containers_io:diff", "diff", "container diff")
_register("containers_io:commit", "commit", "container commit")
_register("cp:cp", "cp", "container cp")
_register("containers_io:export", "export", "container export")
_register("containers_io:update", "update", "container update")
_register("build:build", "build", "image build", "builder build")
_register("build:builder_prune", "builder prune")
_register("networks:create", "network create")
_register("networks:ls", "network ls", "network list")
_register("networks:inspect", "network inspect")
_register("networks:rm", "network rm", "network remove")
_register("networks:connect", "network connect")
_register("networks:disconnect", "network disconnect")
_register("networks:prune", "network prune")
_register("volumes:create", "volume create")
_register("volumes:ls", "volume ls", "volume list")
_register("volumes:inspect", "volume inspect")
_register("volumes:rm", "volume rm", "volume remove")
_register("volumes:prune", "volume prune")

GROUPS = {"image", "container", "network", "volume", "system", "builder"}


class Context:
    """What a command needs from the global options: the daemon address and a lazy API client.

    A plain class: ``dataclasses`` costs ~10 ms of imports on every command (DESIGN decision 9).
    """

    def __init__(self, host: str, debug: bool = False) -> None:
        self.host = host
        self.debug = debug
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from berth.client.api import APIClient
            self._client = APIClient(self.host)
        return self._client


USAGE = """
Usage:  berth [OPTIONS] COMMAND

A self-sufficient runtime for containers (docker-compatible, in Python)

Options:
  -H, --host string        Daemon socket to connect to (BERTH_HOST, DOCKER_HOST)
  -D, --debug              Enable debug mode
  -l, --log-level string   Set the logging level
  -v, --version            Print version information and quit

Management Commands:
  container   Manage containers
  image       Manage images
  network     Manage networks
  system      Manage berth
  volume      Manage volumes

Commands:
  attach  build  commit  cp  create  diff  events  exec  export  history  images  import  info
  inspect  kill  load  logs  pause  port  ps  rename  restart  rm  rmi  run  save  start  stats
  stop  tag  top  unpause  update  version  wait

Run 'berth COMMAND --help' for more information on a command.
"""


def _global_options(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    opts: dict[str, Any] = {"host": None, "debug": False}
    i = 0
    while i < len(argv):
        word = argv[i]
        if not word.startswith("-") or word == "-":
            break
        name, eq, value = word.partition("=")
        takes_value = name in ("-H", "--host", "-l", "--log-level", "--config", "-c", "--context",
                               "--tlscacert", "--tlscert", "--tlskey")
        if takes_value and not eq:
            if i + 1 >= len(argv):
                _die(f"flag needs an argument: {name}\nSee 'berth --help'.", 125)
            value = argv[i + 1]
            i += 1
        if name in ("-H", "--host"):
            opts["host"] = value
        elif name in ("-D", "--debug"):
            opts["debug"] = True
        elif name in ("-v", "--version"):
            opts["version"] = True
        elif name in ("-h", "--help"):
            opts["help"] = True
        elif name in ("--tls", "--tlsverify") or takes_value:
            pass
        else:
            _die(f"unknown flag: {name}\nSee 'berth --help'.", 125)
        i += 1
    return opts, argv[i:]


def _die(message: str, status: int) -> None:
    sys.stderr.write(message + "\n")
    raise SystemExit(status)


def _find_command(words: list[str]) -> tuple[str | None, list[str], str]:
    if len(words) >= 2 and (words[0], words[1]) in COMMANDS:
        return COMMANDS[(words[0], words[1])], words[2:], f"berth {words[0]} {words[1]}"
    if words and (words[0],) in COMMANDS:
        return COMMANDS[(words[0],)], words[1:], f"berth {words[0]}"
    return None, words, ""


def main(argv: list[str] | None = None) -> int:
    """Run one berth command; returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    opts, words = _global_options(argv)
    if opts.get("version"):
        print(f"Berth version {__version__}, build python")
        return 0
    if opts.get("help") or not words:
        sys.stdout.write(USAGE)
        return 0
    target, rest, prog = _find_command(words)
    if target is None:
        if words[0] in GROUPS:
            sub = words[1] if len(words) > 1 else ""
            if not sub or sub in ("--help", "-h"):
                sys.stdout.write(f"\nUsage:  berth {words[0]} COMMAND\n\nRun 'berth {words[0]} COMMAND --help'"
                                 " for more information on a command.\n")
                return 0
            _die(f'berth: \'{words[0]} {sub}\' is not a berth command.\nSee \'berth {words[0]} --help\'', 1)
        if words[0] == "compose":
            _die("berth: 'compose' is not available in this build of berth", 1)
        _die(f"berth: '{words[0]}' is not a berth command.\nSee 'berth --help'", 1)
    assert target is not None
    module_name, func_name = target.split(":")
    from importlib import import_module

    from berth.client.api import resolve_host
    module = import_module(f"berth.cli.commands.{module_name}")
    ctx = Context(resolve_host(opts["host"]), opts["debug"])
    return run_command(getattr(module, func_name), ctx, rest, prog)


def run_command(func: Any, ctx: Context, argv: list[str], prog: str) -> int:
    """Call a command, turning daemon errors into docker's messages and exit statuses.

    A daemon that goes away in the middle of a streamed answer (``logs -f``, ``events``, ``build``,
    the ``wait`` of ``run``) ends the command with docker's ``unexpected EOF`` (Go's chunked reader
    error) and status 1, not a traceback."""
    from berth.client.api import APIError, ConnectionFailed
    from berth.client.wire import ProtocolError

    try:
        return int(func(ctx, argv, prog) or 0)
    except APIError as exc:
        sys.stderr.write(f"Error response from daemon: {exc.message}\n")
        return 1
    except ConnectionFailed as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 141
    except ProtocolError:
        sys.stderr.write("unexpected EOF\n")
        return 1
    except ConnectionError as exc:
        sys.stderr.write(f"error during connect: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
