"""The course, as the demo walks it: six sections of steps following the seed
(/work/shared/seed/docker-course-fr.txt) in the order issue #7 lists them. Plain data: building the
plan runs nothing, so a test can check it covers what the issue asks.

Every object the demo makes is named here (``CONTAINERS``, ``IMAGES``, ``NETWORK``, ``VOLUME``), so a
run first removes what an interrupted earlier run left (:func:`leftovers`), which makes the demo
idempotent. Section 6 removes them all again; the base images stay (they are cached).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from contrib.demo import contexts as ctx
from contrib.demo.walk import Section, Step

CONTAINERS = ("demo-it", "demo-web", "demo-web8000", "demo-cont1", "demo-cont2", "demo-devtest")
IMAGES = ("hello-world", "cowsay", "mycowsay", "fromgit", "hello", "hello-multi", "web")
NETWORK = "demo-net"
VOLUME = "demo-vol"
BASH_PROMPT = r"root@[0-9a-f]+:/# $"
SH_PROMPT = r"/ # $"

Action = Callable[[dict[str, str]], str]


@dataclass(frozen=True)
class Actions:
    """The Python steps a plan needs (each takes the walker's variables, returns text to print):
    ``fetch_debs(context)`` puts cowsay's .deb files in ``<context>/debs``; ``free_port`` picks a
    free host port, 8000 when it is free; ``compare_sizes`` says how much smaller the multi-stage
    image is; ``show_host_file`` prints a file the container wrote into the bind-mounted folder;
    ``serve_git`` serves a git repository on 127.0.0.1 and stores its URL as ``git_url``."""

    fetch_debs: Callable[[str], Action]
    free_port: Action
    compare_sizes: Action
    show_host_file: Action
    serve_git: Action


def berth(*argv: str, **kw: object) -> Step:
    """A ``berth ARGV`` step (keywords as :class:`Step`)."""
    return Step("berth", argv, **kw)  # type: ignore[arg-type]


def write(path: str, text: str, note: str = "") -> Step:
    """A step writing ``text`` to ``path`` (relative to the work directory)."""
    return Step("file", (path,), note=note, text=text)


def first_container(act: Actions) -> Section:
    """1. A hello-world first container, then the interactive flow: change files, diff, commit, tag."""
    return Section(1, "First containers; building an image interactively (run -it, diff, commit, tag)", (
        write("hello-world/Dockerfile", ctx.HELLO_WORLD_DOCKERFILE,
              "No Docker Hub here: make the hello-world image from busybox first."),
        write("hello-world/hello.txt", ctx.HELLO_WORLD_TEXT),
        berth("build", "-q", "-t", "hello-world", ".", cwd="hello-world", expect="sha256:"),
        berth("run", "hello-world", seed="docker run hello-world", expect="Hello from berth"),
        berth("images", seed="docker images", expect="hello-world"),
        Step("action", ("apt-get download cowsay <its dependencies not in the image>  # into cowsay/debs",),
             note="Fetch cowsay's .deb files on the host (containers have no internet).",
             run=act.fetch_debs("cowsay")),
        Step("pty", ("run", "-it", "--name", "demo-it", "-v", "@{workdir}/cowsay/debs:/debs:ro", ctx.BASE, "bash"),
             note="The course's `run -it ubuntu` then `apt-get install cowsay`, typed on a real terminal.",
             seed="docker run -it ubuntu", dialogue=(
                 ("", BASH_PROMPT),
                 ("apt-get install -y --no-install-recommends /debs/*.deb", BASH_PROMPT),
                 ("/usr/games/cowsay bonjour", r"< bonjour >(.|\n)*" + BASH_PROMPT),
                 ("exit", ""))),
        berth("diff", "demo-it", seed="docker diff f461e2e7afff", expect=r"^A /usr/games/cowsay", show=12),
        berth("commit", "demo-it", seed="docker commit <yourContainerId>", capture="it_image",
              capture_re=r"(sha256:[0-9a-f]{64})"),
        berth("tag", "@{it_image}", "cowsay", seed="docker tag <newImageId> cowsay"),
        berth("run", "--rm", "cowsay", "/usr/games/cowsay", "ça marche", seed="docker run -it cowsay",
              expect="ça marche"),
        berth("rm", "demo-it", seed="docker container rm"),
    ))


def dockerfiles(act: Actions) -> Section:
    """2. ``build -t cowsay .``, the ENTRYPOINT/CMD version with and without an argument, the cache, history."""
    return Section(2, "Dockerfiles: build, ENTRYPOINT and CMD, the build cache, history", (
        Step("action", ("apt-get download cowsay <its dependencies not in the image>  # into cowsay/debs",),
             note="The build context gets cowsay's .deb files (cached on the host since section 1).",
             run=act.fetch_debs("cowsay")),
        write("cowsay/Dockerfile", ctx.COWSAY_DOCKERFILE),
        berth("build", "-t", "cowsay", ".", cwd="cowsay", seed="docker build -t cowsay .",
              expect="Successfully tagged cowsay:latest"),
        berth("run", "--rm", "cowsay", "/usr/games/cowsay", "bonjour", expect="< bonjour >"),
        Step("action", ("cp -r cowsay/debs mycowsay/debs",), note="The same .deb files go into the second context.",
             run=act.fetch_debs("mycowsay")),
        write("mycowsay/Dockerfile", ctx.MYCOWSAY_DOCKERFILE),
        berth("build", "-t", "mycowsay", ".", cwd="mycowsay", seed="docker build -t mycowsay .",
              expect="Using cache"),
        berth("run", "--rm", "mycowsay", seed="docker run mycowsay", expect="< hello world >"),
        berth("run", "--rm", "mycowsay", "salut", seed="docker run mycowsay salut", expect="< salut >"),
        berth("build", "-t", "mycowsay", ".", cwd="mycowsay", note="Built twice in a row: every step from the cache.",
              expect=r"Step 5/5 : CMD.*\n ---> Using cache"),
        berth("build", "--no-cache", "-t", "mycowsay", ".", cwd="mycowsay", seed="docker build --no-cache ...",
              expect="Successfully tagged mycowsay:latest"),
        berth("history", "mycowsay", seed="docker history mycowsay", expect="ENTRYPOINT"),
        Step("action", ("python3 -m http.server --bind 127.0.0.1 --directory git  # serves git/rootfs.git",),
             note="The course builds from GitHub; a git repository served on 127.0.0.1 stands in for it.",
             run=act.serve_git),
        berth("build", "-t", "fromgit", "@{git_url}#container:docker",
              seed="docker build https://github.com/docker/rootfs.git#container:docker",
              expect="Successfully tagged fromgit:latest"),
        berth("run", "--rm", "fromgit", expect="built from a git repository"),
    ))


def hello_c(act: Actions) -> Section:
    """3. hello.c built in one stage and in two; ``images`` shows the size difference."""
    return Section(3, "Compiling hello.c: single-stage and multi-stage builds", (
        write("hello/hello.c", ctx.HELLO_C),
        write("hello/Dockerfile", ctx.HELLO_DOCKERFILE),
        berth("build", "-t", "hello", ".", cwd="hello", expect="Successfully tagged hello:latest"),
        berth("run", "--rm", "hello", expect="Hello, world!"),
        write("hello/Dockerfile.multi", ctx.HELLO_MULTI_DOCKERFILE),
        berth("build", "-t", "hello-multi", "-f", "Dockerfile.multi", ".", cwd="hello",
              expect="Successfully tagged hello-multi:latest"),
        berth("run", "--rm", "hello-multi", expect="Hello, world!"),
        berth("images", "--filter", "reference=hello*", seed="docker image ls", expect="hello-multi"),
        berth("image", "inspect", "--format", "{{.Size}}", "hello", capture="hello_size"),
        berth("image", "inspect", "--format", "{{.Size}}", "hello-multi", capture="hello_multi_size"),
        Step("action", note="The multi-stage image carries no compiler.", run=act.compare_sizes),
        berth("image", "ls", "-a", seed="docker image ls -a"),
    ))


def web(act: Actions) -> Section:
    """4. A web server: ``run -d -P``, ``port``, the page through the published port; container
    commands; a user network where two containers talk by name."""
    return Section(4, "A web server: published ports, managing containers, user networks", (
        write("web/index.html", ctx.WEB_INDEX),
        write("web/Dockerfile", ctx.WEB_DOCKERFILE),
        berth("build", "-q", "-t", "web", ".", cwd="web", expect="sha256:"),
        berth("run", "-d", "-P", "--name", "demo-web", "web", seed="docker run -d -P nginx"),
        berth("ps", seed="docker ps", expect=r"->80/tcp.*demo-web"),
        berth("port", "demo-web", "80", seed="docker port <containerID> 80", capture="web_port",
              capture_re=r"0\.0\.0\.0:(\d+)"),
        Step("fetch", ("http://127.0.0.1:@{web_port}/",), seed="curl localhost:49153", expect="Bienvenue"),
        Step("action", note="The course publishes on 8000; take the next free port if 8000 is taken.",
             run=act.free_port),
        berth("run", "-d", "-p", "@{fixed_port}:80", "--name", "demo-web8000", "web",
              seed="docker run -d -p 8000:80 nginx"),
        Step("fetch", ("http://127.0.0.1:@{fixed_port}/",), expect="Bienvenue"),
        berth("inspect", "--format", "{{ .NetworkSettings.IPAddress }}", "demo-web", capture="web_ip",
              seed="docker inspect --format '{{ .NetworkSettings.IPAddress }}' <yourContainerID>"),
        berth("run", "--rm", ctx.SMALL, "ping", "-c", "1", "@{web_ip}", seed="ping 172.17.0.2",
              note="No ping on a minimal host: ping from another container on the default bridge.",
              expect="1 packets received"),
        berth("logs", "demo-web", seed="docker container logs", expect="response:200"),
        berth("top", "demo-web", seed="docker container top", expect="httpd"),
        berth("stats", "--no-stream", "demo-web", seed="docker container stats", expect="demo-web"),
        berth("exec", "demo-web", "ls", "/www", expect="index.html"),
        Step("pty", ("exec", "-it", "demo-web", "sh"), seed="docker exec -it f136fa721110 bash", dialogue=(
            ("", SH_PROMPT), ("ps", r"httpd(.|\n)*" + SH_PROMPT), ("exit", ""))),
        berth("stop", "-t", "1", "demo-web", seed="docker container stop",
              note="httpd is PID 1 and ignores SIGTERM: -t 1 sends SIGKILL after 1 s instead of 10."),
        berth("container", "ls", "-a", "--filter", "name=^demo-web$", seed="docker container ls", expect="Exited"),
        berth("start", "demo-web", seed="docker container start"),
        berth("restart", "-t", "1", "demo-web", seed="docker container restart"),
        berth("network", "ls", seed="docker network ls", expect="bridge"),
        berth("network", "create", "-d", "bridge", NETWORK, seed="docker network create -d bridge my_bridge"),
        berth("run", "-d", "--network", NETWORK, "--name", "demo-cont2", "web",
              seed="docker run -d --network my_bridge --name cont2 ubuntu"),
        berth("run", "--rm", "--network", NETWORK, ctx.SMALL, "wget", "-qO-", "http://demo-cont2/",
              note="A second container on the same network reaches demo-cont2 by name (berthd's DNS).",
              expect="Bienvenue"),
        berth("run", "-d", "--name", "demo-cont1", ctx.SMALL, "sleep", "3600",
              seed="docker run -d --name cont1 nginx"),
        berth("network", "connect", NETWORK, "demo-cont1", seed="docker network connect my_bridge web"),
        berth("exec", "demo-cont1", "wget", "-qO-", "http://demo-cont2/",
              note="Connected to the network, demo-cont1 reaches demo-cont2 by name across it.",
              expect="Bienvenue"),
    ))


def volumes(act: Actions) -> Section:
    """5. ``volume create``, data surviving the container, a bind mount of a host folder."""
    return Section(5, "Data: volumes and bind mounts", (
        berth("volume", "create", VOLUME, seed="docker volume create my-vol"),
        berth("volume", "ls", expect=VOLUME),
        berth("run", "-d", "--name", "demo-devtest", "--mount", f"source={VOLUME},target=/app", ctx.SMALL,
              "sh", "-c", "echo 'written by demo-devtest' > /app/note.txt; sleep 3600",
              seed="docker run -d --name devtest --mount source=my-vol,target=/app debian"),
        berth("exec", "demo-devtest", "cat", "/app/note.txt", expect="written by demo-devtest"),
        berth("rm", "-f", "demo-devtest"),
        berth("run", "--rm", "--mount", f"source={VOLUME},target=/app", ctx.SMALL, "cat", "/app/note.txt",
              note="The container is gone; its data is still in the volume.", expect="written by demo-devtest"),
        write("code/index.txt", ctx.CODE_INDEX, "A folder on the host, bind-mounted into a container."),
        berth("run", "--rm", "--mount", "type=bind,source=@{workdir}/code,target=/app", ctx.SMALL,
              "sh", "-c", "cat /app/index.txt; echo 'written in the container' > /app/from-container.txt",
              seed='docker run -d -it --name devtest --mount type=bind,source="$(pwd)"/code,target=/app debian',
              expect="lives on the host"),
        Step("action", ("cat code/from-container.txt",), note="The container's write is on the host.",
             run=act.show_host_file),
    ))


def cleanup(act: Actions) -> Section:
    """6. ``rm``, ``rmi``, ``image prune``, ``volume rm``, ``network rm``."""
    running = ("demo-web", "demo-web8000", "demo-cont1", "demo-cont2")
    return Section(6, "Cleaning up", (
        berth("stop", "-t", "1", *running),
        berth("rm", *running, seed="docker container rm"),
        berth("container", "prune", "-f", seed="docker container prune"),
        berth("rmi", *IMAGES, seed="docker image rm"),
        berth("image", "prune", "-f", seed="docker image prune"),
        berth("volume", "rm", VOLUME),
        berth("network", "rm", NETWORK),
        berth("ps", "-a"),
        berth("images"),
    ))


def course(act: Actions) -> tuple[Section, ...]:
    """The whole walk, sections 1 to 6."""
    return (first_container(act), dockerfiles(act), hello_c(act), web(act), volumes(act), cleanup(act))


def leftovers() -> list[tuple[str, ...]]:
    """berth commands removing whatever an earlier run left (their failures do not matter)."""
    return [("rm", "-f", *CONTAINERS), ("rmi", "-f", *IMAGES), ("volume", "rm", "-f", VOLUME),
            ("network", "rm", NETWORK)]
