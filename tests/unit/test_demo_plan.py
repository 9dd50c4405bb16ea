"""The demo's plan walks what issue #7 asks, in its order (the full demo runs with ``make demo``;
this only reads the plan, so it takes milliseconds). One test per numbered item of the issue."""

from __future__ import annotations

import re

from contrib.demo import contexts, course
from contrib.demo.walk import Section, Step


def dummy_actions() -> course.Actions:
    def nothing(values: dict[str, str]) -> str:
        return ""

    return course.Actions(fetch_debs=lambda context: nothing, free_port=nothing, compare_sizes=nothing,
                          show_host_file=nothing, serve_git=nothing)


def plan() -> dict[int, Section]:
    return {s.number: s for s in course.course(dummy_actions())}


def index(section: Section, predicate) -> int:
    """Position of the first step matching ``predicate`` (fails when there is none)."""
    for i, step in enumerate(section.steps):
        if predicate(step):
            return i
    raise AssertionError(f"section {section.number} has no such step")


def froms(dockerfile: str) -> int:
    """Number of FROM instructions (stages) in a Dockerfile."""
    return len(re.findall(r"^FROM ", dockerfile, re.MULTILINE))


def berth(*prefix: str):
    return lambda step: step.kind == "berth" and step.argv[:len(prefix)] == prefix


def test_six_sections_in_the_issue_order():
    assert sorted(plan()) == [1, 2, 3, 4, 5, 6]


def test_1_first_container_then_run_it_diff_commit_tag_run():
    """1. `run hello-world`-style first container; `run -it` flow scripted: change files, `diff`,
    `commit`, `tag`, run the new image."""
    s = plan()[1]
    hello = index(s, berth("run", "hello-world"))
    run_it = index(s, lambda st: st.kind == "pty" and st.argv[:2] == ("run", "-it"))
    typed = [line for line, _ in s.steps[run_it].dialogue if line]
    assert any("apt-get install" in line for line in typed) and typed[-1] == "exit"
    diff = index(s, berth("diff", "demo-it"))
    commit = index(s, berth("commit", "demo-it"))
    assert s.steps[commit].capture == "it_image"
    tag = index(s, berth("tag", "@{it_image}"))
    new_tag = s.steps[tag].argv[2]
    run_new = index(s, lambda st: st.kind == "berth" and st.argv[0] == "run" and new_tag in st.argv)
    assert hello < run_it < diff < commit < tag < run_new


def test_2_cowsay_build_entrypoint_cmd_cache_history():
    """2. `build -t cowsay .` from the seed's Dockerfile adapted to Debian with the .deb files fetched
    on the host into the build context; the ENTRYPOINT/CMD version run with and without an argument;
    a second build showing the cache; `history`."""
    s = plan()[2]
    fetch = index(s, lambda st: st.kind == "action" and "apt-get download" in st.argv[0])
    build = index(s, lambda st: st.argv == ("build", "-t", "cowsay", ".") and st.cwd == "cowsay")
    assert fetch < build
    assert "\nCOPY debs /debs\n" in contexts.COWSAY_DOCKERFILE and froms(contexts.COWSAY_DOCKERFILE) == 1
    assert 'ENTRYPOINT ["/usr/games/cowsay", "-e", "%%"]' in contexts.MYCOWSAY_DOCKERFILE
    assert 'CMD ["hello world"]' in contexts.MYCOWSAY_DOCKERFILE
    builds = [i for i, st in enumerate(s.steps) if st.argv[-3:] == ("-t", "mycowsay", ".")]
    no_arg = index(s, lambda st: st.argv == ("run", "--rm", "mycowsay"))
    with_arg = index(s, lambda st: st.argv == ("run", "--rm", "mycowsay", "salut"))
    assert s.steps[no_arg].expect == "< hello world >" and s.steps[with_arg].expect == "< salut >"
    second = builds[1]
    assert builds[0] < no_arg < second and "Using cache" in s.steps[second].expect
    assert index(s, berth("history", "mycowsay")) > second


