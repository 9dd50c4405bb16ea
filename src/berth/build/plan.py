"""The build plan: which stages to build, in what order, what each one needs (sans-I/O).

A Dockerfile is cut into stages (``split_stages``); ``--target`` picks the last stage to keep
(Dockerfile reference, "FROM" and "docker build --target"), and only the stages that stage
needs are built: the stage a ``FROM <name>`` builds on and the stages ``COPY --from`` reads.
Both name an earlier stage by its ``AS`` name or by its index (dockerd 20.10 took a number in
FROM for an image name, which could never be pulled).
``FROM`` and ``--from`` values are expanded with the meta ARGs (declared before the first
``FROM``), as the reference's "Understand how ARG and FROM interact" describes. Step numbers
count every instruction up to the target, meta ARGs and ``--label`` steps included, as the
classic builder numbers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from berth.build.commands import split_stages
from berth.build.instructions import Dockerfile, DockerfileError, Instruction, Stage
from berth.build.shell import ExpansionError, meta_arg_values, process_word


@dataclass(frozen=True)
class StagePlan:
    """One stage: ``base`` is the expanded FROM value, ``base_stage`` the index of the earlier
    stage it names (None for an image or ``scratch``), ``needs`` every earlier stage it reads,
    ``first_step`` the step number of its FROM."""

    stage: Stage
    base: str
    base_stage: int | None
    needs: frozenset[int]
    first_step: int


@dataclass(frozen=True)
class BuildPlan:
    """``stages`` are the Dockerfile's stages up to the target (all planned, index order);
    ``build`` the indexes to build, ascending; ``label_steps`` the ``LABEL k=v`` steps the
    ``labels`` option adds after the target's instructions."""

    meta: list[Instruction]
    meta_values: dict[str, str]
    stages: list[StagePlan]
    build: list[int]
    label_steps: list[tuple[str, str]]
    total_steps: int
    escape: str

    @property
    def target(self) -> StagePlan:
        """The stage whose image is the build's result."""
        return self.stages[-1]


def stage_index(stages: list[Stage], name: str, before: int, by_number: bool = True) -> int | None:
    """The stage ``name`` refers to among ``stages[:before]``: by (case-insensitive) name, or,
    with ``by_number``, by index; None when it names none (then it is an image)."""
    lowered = name.lower()
    for stage in stages[:before]:
        if stage.name is not None and stage.name == lowered:
            return stage.index
    if by_number and lowered.isdigit():
        number = int(lowered)
        return number if number < before else None
    return None


def _target_index(stages: list[Stage], target: str) -> int:
    if not target:
        return len(stages) - 1
    for stage in stages:
        if stage.name is not None and stage.name == target.lower():
            return stage.index
    raise DockerfileError(f"failed to reach build target {target} in Dockerfile")


def _check_stage_names(stages: list[Stage]) -> None:
    """dockerd refuses a stage named like an earlier one (names are lower-cased at parse time);
    the classic builder finds it when it reaches that FROM, here the whole plan is refused first."""
    seen: set[str] = set()
    for stage in stages:
        if stage.name is not None and stage.name in seen:
            raise DockerfileError(f"{stage.name} stage name already used")
        if stage.name is not None:
            seen.add(stage.name)


def _expand(word: str, values: Mapping[str, str], escape: str, line: int) -> str:
    try:
        return process_word(word, values, escape)
    except ExpansionError as err:
        raise ExpansionError(err.reason, word, line) from None


def _copy_sources(stage: Stage, stages: list[Stage], values: Mapping[str, str], escape: str) -> set[int]:
    """Earlier stages read by the stage's ``COPY --from`` (numbers must point backwards)."""
    found = set()
    for instr in stage.instructions:
        if instr.keyword != "COPY" or "from" not in instr.flags:
            continue
        name = _expand(instr.flags["from"], values, escape, instr.line)
        index = stage_index(stages, name, stage.index)
        if index is not None:
            found.add(index)
    return found


def make_plan(dockerfile: Dockerfile, build_args: Mapping[str, str | None], target: str = "",
              labels: Mapping[str, str] | None = None) -> BuildPlan:
    """Plan the build of ``dockerfile`` for ``--target`` (the last stage when empty).

    Raises DockerfileError (``no build stage in current context``, ``failed to reach build
    target X in Dockerfile``, ``X stage name already used``) or ExpansionError for a FROM/--from
    value that cannot expand.
    """
    meta, stages = split_stages(dockerfile)
    if not stages:
        raise DockerfileError("no build stage in current context")
    stages = stages[: _target_index(stages, target) + 1]
    _check_stage_names(stages)
    values = meta_arg_values(meta, build_args, dockerfile.escape)
    planned: list[StagePlan] = []
    step = len(meta) + 1
    for stage in stages:
        base = _expand(stage.base, values, dockerfile.escape, stage.from_instruction.line)
        base_stage = stage_index(stages, base, stage.index)
        needs = _copy_sources(stage, stages, values, dockerfile.escape)
        if base_stage is not None:
            needs.add(base_stage)
        planned.append(StagePlan(stage, base, base_stage, frozenset(needs), step))
        step += 1 + len(stage.instructions)
    label_steps = sorted((labels or {}).items())
    wanted = {planned[-1].stage.index}
    for plan in reversed(planned):
        if plan.stage.index in wanted:
            wanted |= plan.needs
    return BuildPlan(meta, values, planned, sorted(wanted), label_steps, step - 1 + len(label_steps),
                     dockerfile.escape)
