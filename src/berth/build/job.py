"""What a running build shares with its steps: the job, a stage's state, and committing a step.

Each committed step is an image whose local parent is the image the step ran on (docker's
classic builder: one image per instruction). Its ``config`` is the stage's run config with
``Image`` set to the parent's ID; its ``container_config`` is the same config with ``Cmd``
replaced by what the step ran or recorded (``/bin/sh -c #(nop)  ENV a=b``, RUN's command line
with the ``|N k=v`` build args prefix); its history ``created_by`` is that ``Cmd`` joined by
spaces (docker's ``image.NewChildImage``).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from berth.build.cache import BuildCache, CacheProbe, cache_key
from berth.build.context import BuildContext
from berth.build.instructions import Instruction
from berth.build.options import BuildOptions
from berth.build.output import BuildOutput, Channel
from berth.build.plan import BuildPlan, stage_index
from berth.build.shell import PROXY_ARGS, StageScope
from berth.build.workspace import Workspace
from berth.errors import InvalidParameter, SystemError_
from berth.images.model import Image

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class BuildJob:
    """One build in progress. ``stage_images`` holds a task per started stage (its final image);
    ``executed`` the instructions dispatched (for the unused build-args warning)."""

    build_id: str
    options: BuildOptions
    plan: BuildPlan
    context: BuildContext
    images: Any
    containers: Any
    cache: BuildCache
    workspace: Workspace
    output: BuildOutput
    stage_loader: Callable[[int, Channel], Awaitable[Image | None]] | None = None
    executed: list[Instruction] = field(default_factory=list)

    async def stage_image(self, index: int, channel: Channel) -> Image | None:
        """The image stage ``index`` builds (waiting for it; starting it if nobody did)."""
        if self.stage_loader is None:
            raise SystemError_("the build's stages are not running")
        return await self.stage_loader(index, channel)

    def find_stage(self, ref: str, before: int) -> int | None:
        """The earlier stage ``COPY --from=<ref>`` names (by name or index), or None for an image.

        Raises InvalidParameter ``invalid from flag value 5: index out of bounds`` (docker's
        wording) for a number that is not an earlier stage.
        """
        stages = [plan.stage for plan in self.plan.stages]
        index = stage_index(stages, ref, before)
        if index is None and ref.isdigit():
            raise InvalidParameter(f"invalid from flag value {ref}: index out of bounds")
        return index


@dataclass
class StageState:
    """A stage between steps: the current ``image`` (None on ``scratch`` before the first
    commit), the run ``config`` (docker's container.Config without Env and Image), the
    variables in ``scope``, the ARG names ``declared`` so far, MAINTAINER's ``author`` and
    whether this stage set CMD (ENTRYPOINT then keeps it)."""

    image: Image | None
    config: dict[str, Any]
    scope: StageScope
    declared: set[str] = field(default_factory=set)
    author: str = ""
    cmd_set: bool = False

    @classmethod
    def begin(cls, image: Image | None, meta: dict[str, str], build_args: dict[str, str | None],
              escape: str) -> StageState:
        """The state after ``FROM``: the base image's config, PATH defaulted, stdin off."""
        config = copy.deepcopy(image.container_config) if image is not None else {}
        env: dict[str, str] = {}
        for entry in config.pop("Env", None) or []:
            key, _, value = entry.partition("=")
            env[key] = value
        env.setdefault("PATH", DEFAULT_PATH)
        config.pop("Image", None)
        config["OpenStdin"] = False
        config["StdinOnce"] = False
        return cls(image, config, StageScope(env, meta, build_args, escape))

    @property
    def image_id(self) -> str:
        """The current image's ID ("" before the first commit on ``scratch``)."""
        return self.image.id if self.image is not None else ""

    def shell(self) -> list[str]:
        """The SHELL (``/bin/sh -c`` unless changed)."""
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    def env(self) -> list[str]:
        """The Env list, in docker's order (a changed variable keeps its place)."""
        return [f"{key}={value}" for key, value in self.scope.env.items()]

    def run_config(self, cmd: list[str] | None = None) -> dict[str, Any]:
        """The container.Config for the image (``cmd`` None) or a step's container_config."""
        config = copy.deepcopy(self.config)
        config["Env"] = self.env()
        config["Image"] = self.image_id
        if cmd is not None:
            config["Cmd"] = cmd
        return config

    def build_arg_env(self) -> tuple[list[str], list[str]]:
        """(``k=v`` build args a RUN sees, those its history shows): declared args with a value
        that no ENV overrides; the proxy args only show when an ARG declared them."""
        allowed = {k: v for k, v in self.scope.args.items() if k not in self.scope.env}
        run = sorted(f"{k}={v}" for k, v in allowed.items())
        shown = sorted(f"{k}={v}" for k, v in allowed.items() if k in self.declared or k not in PROXY_ARGS)
        return run, shown


class Step:
    """One instruction of one stage being executed: ``channel`` is where its output goes."""

    def __init__(self, job: BuildJob, state: StageState, channel: Channel, stage_index: int) -> None:
        self.job = job
        self.state = state
        self.channel = channel
        self.stage_index = stage_index

    def comment_cmd(self, comment: str, *, joined: bool = False) -> list[str]:
        """The ``Cmd`` docker records for a step that runs nothing: ``shell + ["#(nop) ", comment]``
        (``withCmdComment``), or ``shell + ["#(nop) " + comment]`` when ``joined`` (WORKDIR,
        COPY and ADD use ``withCmdCommentString``)."""
        return [*self.state.shell(), "#(nop) " + comment] if joined else [*self.state.shell(), "#(nop) ", comment]

    async def probe(self, container_config: dict[str, Any], extra: dict[str, Any] | None = None) -> bool:
        """Look the step up in the cache; on a hit print `` ---> Using cache`` and move on."""
        probe = CacheProbe(self.state.image, cache_key(container_config, extra),
                           " ".join(container_config.get("Cmd") or []), self.state.run_config())
        hit = await self.job.cache.probe(probe)
        if hit is None:
            return False
        self.channel.stream(" ---> Using cache\n")
        self.state.image = hit
        return True

    async def commit(self, container_config: dict[str, Any], extra: dict[str, Any] | None = None, *,
                     layer: Path | None = None, container: str = "") -> Image:
        """Make the step's image (with ``layer``, a layer tar, when given) and record it."""
        parent = self.state.image
        history = {"created_by": " ".join(container_config.get("Cmd") or []), "author": self.state.author}

        config = self.state.run_config()

        def create() -> Image:
            stream = open(layer, "rb") if layer is not None else None  # noqa: SIM115 - closed below
            try:
                image = self.job.images.create_image(
                    parent, config, history, layer=stream, container=container,
                    container_config=container_config, author=self.state.author)
            finally:
                if stream is not None:
                    stream.close()
                    layer.unlink(missing_ok=True)  # type: ignore[union-attr]
            self.job.cache.record(parent, cache_key(container_config, extra), image)
            return image

        image = await asyncio.to_thread(create)
        self.state.image = image
        return image

    async def commit_comment(self, comment: str, *, joined: bool = False) -> None:
        """A metadata step: probe the cache, else commit an image without a layer."""
        container_config = self.state.run_config(self.comment_cmd(comment, joined=joined))
        if not await self.probe(container_config):
            await self.commit(container_config)