def test_3_hello_c_single_and_multi_stage_images_size():
    """3. hello.c: single-stage and multi-stage builds, `images` showing the size difference."""
    s = plan()[3]
    assert froms(contexts.HELLO_DOCKERFILE) == 1 and "RUN make hello" in contexts.HELLO_DOCKERFILE
    assert froms(contexts.HELLO_MULTI_DOCKERFILE) == 2
    assert "COPY --from=compiler /hello /hello" in contexts.HELLO_MULTI_DOCKERFILE
    single = index(s, lambda st: st.argv[:3] == ("build", "-t", "hello"))
    multi = index(s, lambda st: st.argv[:3] == ("build", "-t", "hello-multi"))
    images = index(s, berth("images"))
    sizes = index(s, lambda st: st.kind == "action" and st.run is not None)
    assert single < multi < images < sizes


def test_4_web_server_published_port_and_user_network():
    """4. A web server: `run -d -P`, `port`, fetch the page through the published port; a user
    network with two containers talking by name."""
    s = plan()[4]
    run_p = index(s, lambda st: st.kind == "berth" and st.argv[:3] == ("run", "-d", "-P"))
    port = index(s, berth("port", "demo-web", "80"))
    assert s.steps[port].capture == "web_port"
    fetch = index(s, lambda st: st.kind == "fetch" and "@{web_port}" in st.argv[0])
    create = index(s, berth("network", "create"))
    net = s.steps[create].argv[-1]
    on_net = [st for st in s.steps if st.kind == "berth" and st.argv[0] == "run" and "--network" in st.argv
              and st.argv[st.argv.index("--network") + 1] == net]
    named = [st.argv[st.argv.index("--name") + 1] for st in on_net if "--name" in st.argv]
    by_name = [st for st in on_net if any(f"http://{n}/" in st.argv for n in named)]
    assert named and by_name and by_name[0].expect
    assert run_p < port < fetch < create


def test_5_volume_survives_rm_and_bind_mount():
    """5. `volume create`, data surviving container removal, a bind mount of a host folder."""
    s = plan()[5]
    create = index(s, berth("volume", "create"))
    vol = s.steps[create].argv[-1]
    writer = index(s, lambda st: st.argv[:1] == ("run",) and f"source={vol},target=/app" in st.argv
                   and "--name" in st.argv)
    name = s.steps[writer].argv[s.steps[writer].argv.index("--name") + 1]
    removed = index(s, lambda st: st.argv[:1] == ("rm",) and name in st.argv)
    reader = index(s, lambda st: st.argv[:2] == ("run", "--rm") and f"source={vol},target=/app" in st.argv)
    assert create < writer < removed < reader and s.steps[reader].expect
    assert index(s, lambda st: any(a.startswith("type=bind,source=") for a in st.argv)) > reader


def test_6_cleanup_rm_rmi_prune_volume_network():
    """6. Clean-up: `rm`, `rmi`, `image prune`, `volume rm`, `network rm`."""
    s = plan()[6]
    for prefix in (("rm",), ("rmi",), ("image", "prune"), ("volume", "rm"), ("network", "rm")):
        index(s, berth(*prefix))
    assert set(course.IMAGES) <= set(s.steps[index(s, berth("rmi"))].argv)


def _placeholders(step: Step) -> set[str]:
    text = " ".join([*step.argv, step.expect, *(a for pair in step.dialogue for a in pair)])
    return set(re.findall(r"@\{(\w+)\}", text))


def test_values_are_captured_before_they_are_used():
    """Every ``@{name}`` comes from an earlier step's capture or from an action that sets it."""
    set_by_actions = {"fixed_port", "git_url", "workdir"}
    known = set(set_by_actions)
    for section in course.course(dummy_actions()):
        for step in section.steps:
            assert _placeholders(step) <= known, (section.number, step.argv)
            if step.capture:
                known.add(step.capture)


def test_leftovers_cover_every_object_the_demo_names():
    """Idempotence: what a run creates by name is removed before the next run."""
    names, tags = set(), set()
    for section in course.course(dummy_actions()):
        for step in section.steps:
            argv = step.argv
            if step.kind in ("berth", "pty") and argv[:1] == ("run",) and "--name" in argv:
                names.add(argv[argv.index("--name") + 1])
            if step.kind == "berth" and argv[:1] == ("build",) and "-t" in argv:
                tags.add(argv[argv.index("-t") + 1])
    assert names <= set(course.CONTAINERS) and tags <= set(course.IMAGES)
    leftovers = {word for command in course.leftovers() for word in command}
    assert set(course.CONTAINERS) | set(course.IMAGES) | {course.NETWORK, course.VOLUME} <= leftovers
