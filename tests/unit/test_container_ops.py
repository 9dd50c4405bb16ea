"""Pure parts of the container operations: exec process specs and records, ps parsing, stats
arithmetic, the archive path-stat header, commit configs and the layer pipe. Expected values
come from dockerd 20.10 answers (captured against the peer daemon) and the kernel's file formats.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import threading

import pytest

from berth.containers import commit as commits
from berth.containers import exec as execs
from berth.containers import fsops, stats, top
from berth.containers.model import Container
from berth.errors import InvalidParameter, SystemError_
from berth.runtime.user import ExecUser


def _container(**config) -> Container:
    base = {"Hostname": "abc123", "Env": ["FOO=bar"], "Cmd": ["sleep", "1000"], "Image": "busybox",
            "WorkingDir": "", "Labels": {}}
    base.update(config)
    return Container(id="c" * 64, name="box", created="2026-01-01T00:00:00Z", image="busybox",
                     image_id="sha256:" + "1" * 64, config=base, host_config={})


def _inst(**kw) -> execs.ExecInstance:
    values = {"id": "e" * 64, "container_id": "c" * 64, "container_started_at": "t", "entrypoint": "sh",
              "arguments": ["-c", "id"]}
    values.update(kw)
    return execs.ExecInstance(**values)


# ----- exec --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("base", "overrides", "expected"), [
    (["A=1", "B=2"], ["B=3"], ["A=1", "B=3"]),
    (["A=1"], ["C=x=y"], ["A=1", "C=x=y"]),
    (["A=1", "FOO=bar"], ["FOO"], ["A=1"]),          # a bare key removes (docker exec -e FOO, FOO unset)
    ([], ["HOSTNAME=x"], ["HOSTNAME=x"]),
])
def test_replace_or_append_env(base, overrides, expected):
    assert execs.replace_or_append_env(base, overrides) == expected


ROOT = ExecUser(0, 0, (), "/root")
NOBODY = ExecUser(65534, 65534, (65534,), "/home")
INIT = {"capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
        "noNewPrivileges": True}


@pytest.mark.parametrize(("inst", "user", "config", "expected"), [
    (_inst(), ROOT, {},
     {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "id"],
      "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=abc123", "FOO=bar",
              "HOME=/root"], "cwd": "/", "noNewPrivileges": True, "capabilities": INIT["capabilities"]}),
    (_inst(tty=True, env=["FOO", "HOSTNAME=x", "A=1"], working_dir="/tmp"), NOBODY, {"WorkingDir": "/srv"},
     {"terminal": True, "user": {"uid": 65534, "gid": 65534, "additionalGids": [65534]}, "args": ["sh", "-c", "id"],
      "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=x", "TERM=xterm", "A=1",
              "HOME=/home"], "cwd": "/tmp", "noNewPrivileges": True, "capabilities": INIT["capabilities"]}),
    (_inst(), ROOT, {"WorkingDir": "/srv", "Env": ["HOME=/h", "PATH=/bin"]},
     {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "id"],
      "env": ["PATH=/bin", "HOSTNAME=abc123", "HOME=/h"], "cwd": "/srv", "noNewPrivileges": True,
      "capabilities": INIT["capabilities"]}),
])
def test_process_spec(inst, user, config, expected):
    c = _container(**config)
    assert execs.process_spec(inst, c.config, INIT, user, ["CAP_A", "CAP_B"]) == expected


def test_process_spec_privileged_and_console_size():
    process = execs.process_spec(_inst(privileged=True, tty=True), _container().config, INIT, ROOT,
                                 ["CAP_A", "CAP_B"], (33, 101))
    assert process["capabilities"] == {"bounding": ["CAP_A", "CAP_B"], "effective": ["CAP_A", "CAP_B"],
                                       "permitted": ["CAP_A", "CAP_B"]}
    assert process["consoleSize"] == {"height": 33, "width": 101}


@pytest.mark.parametrize(("message", "status", "text"), [
    ('exec: "nosuch": executable file not found in $PATH', 400,
     'OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuch": executable file '
     'not found in $PATH: unknown'),
    ('exec: "/tmp": permission denied', 400,
     'OCI runtime exec failed: exec failed: unable to start container process: exec: "/tmp": permission denied: '
     'unknown'),
    ('chdir to cwd ("/nope") set in config.json failed: no such file or directory', 400,
     'OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd ("/nope") set in '
     'config.json failed: no such file or directory: unknown'),
    ("exec failed: unable to start container process: unable to apply caps: operation not permitted", 500,
     "OCI runtime exec failed: exec failed: unable to start container process: unable to apply caps: "
     "operation not permitted: unknown"),   # runc's own wording is kept
])
def test_start_error(message, status, text):
    error = execs.start_error(message)
    assert (error.status, error.message) == (status, text)


def test_exec_inspect_json():
    inst = _inst(entrypoint="true", arguments=[], tty=True, privileged=True, user="nobody", open_stdin=True,
                 detach_keys=b"\x01a")
    assert inst.to_json() == {
        "ID": "e" * 64, "Running": False, "ExitCode": None,
        "ProcessConfig": {"tty": True, "entrypoint": "true", "arguments": [], "privileged": True, "user": "nobody"},
        "OpenStdin": True, "OpenStderr": False, "OpenStdout": False, "CanRemove": False, "ContainerID": "c" * 64,
        "DetachKeys": "AWE=", "Pid": 0}
    plain = _inst(entrypoint="nosuch", arguments=[])
    assert "user" not in plain.to_json()["ProcessConfig"] and plain.to_json()["DetachKeys"] == ""
    assert plain.command_line == "nosuch "   # dockerd's event action keeps the trailing space


# ----- top ---------------------------------------------------------------------------------------
PS_EF = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 20:00 ?        00:00:01 /sbin/init
root        2446    2445  0 21:18 ?        00:00:00 sleep 3000
root        2500    2446  0 21:18 pts/0    00:00:00 sh -c echo a  b
"""


