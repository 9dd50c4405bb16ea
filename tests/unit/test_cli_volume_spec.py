"""``-v`` specs of ``run``/``create`` split as docker's CLI splits them (docker 28 against berthd):
empty sections and a fourth section are refused before any API call, one- and two-character specs
and ``c:/x`` (a Windows drive) are anonymous volumes, everything else with a source is a bind."""

from __future__ import annotations

import shlex

import pytest

from berth.cli import runopts, runvalues
from berth.cli.flags import FlagSet
from berth.cli.runspecs import volume_source


def build(cmdline: str):
    fs = runopts.add_create_flags(FlagSet("berth run", "[OPTIONS] IMAGE", "", 1, interspersed=False), run=True)
    args, positional = fs.parse(shlex.split(cmdline))
    return runopts.build_create_request(args, positional, {})


# each message checked against `docker -H <berthd> run --rm -v SPEC busybox true` (docker 28.x, exit 125)
REFUSED = [
    (":/x", "invalid spec: :/x: empty section between colons"),
    ("/tmp::/x", "invalid spec: /tmp::/x: empty section between colons"),
    ("/tmp:/x:", "invalid spec: /tmp:/x:: empty section between colons"),
    ("v1:/x:", "invalid spec: v1:/x:: empty section between colons"),
    ("/tmp:", "invalid spec: /tmp:: empty section between colons"),
    ("/tmp:/x:ro:z", "invalid spec: /tmp:/x:ro:z: too many colons"),
    ("", "invalid empty volume spec"),
]


@pytest.mark.parametrize("spec,message", REFUSED, ids=[s or "<empty>" for s, _ in REFUSED])
def test_bad_volume_specs_are_refused_with_dockers_message(spec, message):
    with pytest.raises(runvalues.OptionError) as info:
        build(f"--rm -v {shlex.quote(spec)} busybox true")
    assert info.value.render() == f"berth: {message}."


# (spec, Binds, Config.Volumes) as docker 28's CLI sends them (daemon answers checked with dockerd 20.10)
ACCEPTED = [
    ("/data", None, {"/data": {}}),
    ("::", None, {"::": {}}),
    (":", None, {":": {}}),
    ("c:/x", None, {"c:/x": {}}),
    ("/tmp:/x", ["/tmp:/x"], {}),
    ("v1:/x:ro", ["v1:/x:ro"], {}),
    ("/tmp:c:/x", ["/tmp:c:/x"], {}),
    ("/tmp:/x:ro,", ["/tmp:/x:ro,"], {}),  # the mode is the daemon's to check
]


@pytest.mark.parametrize("spec,binds,volumes", ACCEPTED, ids=[s for s, _, _ in ACCEPTED])
def test_good_volume_specs_become_binds_or_volumes(spec, binds, volumes):
    body = build(f"-v {shlex.quote(spec)} busybox").body
    assert body["HostConfig"]["Binds"] == binds
    assert body["Volumes"] == volumes


@pytest.mark.parametrize("spec,source", [("/a:/b", "/a"), ("name:/b:rw", "name"), ("/b", ""), ("ab", "")])
def test_volume_source(spec, source):
    assert volume_source(spec) == source


# docker's CLI makes a host path of `.` or `./...` absolute (cli/command/container/opts.go)
RELATIVE_BINDS = [
    ("./data:/x", "{cwd}/data:/x"),
    (".:/x:ro", "{cwd}:/x:ro"),
    ("./a/../b:/x", "{cwd}/b:/x"),
    ("data:/x", "data:/x"),          # a volume name
    ("/abs:/x", "/abs:/x"),
    ("../up:/x", "../up:/x"),        # docker sends it as is; the daemon refuses it
]


@pytest.mark.parametrize("spec,bind", RELATIVE_BINDS)
def test_relative_bind_sources_are_made_absolute(spec, bind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    body = build(f"-v {shlex.quote(spec)} busybox true").body
    assert body["HostConfig"]["Binds"] == [bind.format(cwd=tmp_path)]
