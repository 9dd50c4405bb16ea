"""Issue #3's other container behaviours, through a real berthd and the berth CLI: restart policies,
``--init``, users and groups, ``--read-only``, ``--ulimit``, CPU limits, stop signal and timeout,
``update``, ``pause``, ``rename``, ``container prune`` and ``logs`` (long lines, since/until/tail/-t).

Expected values are dockerd 20.10's, observed with the docker CLI running the same busybox image
(``docker run -u 1000:1000 busybox id`` prints ``groups=1000``, restart back-off doubles from 100 ms, ...).
"""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest

from berth.runtime import cgroups
from berth.runtime.spec import MASKED_PATHS, READONLY_PATHS
from tests.integration.containers_support import RUN, named, state, wait_for

MiB = 1 << 20


def _seconds(stamp: str) -> float:
    """An RFC 3339 nano timestamp (``2024-01-02T03:04:05.123456789Z``) as epoch seconds."""
    whole, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float("0." + (frac or "0"))


# ----- restart policies --------------------------------------------------------------------------------------


def test_restart_policies(shared_daemon):
    """no: never; on-failure:2: two restarts after failures, none after success; always: restarted with
    docker's back-off (100 ms doubling); a manual stop ends the restarting."""
    d = shared_daemon
    with named(d) as name:
        never, fail2, succeed, always = name(), name(), name(), name()
        for cname, policy, script in ((never, "no", "exit 1"), (fail2, "on-failure:2", "echo run; exit 3"),
                                      (succeed, "on-failure", "exit 0"), (always, "always", "echo run; exit 1")):
            d.ok("run", "-d", "--name", cname, "--restart", policy, "busybox", "sh", "-c", script)
        wait_for(lambda: state(d, fail2, "{{.State.Status}} {{.RestartCount}}") == "exited 2", 20, "on-failure:2")
        assert d.ok("logs", fail2) == "run\nrun\nrun\n"
        assert state(d, fail2, "{{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}} "
                               "{{.HostConfig.RestartPolicy.MaximumRetryCount}}") == "3 on-failure 2"
        for cname, code in ((never, 1), (succeed, 0)):
            assert state(d, cname, "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}") == f"exited {code} 0"
        wait_for(lambda: int(state(d, always, "{{.RestartCount}}")) >= 5, 20, "five restarts")
        starts = [_seconds(line.split()[0]) for line in d.ok("logs", "-t", always).splitlines()]
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)][:5]
        for i, gap in enumerate(gaps):  # each gap: the back-off, then a container start (well under 1 s)
            assert 0.1 * 2 ** i <= gap < 0.1 * 2 ** i + 1.0, gaps
        assert d.ok("stop", "-t", "1", always) == f"{always}\n"
        count = state(d, always, "{{.RestartCount}}")
        time.sleep(2)
        assert state(d, always, "{{.State.Status}} {{.RestartCount}}") == f"exited {count}"