@pytest.mark.parametrize(("output", "pids", "expected"), [
    (PS_EF, [2446, 2500], {"Processes": [["root", "2446", "2445", "0", "21:18", "?", "00:00:00", "sleep 3000"],
                                         ["root", "2500", "2446", "0", "21:18", "pts/0", "00:00:00",
                                          "sh -c echo a  b"]],
                           "Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]}),
    ("  PID COMMAND\n 2446 sleep\n", [2446], {"Processes": [["2446", "sleep"]], "Titles": ["PID", "COMMAND"]}),
    ("  PID TTY      STAT   TIME COMMAND\n    7 ?        S      0:00 x\n", [2446],
     {"Processes": None, "Titles": ["PID", "TTY", "STAT", "TIME", "COMMAND"]}),
])
def test_parse_ps(output, pids, expected):
    assert top.parse_ps(output, pids) == expected


def test_parse_ps_without_pid_column():
    with pytest.raises(SystemError_, match="^Couldn't find PID field in ps output$"):
        top.parse_ps("COMMAND\nsleep\n", [1])


# ----- stats -------------------------------------------------------------------------------------
NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1046      11    1    2    0     0          0         0      656       8    3    4    0     0       0          0
"""


def test_parse_net_dev():
    assert stats.parse_net_dev(NET_DEV) == {"eth0": {
        "rx_bytes": 1046, "rx_packets": 11, "rx_errors": 1, "rx_dropped": 2,
        "tx_bytes": 656, "tx_packets": 8, "tx_errors": 3, "tx_dropped": 4}}


def test_system_cpu_usage():
    text = "cpu  65939 0 93639 373938 12462 0 759 194 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
    # user+nice+system+idle+iowait+irq+softirq ticks, 100 ticks a second, in nanoseconds
    assert stats.system_cpu_usage(text, 100) == (65939 + 93639 + 373938 + 12462 + 759) * 10_000_000


def test_blkio_parsers():
    v1 = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\nTotal 4608\n"
    assert stats.parse_blkio_v1(v1) == [{"major": 8, "minor": 0, "op": "Read", "value": 4096},
                                        {"major": 8, "minor": 0, "op": "Write", "value": 512},
                                        {"major": 8, "minor": 0, "op": "Sync", "value": 0}]
    v2 = "259:0 rbytes=8192 wbytes=4096 rios=2 wios=1 dbytes=0 dios=0\n"
    assert stats.parse_io_stat_v2(v2) == {
        "io_service_bytes_recursive": [{"major": 259, "minor": 0, "op": "read", "value": 8192},
                                       {"major": 259, "minor": 0, "op": "write", "value": 4096}],
        "io_serviced_recursive": [{"major": 259, "minor": 0, "op": "read", "value": 2},
                                  {"major": 259, "minor": 0, "op": "write", "value": 1}]}


def test_v1_memory_stats_keeps_dockers_keys_sorted():
    text = "cache 8192\nrss 57344\nshmem 0\nworkingset_refault_anon 0\ntotal_rss 57344\n" \
           "hierarchical_memory_limit 9223372036854771712\n"
    assert list(stats.v1_memory_stats(text).items()) == [
        ("cache", 8192), ("hierarchical_memory_limit", 9223372036854771712), ("rss", 57344), ("total_rss", 57344)]


def test_stats_documents():
    c = _container()
    empty = stats.empty_stats(c)
    assert json.dumps(empty, separators=(",", ":")) == (
        '{"read":"0001-01-01T00:00:00Z","preread":"0001-01-01T00:00:00Z","pids_stats":{},"blkio_stats":'
        '{"io_service_bytes_recursive":null,"io_serviced_recursive":null,"io_queue_recursive":null,'
        '"io_service_time_recursive":null,"io_wait_time_recursive":null,"io_merged_recursive":null,'
        '"io_time_recursive":null,"sectors_recursive":null},"num_procs":0,"storage_stats":{},"cpu_stats":'
        '{"cpu_usage":{"total_usage":0,"usage_in_kernelmode":0,"usage_in_usermode":0},"throttling_data":'
        '{"periods":0,"throttled_periods":0,"throttled_time":0}},"precpu_stats":{"cpu_usage":{"total_usage":0,'
        '"usage_in_kernelmode":0,"usage_in_usermode":0},"throttling_data":{"periods":0,"throttled_periods":0,'
        '"throttled_time":0}},"memory_stats":{},"name":"/box","id":"' + "c" * 64 + '"}')
    first = {"read": "2026-01-01T00:00:01Z", "pids_stats": {"current": 1}, "blkio_stats": {},
             "cpu_stats": {"cpu_usage": {"total_usage": 5}}, "memory_stats": {"usage": 1}, "networks": {"eth0": {}}}
    second = dict(first, read="2026-01-01T00:00:02Z", cpu_stats={"cpu_usage": {"total_usage": 9}})
    doc = stats.stats_json(c, second, first)
    assert (doc["read"], doc["preread"], doc["precpu_stats"], doc["cpu_stats"]) == (
        "2026-01-01T00:00:02Z", "2026-01-01T00:00:01Z", {"cpu_usage": {"total_usage": 5}},
        {"cpu_usage": {"total_usage": 9}})
    assert stats.stats_json(c, first, None)["precpu_stats"] == stats.zero_cpu()
    assert doc["networks"] == {"eth0": {}} and doc["name"] == "/box"


# ----- archive path stat -------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "go"), [
    (stat.S_IFDIR | 0o755, 2147484141),
    (stat.S_IFREG | 0o4755, 8389101),          # setuid
    (stat.S_IFLNK | 0o777, 134218239),
    (stat.S_IFIFO | 0o644, 33554852),
    (stat.S_IFDIR | 0o1777, 2148532735),       # sticky
    (stat.S_IFREG | 0o644, 420),
    (stat.S_IFCHR | 0o666, (1 << 26) | (1 << 21) | 0o666),
    (stat.S_IFREG | 0o2755, (1 << 22) | 0o755),
])
def test_go_file_mode(mode, go):
    assert fsops.go_file_mode(mode) == go


@pytest.mark.parametrize(("path", "name"), [
    ("/tmp/d", "d"), ("/tmp/d/", "d"), ("/tmp/d/.", "."), ("/tmp/../tmp/d/.", "."), ("/", "/"), ("tmp/d", "d"),
    ("/tmp/dlnk/", "dlnk"),
])
def test_archive_name(path, name):
    assert fsops.archive_name(path) == name


def test_path_stat_header_is_gos_json_in_standard_base64(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"")
    os.chmod(path, 0o644)
    os.utime(path, ns=(0, 1795986892069419770))
    value = fsops.path_stat_header("~~~<&>", os.lstat(path), "")
    assert "+" in value  # standard alphabet, as dockerd sends it
    assert json.loads(base64.b64decode(value)) == {"name": "~~~<&>", "size": 0, "mode": 420,
                                                    "mtime": "2026-11-29T21:14:52.06941977Z", "linkTarget": ""}
    assert b"\\u003c\\u0026\\u003e" in base64.b64decode(value)


# ----- commit ------------------------------------------------------------------------------------
def test_commit_config():
    c = _container(Entrypoint=["sh"], Cmd=["-c", "sleep 1000"], WorkingDir="/tmp", Labels={"a": "b"},
                   ExposedPorts={"22/tcp": {}})
    same = commits.commit_config(c, None, [])
    assert (same["Hostname"], same["Entrypoint"], same["Cmd"], same["Env"], same["WorkingDir"]) == (
        "abc123", ["sh"], ["-c", "sleep 1000"], ["FOO=bar"], "/tmp")
    body = commits.commit_config(c, {"Env": ["X=1"], "Cmd": ["echo", "hi"]}, ['EXPOSE 80', 'LABEL c=d'])
    assert body["Env"] == ["X=1", "FOO=bar"] and body["Cmd"] == ["echo", "hi"]
    assert body["Entrypoint"] == ["sh"] and body.get("Hostname", "") == ""
    assert body["ExposedPorts"] == {"22/tcp": {}, "80/tcp": {}} and body["Labels"] == {"a": "b", "c": "d"}
    with pytest.raises(InvalidParameter, match="^run is not a valid change command$"):
        commits.commit_config(c, None, ["RUN x"])


def test_layer_pipe_passes_data_and_errors():
    pipe = commits.LayerPipe(limit=4)
    out: list[bytes] = []

    def reader() -> None:
        while chunk := pipe.read(3):
            out.append(chunk)

    thread = threading.Thread(target=reader)
    thread.start()
    for piece in (b"abcd", b"ef", b"ghij"):
        pipe.write(piece)
    pipe.close()
    thread.join(5)
    assert b"".join(out) == b"abcdefghij"
    failing = commits.LayerPipe()
    failing.write(b"x")
    failing.close(OSError("disk full"))
    with pytest.raises(OSError, match="disk full"):
        failing.read()
    with pytest.raises(BrokenPipeError):
        failing.write(b"y")
