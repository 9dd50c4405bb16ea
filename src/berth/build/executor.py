"""Running a planned build: stages as concurrent tasks, each a loop of dispatched steps.

A stage waits only for the stages it needs (its ``FROM <stage>`` and ``COPY --from`` sources),
so independent stages build at the same time; its output goes to its own ordered channel (see
:mod:`berth.build.output`). Within a stage, each instruction is printed as
``Step N/M : <instruction>``, expanded with the stage's variables (Dockerfile reference,
"Environment replacement"), dispatched, and followed by `` ---> <image>``. ``FROM`` of an image
with ``ONBUILD`` triggers runs them first ("ONBUILD": ``# Executing N build triggers``).
"""

from __future__ import annotations

import asyncio
import dataclasses

from berth.build import dispatch_files, dispatch_meta, dispatch_run
from berth.build.commands import to_command
from berth.build.instructions import DockerfileError, Instruction
from berth.build.job import BuildJob, StageState, Step
from berth.build.output import Channel
from berth.build.parser import parse
from berth.build.plan import StagePlan
from berth.errors import InvalidParameter, NotFound
from berth.images import reference as refs
from berth.images.model import Image

HANDLERS: dict[str, dispatch_meta.Handler] = {**dispatch_meta.HANDLERS, "RUN": dispatch_run.run, "COPY": dispatch_files.copy,
            "ADD": dispatch_files.copy, "WORKDIR": dispatch_files.workdir}
_NOT_TRIGGERS = ("ONBUILD", "FROM", "MAINTAINER")


async def dispatch(step: Step, instr: Instruction) -> None:
    """Expand ``instr`` with the stage's variables and run it."""
    step.job.executed.append(instr)
    expanded = step.state.scope.expand(instr)
    try:
        command = to_command(expanded)
    except DockerfileError as err:
        raise InvalidParameter(err.reason) from None
    await HANDLERS[expanded.keyword](step, command, expanded)


class StageRunner:
    """Builds one stage into its image, writing to ``channel``."""

    def __init__(self, job: BuildJob, plan: StagePlan, channel: Channel) -> None:
        self.job = job
        self.plan = plan
        self.channel = channel

    async def run(self) -> Image | None:
        """Build the stage; returns its image (None for a ``scratch`` stage that made none)."""
        job, plan, channel = self.job, self.plan, self.channel
        channel.step(plan.first_step, job.plan.total_steps, plan.stage.from_instruction.original)
        base = await self._base_image()
        state = StageState.begin(base, job.plan.meta_values, job.options.build_args, job.plan.escape)
        step = Step(job, state, channel, plan.stage.index)
        await self._triggers(step)
        channel.image(state.image_id)
        number = plan.first_step
        for instr in plan.stage.instructions:
            number += 1
            channel.step(number, job.plan.total_steps, instr.original)
            await dispatch(step, instr)
            channel.image(state.image_id)
        if plan is job.plan.target:
            for key, value in job.plan.label_steps:
                number += 1
                channel.step(number, job.plan.total_steps, f"LABEL {key}={value}")
                await dispatch_meta.label_option(step, key, value)
                channel.image(state.image_id)
        if state.image is not None:
            channel.aux(state.image.id)
        return state.image

    async def _base_image(self) -> Image | None:
        """The image FROM names: an earlier stage's result, ``scratch``, or a local image."""
        if self.plan.base_stage is not None:
            return await self.job.stage_image(self.plan.base_stage, self.channel)
        if self.plan.base.lower() == "scratch":
            return None
        try:
            return self.job.images.get(self.plan.base)
        except NotFound:
            raise NotFound(_pull_message(self.plan.base)) from None

    async def _triggers(self, step: Step) -> None:
        """Run the base image's ONBUILD triggers, then forget them (they do not propagate)."""
        triggers = list(step.state.config.get("OnBuild") or [])
        step.state.config["OnBuild"] = None
        if not triggers:
            return
        self.channel.stream(f"# Executing {len(triggers)} build trigger")
        if len(triggers) > 1:
            self.channel.stream("s")
        self.channel.stream("\n")
        for text in triggers:
            instr = parse(text, validate=False).instructions[0]
            if instr.keyword in _NOT_TRIGGERS:
                raise InvalidParameter(f"{instr.keyword} isn't allowed as an ONBUILD trigger")
            instr = dataclasses.replace(instr, line=self.plan.stage.from_instruction.line)
            await dispatch(step, instr)


def _pull_message(name: str) -> str:
    """What a FROM of an image that is not here says (berth pulls nothing during a build)."""
    shown = name
    try:
        parsed = refs.parse_normalized_named(name)
        shown = parsed.familiar() if parsed.digest else refs.with_default_tag(parsed).familiar()
    except InvalidParameter:
        pass
    return (f"pull access denied for {shown.split(':')[0]}, repository does not exist or may require "
            f"'docker login': No such image: {shown}")


async def run_stages(job: BuildJob, channels: dict[int, Channel]) -> Image | None:
    """Build the planned stages (each in its own task, on its own channel) and return the
    target's image. On the first failure the other stages are cancelled and it is raised."""
    plans = {plan.stage.index: plan for plan in job.plan.stages}
    tasks: dict[int, asyncio.Task[Image | None]] = {}

    def start(index: int, channel: Channel) -> asyncio.Task[Image | None]:
        if index not in tasks:
            tasks[index] = asyncio.create_task(_run_one(job, plans[index], channel))
        return tasks[index]

    async def stage_image(index: int, requester: Channel) -> Image | None:
        return await asyncio.shield(start(index, channels.get(index) or requester.nested()))

    job.stage_loader = stage_image
    for index in job.plan.build:
        start(index, channels[index])
    target = job.plan.target.stage.index
    try:
        while True:
            pending = [task for task in tasks.values() if not task.done()]
            if not pending:
                break
            await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for task in tasks.values():
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        return tasks[target].result()
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)


async def _run_one(job: BuildJob, plan: StagePlan, channel: Channel) -> Image | None:
    try:
        return await StageRunner(job, plan, channel).run()
    finally:
        channel.close()