def test_restart_policies_across_a_daemon_restart(bdaemon):
    """A restart of berthd: running containers keep running (same process); an `always` container that
    was stopped by hand starts again, an `unless-stopped` one does not (docker's documented rules)."""
    d = bdaemon
    with named(d) as name:
        keeps, stopped_always, stopped_unless = name(), name(), name()
        for cname, policy in ((keeps, "always"), (stopped_always, "always"), (stopped_unless, "unless-stopped")):
            d.ok("run", "-d", "--name", cname, "--restart", policy, "busybox", "sleep", "300")
        d.ok("stop", "-t", "1", stopped_always, stopped_unless)
        pid = state(d, keeps, "{{.State.Pid}}")
        d.restart(signal.SIGTERM)
        assert state(d, keeps, "{{.State.Status}} {{.State.Pid}}") == f"running {pid}"
        wait_for(lambda: state(d, stopped_always) == "running", 20, "the always container to start")
        assert state(d, stopped_unless, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"


# ----- process: --init, users, read-only, ulimits -------------------------------------------------------------


def test_init_is_pid_1_and_forwards_the_stop_signal(shared_daemon):
    """`--init`: docker-init is PID 1 and the command its child; `stop` ends it with SIGTERM (143), fast."""
    d = shared_daemon
    assert d.ok("run", "--rm", "--init", "busybox", "ps", "-o", "pid,args") == (
        "PID   COMMAND\n    1 /sbin/docker-init -- ps -o pid,args\n    2 ps -o pid,args\n")
    with named(d) as name:
        cname = name()
        d.ok("run", "-d", "--init", "--name", cname, "busybox", "sleep", "300")
        start = time.monotonic()
        d.ok("stop", cname)  # without --init, sleep as PID 1 ignores SIGTERM: 10 s and 137
        assert time.monotonic() - start < 5
        assert state(d, cname, "{{.State.ExitCode}}") == "143"


@pytest.mark.parametrize("flags, expected", [
    ([], "uid=0(root) gid=0(root) groups=0(root),10(wheel)"),
    (["-u", "1000"], "uid=1000 gid=0(root) groups=0(root)"),
    (["-u", "1000:1000"], "uid=1000 gid=1000 groups=1000"),
    (["-u", "nobody"], "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"),
    (["-u", "daemon"], "uid=1(daemon) gid=1(daemon) groups=1(daemon)"),
    (["-u", "0:5"], "uid=0(root) gid=5(tty) groups=5(tty)"),
    (["-u", "1000:1000", "--group-add", "10"], "uid=1000 gid=1000 groups=10(wheel),1000"),
    (["-u", "root:wheel", "--group-add", "0"], "uid=0(root) gid=10(wheel) groups=0(root),10(wheel)"),
])
def test_user_and_groups(shared_daemon, flags, expected):
    """`-u user[:group]` and `--group-add`: `id` prints what it prints under docker (the primary gid is
    also a supplementary group, as runc sets it)."""
    assert shared_daemon.ok("run", "--rm", *flags, "busybox", "id") == expected + "\n"


@pytest.mark.parametrize("flags, expected", [
    ([], "uid=0(root) gid=0(root) groups=0(root),10(wheel)"),
    (["-u", "daemon"], "uid=1(daemon) gid=1(daemon) groups=1(daemon)"),
    (["-u", "5:6"], "uid=5 gid=6(disk) groups=6(disk)"),
])
def test_exec_user_and_groups(shared_daemon, flags, expected):
    """`exec -u`: the same identities as docker exec."""
    d = shared_daemon
    with named(d) as name:
        cname = name()
        d.ok("run", "-d", "--name", cname, "busybox", "sleep", "300")
        assert d.ok("exec", *flags, cname, "id") == expected + "\n"


def test_read_only_rootfs(shared_daemon):
    """`--read-only`: the root and the /etc files docker mounts are read-only; /dev/shm stays writable."""
    script = ("for f in /new /tmp/new /etc/hosts /etc/hostname /etc/resolv.conf /dev/shm/new; do "
              "(echo x >> $f) 2>/dev/null && echo $f=rw || echo $f=ro; done")
    assert shared_daemon.ok("run", "--rm", "--read-only", "busybox", "sh", "-c", script).split() == [
        "/new=ro", "/tmp/new=ro", "/etc/hosts=ro", "/etc/hostname=ro", "/etc/resolv.conf=ro", "/dev/shm/new=rw"]
    assert shared_daemon.ok("run", "--rm", "busybox", "sh", "-c", "touch /new && echo rw") == "rw\n"


def test_ulimits(shared_daemon):
    """`--ulimit nofile=100:200 --ulimit nproc=50`: soft and hard limits as given."""
    out = shared_daemon.ok("run", "--rm", "--ulimit", "nofile=100:200", "--ulimit", "nproc=50", "busybox", "sh",
                           "-c", "ulimit -n; ulimit -Hn; ulimit -u; ulimit -Hu")
    assert out.split() == ["100", "200", "50", "50"]


# ----- resources: --cpus, --cpu-shares, update -----------------------------------------------------------------


def _cgroup_values(cid: str) -> dict[str, str]:
    """CPU, memory and pids limits of a container's cgroup, in cgroup v1 terms."""
    dirs = cgroups.directories(f"/berth/{cid}")
    if cgroups.is_v2_only():
        d = dirs[""]
        quota, period = (d / "cpu.max").read_text().split()
        swap = (d / "memory.swap.max").read_text().strip() if (d / "memory.swap.max").exists() else "max"
        memory = (d / "memory.max").read_text().strip()
        return {"quota": quota, "period": period, "memory": memory, "pids": (d / "pids.max").read_text().strip(),
                "memsw": str(int(memory) + int(swap)) if swap != "max" and memory != "max" else "max"}
    read = lambda ctl, name: (dirs[ctl] / name).read_text().strip()  # noqa: E731
    return {"quota": read("cpu", "cpu.cfs_quota_us"), "period": read("cpu", "cpu.cfs_period_us"),
            "shares": read("cpu", "cpu.shares"), "memory": read("memory", "memory.limit_in_bytes"),
            "memsw": read("memory", "memory.memsw.limit_in_bytes") if "memory" in dirs and
            (dirs["memory"] / "memory.memsw.limit_in_bytes").exists() else "", "pids": read("pids", "pids.max")}


def test_cpus_and_cpu_shares(shared_daemon):
    """`--cpus 0.5 --cpu-shares 512`: NanoCpus/CpuShares recorded, CFS quota 50 ms per 100 ms, shares 512."""
    d = shared_daemon
    with named(d) as name:
        cname = name()
        cid = d.ok("run", "-d", "--name", cname, "--cpus", "0.5", "--cpu-shares", "512", "busybox",
                   "sleep", "300").strip()
        assert state(d, cname, "{{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}}") == "500000000 512"
        values = _cgroup_values(cid)
        assert (values["quota"], values["period"], values.get("shares", "512")) == ("50000", "100000", "512")


def test_update_a_running_container(shared_daemon):
    """`update`: new limits reach the running container's cgroup and inspect; docker's refusals."""
    d = shared_daemon
    with named(d) as name:
        cname = name()
        cid = d.ok("run", "-d", "--name", cname, "-m", "32m", "busybox", "sleep", "300").strip()
        assert d.ok("update", "-m", "128m", "--memory-swap", "256m", "--cpus", "1.5", "--pids-limit", "30",
                    "--restart", "on-failure:2", cname) == f"{cname}\n"
        assert state(d, cname, "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} "
                               "{{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}") == (
            f"{128 * MiB} {256 * MiB} 1500000000 30 on-failure")
        values = _cgroup_values(cid)
        assert (values["memory"], values["quota"], values["pids"]) == (str(128 * MiB), "150000", "30")
        assert values["memsw"] in (str(256 * MiB), "")  # "" where the kernel does not account swap
        assert d.ok("update", "-m", "64m", cname) == f"{cname}\n"  # lowering needs no new swap limit
        assert _cgroup_values(cid)["memory"] == str(64 * MiB)
        for flags, message in ((["-m", "4m"], "Minimum memory limit allowed is 6MB"),
                               (["-m", "512m"], f"Cannot update container {cid}: Memory limit should be smaller "
                                                "than already set memoryswap limit, update the memoryswap at the "
                                                "same time")):
            result = d.cli("update", *flags, cname)
            assert (result.returncode, result.stdout, result.stderr) == (
                1, "", f"Error response from daemon: {message}\n")
        assert state(d, cname, "{{.HostConfig.Memory}}") == str(64 * MiB)


# ----- stop, pause, rename, prune -------------------------------------------------------------------------------


def test_stop_signal_and_timeouts(shared_daemon):
    """`--stop-signal` is what `stop` sends; `--stop-timeout` and `stop -t` bound the wait before SIGKILL."""
    d = shared_daemon
    with named(d) as name:
        trapper, slow, quick = name(), name(), name()
        d.ok("run", "-d", "--name", trapper, "--stop-signal", "SIGUSR1", "busybox", "sh", "-c",
             'trap "echo got usr1; exit 5" USR1; echo ready; while :; do sleep 0.1; done')
        d.ok("run", "-d", "--name", slow, "--stop-timeout", "2", "busybox", "sleep", "300")
        d.ok("run", "-d", "--name", quick, "busybox", "sleep", "300")
        wait_for(lambda: d.ok("logs", trapper) == "ready\n", 10, "the trap")
        d.ok("stop", trapper)
        assert (d.ok("logs", trapper), state(d, trapper, "{{.State.ExitCode}} {{.Config.StopSignal}}")) == (
            "ready\ngot usr1\n", "5 SIGUSR1")
        for cname, args, seconds in ((slow, [], 2), (quick, ["-t", "1"], 1)):
            start = time.monotonic()
            d.ok("stop", *args, cname)
            assert seconds <= time.monotonic() - start < seconds + 3
            assert state(d, cname, "{{.State.ExitCode}}") == "137"  # sleep as PID 1 ignores SIGTERM


def test_pause_and_unpause(shared_daemon):
    """`pause` freezes every process (no output, exec refused), `unpause` resumes; a paused container stops."""
    d = shared_daemon
    with named(d) as name:
        cname = name()
        d.ok("run", "-d", "--name", cname, "busybox", "sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); sleep 0.05; done")
        wait_for(lambda: len(d.ok("logs", cname).split()) > 2, 10, "output")
        d.ok("pause", cname)
        assert state(d, cname, "{{.State.Status}} {{.State.Paused}}") == "paused true"
        assert d.ok("ps", "--filter", f"name={cname}", "--format", "{{.Status}}").endswith(" (Paused)\n")
        frozen = d.ok("logs", cname)
        time.sleep(0.5)
        assert d.ok("logs", cname) == frozen
        result = d.cli("exec", cname, "true")
        assert (result.returncode, result.stderr) == (
            1, f"Error response from daemon: Container {cname} is paused, unpause the container before exec\n")
        d.ok("unpause", cname)
        assert state(d, cname, "{{.State.Status}} {{.State.Paused}}") == "running false"
        wait_for(lambda: len(d.ok("logs", cname)) > len(frozen), 10, "output after unpause")
        d.ok("pause", cname)
        d.ok("stop", "-t", "1", cname)
        assert state(d, cname, "{{.State.Status}} {{.State.ExitCode}} {{.State.Paused}}") == "exited 137 false"


def test_rename(shared_daemon):
    """`rename`: the new name is the container's, the old one is free; docker's messages otherwise."""
    d = shared_daemon
    with named(d) as name:
        old, new, taken = name(), name(), name()
        cid = d.ok("create", "--name", old, "busybox").strip()
        taken_id = d.ok("create", "--name", taken, "busybox").strip()
        d.ok("rename", old, new)
        assert state(d, cid, "{{.Name}}") == f"/{new}"
        assert d.ok("create", "--name", old, "busybox").strip() != cid  # the old name is free again
        for args, message in (
                ([new, new], "Error response from daemon: Renaming a container with the same name as its current "
                             f"name\nError: failed to rename container named {new}\n"),
                ([new, taken], f'Error response from daemon: Error when allocating new name: Conflict. The container '
                               f'name "/{taken}" is already in use by container "{taken_id}". You have to remove (or '
                               f"rename) that container to be able to reuse that name.\nError: failed to rename "
                               f"container named {new}\n"),
                ([new, "Bad Name"], "Error response from daemon: Error when allocating new name: Invalid container "
                                    "name (/Bad Name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed\nError: failed to "
                                    f"rename container named {new}\n"),
                ([new, ""], "Error: Neither old nor new names may be empty\n")):
            result = d.cli("rename", *args)
            assert (result.returncode, result.stderr) == (1, message)
        assert state(d, cid, "{{.Name}}") == f"/{new}"


def test_container_prune(shared_daemon):
    """`container prune`: stopped containers go (those the filter picks), running ones stay."""
    d = shared_daemon
    label = f"acc-prune={RUN}"
    with named(d) as name:
        running, exited, created, other = name(), name(), name(), name()
        d.ok("run", "-d", "-l", label, "--name", running, "busybox", "sleep", "300")
        gone = [d.ok("run", "-d", "-l", label, "--name", exited, "busybox", "true").strip(),
                d.ok("create", "-l", label, "--name", created, "busybox").strip()]
        d.ok("create", "--name", other, "busybox")  # stopped, but not picked by the filter
        wait_for(lambda: state(d, exited) == "exited", 10, "the container to exit")
        out = d.ok("container", "prune", "-f", "--filter", f"label={label}")
        assert out.startswith("Deleted Containers:\n") and out.endswith("\n\nTotal reclaimed space: 0B\n")
        assert sorted(out.splitlines()[1:-2]) == sorted(gone)
        assert [state(d, c) for c in (running, exited, created, other)] == ["running", "", "", "created"]


# ----- logs ---------------------------------------------------------------------------------------------------


def test_long_lines_split_in_the_file_and_joined_on_read(shared_daemon):
    """json-file: a 40000-byte line is stored as 16 KiB pieces (docker's split) and read back whole."""
    d = shared_daemon
    with named(d) as name:
        cname = name()
        d.ok("run", "--name", cname, "busybox", "sh", "-c", 'head -c 40000 /dev/zero | tr "\\0" a; echo; echo end')
        assert d.ok("logs", cname) == "a" * 40000 + "\nend\n"
        entries = [json.loads(line) for line in Path(state(d, cname, "{{.LogPath}}")).read_text().splitlines()]
        assert [len(e["log"]) for e in entries] == [16384, 16384, 40000 - 2 * 16384 + 1, 4]
        assert {e["stream"] for e in entries} == {"stdout"} and entries[2]["log"].endswith("\n")


def test_logs_since_until_tail_timestamps(shared_daemon):
    """`logs -t`, `--tail N`, `--since` and `--until` (RFC 3339 times and relative durations)."""
    d = shared_daemon
    with named(d) as name:
        cname = name()
        d.ok("run", "--name", cname, "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; sleep 0.3; done")
        stamped = d.ok("logs", "-t", cname).splitlines()
        assert [line.split(" ", 1)[1] for line in stamped] == [f"line{i}" for i in range(1, 6)]
        stamps = [line.split(" ", 1)[0] for line in stamped]
        assert all(len(s) == 30 and s.endswith("Z") for s in stamps)  # RFC 3339 with nanoseconds
        assert d.ok("logs", "--tail", "2", cname) == "line4\nline5\n"
        assert d.ok("logs", "--tail", "0", cname) == ""
        assert d.ok("logs", "--since", stamps[3], cname) == "line4\nline5\n"
        assert d.ok("logs", "--until", stamps[1], cname) == "line1\nline2\n"
        assert d.ok("logs", "--since", stamps[1], "--until", stamps[2], "-t", cname) == "\n".join(stamped[1:3]) + "\n"
        assert d.ok("logs", "--since", "1h", cname).count("\n") == 5
        assert d.ok("logs", "--until", "1h", cname) == ""  # an hour before now: nothing yet


# ----- devices ------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/dev/fuse").exists() or cgroups.is_v2_only(),
                    reason="needs /dev/fuse and the cgroup v1 devices controller")
