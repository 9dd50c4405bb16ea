"""The build service behind ``POST /build`` (Engine API v1.41 "ImageBuild"; docker 20.10's
classic builder, ``DOCKER_BUILDKIT=0``).

A build is read top to bottom as parse -> plan -> run: :meth:`BuildService.prepare` unpacks the
context, reads and parses the Dockerfile and plans the stages — anything wrong there is an
HTTP error before the stream starts, as dockerd answers 400 for a bad Dockerfile — and
:meth:`BuildService.stream` runs the plan and yields docker's JSON messages. A failed build moves
no tag; intermediate images of the steps that succeeded stay, as the cache. The workspace
(context, mounts, snapshots) is removed when the build ends, also when the client goes away
(the build is then cancelled).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any, BinaryIO

from berth.build.cache import BuildCache
from berth.build.context import BuildContext, open_context
from berth.build.dispatch_run import StepFailed
from berth.build.executor import run_stages
from berth.build.instructions import Dockerfile, DockerfileError
from berth.build.job import BuildJob
from berth.build.options import BuildOptions
from berth.build.output import BuildOutput, Message, short_id
from berth.build.parser import parse
from berth.build.plan import make_plan
from berth.build.remote import fetch_remote
from berth.build.shell import unused_build_args
from berth.build.workspace import Workspace, cleanup_stale
from berth.errors import BerthError, InvalidParameter, NotFound
from berth.images import reference as refs
from berth.images.model import Image

log = logging.getLogger("berth.build")


def parse_dockerfile(text: str, name: str) -> Dockerfile:
    """Parse with dockerd's error wording (``dockerfile parse error line 2: unknown instruction:
    FOO``). Raises InvalidParameter."""
    try:
        return parse(text, name)
    except DockerfileError as err:
        if err.line:
            raise InvalidParameter(f"dockerfile parse error line {err.line}: {err.reason}") from None
        raise InvalidParameter(err.reason) from None


class BuildService:
    """Builds of one daemon: ``images`` is the ImageService, ``containers`` the ContainerService
    (None when the daemon has none: then RUN steps fail), ``events`` the daemon's event bus."""

    def __init__(self, config: Any, events: Any, images: Any, containers: Any) -> None:
        self.config = config
        self.events = events
        self.images = images
        self.containers = containers
        self.build_root = config.data_root / "build"
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Daemon start: remove what builds interrupted by a crash left behind."""
        await asyncio.to_thread(cleanup_stale, self.build_root, self.images.store.snapshotter)

    async def shutdown(self) -> None:
        """Daemon stop: cancel running builds (each removes its containers and workspace)."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def prepare(self, options: BuildOptions, body: BinaryIO | None) -> BuildJob:
        """Receive the context (``body``, a blocking reader of the request's tar, or ``remote``),
        parse the Dockerfile and plan the build.

        Raises InvalidParameter for a bad context, Dockerfile, target or option; nothing is
        left behind on error.
        """
        build_id = secrets.token_hex(12)
        workspace = await asyncio.to_thread(Workspace, self.build_root, build_id, self.images.store.snapshotter)
        try:
            context = await asyncio.to_thread(self._context, options, body, workspace)
            dockerfile = parse_dockerfile(context.dockerfile_text, context.dockerfile_name)
            plan = make_plan(dockerfile, options.build_args, options.target, options.labels)
            sources = [image for image in (self._cache_source(name) for name in options.cache_from) if image]
            cache = BuildCache(self.images, sources, enabled=not options.no_cache)
            return BuildJob(build_id, options, plan, context, self.images, self.containers, cache, workspace,
                            BuildOutput(options.quiet))
        except DockerfileError as err:
            await asyncio.to_thread(workspace.close)
            raise InvalidParameter(err.reason) from None
        except BaseException:
            await asyncio.to_thread(workspace.close)
            raise

    @staticmethod
    def _context(options: BuildOptions, body: BinaryIO | None, workspace: Workspace) -> BuildContext:
        if options.remote:
            return fetch_remote(options.remote, workspace.root, options.dockerfile)
        if body is None:
            raise InvalidParameter("no build context was sent")
        context_dir = workspace.root / "context"
        context_dir.mkdir()
        return open_context(body, context_dir, options.dockerfile)

    def _cache_source(self, name: str) -> Image | None:
        """A ``--cache-from`` image; one that is not here is skipped, as dockerd does when its
        pull fails."""
        try:
            return self.images.get(name)
        except (NotFound, InvalidParameter):
            log.info("cache source %s not found; ignored", name)
            return None

    async def stream(self, job: BuildJob) -> AsyncIterator[Message]:
        """Run ``job`` and yield its messages; closing the iterator early cancels the build."""
        task = asyncio.create_task(self._run(job))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            while (message := await job.output.queue.get()) is not None:
                yield message
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self, job: BuildJob) -> None:
        out = job.output
        prelude = out.channel()
        channels = {index: out.channel() for index in job.plan.build}
        epilogue = out.channel()
        failure: tuple[str, int | None] | None = None
        try:
            for number, instr in enumerate(job.plan.meta, 1):
                prelude.step(number, job.plan.total_steps, instr.original)
            prelude.close()
            image = await run_stages(job, channels)
            if image is None:
                raise InvalidParameter("No image was generated. Is your Dockerfile empty?")
            await self._finish(job, image, epilogue)
            epilogue.close()
        except StepFailed as exc:
            failure = (exc.message, exc.code)
        except BerthError as exc:
            failure = (exc.message, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: report it in the stream, keep the daemon serving
            log.exception("build %s failed", job.build_id)
            failure = (f"{type(exc).__name__}: {exc}", None)
        finally:
            # Clients stop reading at the error message (docker's CLI returns on it): the scratch
            # space goes first, so when a failed build command returns nothing of it is left.
            await asyncio.to_thread(job.workspace.close)
            if failure is not None:
                out.fail(*failure)
            out.finish()

    async def _finish(self, job: BuildJob, image: Image, channel: Any) -> None:
        """The warning about unused build args, ``Successfully built``, the tags."""
        unused = unused_build_args([*job.plan.meta, *job.executed], job.options.build_args)
        if unused:
            channel.stream(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        channel.stream(f"Successfully built {short_id(image.id)}\n")
        for tag in job.options.tags:
            self.images.tag(image.id, tag)
            channel.stream(f"Successfully tagged {refs.parse_normalized_named(tag).familiar()}\n")
        if job.options.quiet:
            job.output.queue.put_nowait({"stream": image.id + "\n"})