def test_device_mapping_and_cgroup_rules(shared_daemon):
    """`--device /dev/fuse:/dev/myfuse:r`: the node under its new name with the host's mode, readable only
    (the cgroup rule says `r`); `--device-cgroup-rule` adds a rule; a missing device fails the start with
    dockerd's message and 127, as docker 20.10 does."""
    d = shared_daemon
    fuse = Path("/dev/fuse").stat()
    out = d.ok("run", "--rm", "--device", "/dev/fuse:/dev/myfuse:r", "--device-cgroup-rule", "c 42:* rm", "busybox",
               "sh", "-c", "stat -c '%t:%T %a' /dev/myfuse; grep -E '10:229|42:' /sys/fs/cgroup/devices/devices.list; "
               "(echo x > /dev/myfuse) 2>&1 | sed 's/.*: //'")
    assert out.splitlines() == [f"a:e5 {fuse.st_mode & 0o777:o}", "c 10:229 r", "c 42:* rm", "Operation not permitted"]
    result = d.cli("run", "--rm", "--device", f"/dev/nonexistent-{RUN}", "busybox", "true")
    assert (result.returncode, result.stderr) == (127, "berth: Error response from daemon: error gathering device "
                                                       "information while adding custom device "
                                                       f'"/dev/nonexistent-{RUN}": no such file or directory.\n')


def test_system_paths_unconfined(shared_daemon):
    """`--security-opt systempaths=unconfined`: none of docker's masked or read-only /proc paths."""
    d = shared_daemon
    probe = "grep -c ' /proc/' /proc/self/mountinfo; (echo x > /proc/sys/kernel/hostname) 2>&1 | grep -c Read-only"
    assert d.ok("run", "--rm", "busybox", "sh", "-c", probe).split() == [
        str(sum(Path(p).exists() for p in (*MASKED_PATHS, *READONLY_PATHS) if p.startswith("/proc/"))), "1"]
    assert d.ok("run", "--rm", "--security-opt", "systempaths=unconfined", "busybox", "sh", "-c",
                probe + "; true").split() == ["0", "0"]
