"""``run``/``create`` flags -> Engine API create body, compared with what the docker 20.10 CLI sends.

Every expected value below was captured from ``docker create`` (20.10.24) through a logging proxy in
front of dockerd: the default body byte for byte, then per case the top-level fields (``HostConfig.X``
for host-config fields) that differ from it. Where docker's order comes from a Go map iteration (Env
with ``-e NAME``, Binds) it is random; berth keeps the command-line order.
"""

from __future__ import annotations

import json
import shlex

import pytest

from berth.cli import runopts, runvalues
from berth.cli.flags import FlagSet

DOCKER_DEFAULT_BODY = (
    '{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,'
    '"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,'
    '"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},'
    '"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},'
    '"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},'
    '"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"CapAdd":null,"CapDrop":null,'
    '"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,'
    '"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,'
    '"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"",'
    '"ShmSize":0,"ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,'
    '"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":null,'
    '"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,'
    '"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"",'
    '"Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"KernelMemory":0,'
    '"KernelMemoryTCP":0,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,'
    '"OomKillDisable":false,"PidsLimit":0,"Ulimits":null,"CpuCount":0,"CpuPercent":0,'
    '"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},'
    '"NetworkingConfig":{"EndpointsConfig":{}}}'
)
ENVIRON = {"FOO": "fooval", "PATH": "/usr/bin"}


def endpoint(**fields):
    """An EndpointSettings as docker 20.10 sends it, with ``fields`` set."""
    out = {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "", "Gateway": "",
           "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
           "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}
    out.update(fields)
    return out


def build(cmdline: str, environ=ENVIRON, run: bool = False):
    fs = runopts.add_create_flags(FlagSet("berth create", "[OPTIONS] IMAGE", "", 1, interspersed=False), run=run)
    args, positional = fs.parse(shlex.split(cmdline))
    return runopts.build_create_request(args, positional, environ)


def differences(body: dict) -> dict:
    """Fields of ``body`` that differ from docker's default body (HostConfig fields as ``HostConfig.X``)."""
    base = json.loads(DOCKER_DEFAULT_BODY)
    out = {}
    for key in body.keys() | base.keys():
        if key == "HostConfig":
            for hkey in body[key].keys() | base[key].keys():
                if body[key].get(hkey, "<absent>") != base[key].get(hkey, "<absent>"):
                    out[f"HostConfig.{hkey}"] = body[key].get(hkey, "<absent>")
        elif body.get(key, "<absent>") != base.get(key, "<absent>"):
            out[key] = body.get(key, "<absent>")
    return out


def test_default_body_is_byte_for_byte_dockers():
    request = build("busybox")
    assert json.dumps(request.body, separators=(",", ":")) == DOCKER_DEFAULT_BODY
    assert request.image == "busybox" and request.params == {} and request.warnings == []


CASES = [
    ("busybox sh -c 'echo'", {"Cmd": ["sh", "-c", "echo"]}),
    ("-e A=1 -e FOO -e NOPE busybox", {"Env": ["A=1", "FOO=fooval", "NOPE"]}),
    ("-it busybox", {"AttachStdin": True, "OpenStdin": True, "StdinOnce": True, "Tty": True}),
    ("-i busybox", {"AttachStdin": True, "OpenStdin": True, "StdinOnce": True}),
    ("-t busybox", {"Tty": True}),
    ("-w /tmp -u 1:2 --entrypoint /bin/sh busybox", {"Entrypoint": ["/bin/sh"], "User": "1:2", "WorkingDir": "/tmp"}),
    ("--entrypoint '' busybox", {"Entrypoint": [""]}),
    ("--entrypoint 'a b' busybox c d", {"Entrypoint": ["a b"], "Cmd": ["c", "d"]}),
    ("-h myhost --domainname foo.com busybox", {"Domainname": "foo.com", "Hostname": "myhost"}),
    ("-l z=1 -l a=b -l c busybox", {"Labels": {"a": "b", "c": "", "z": "1"}}),
    ("--restart on-failure:3 busybox", {"HostConfig.RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}),
    ("--restart always busybox", {"HostConfig.RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}}),
    ("--rm busybox", {"HostConfig.AutoRemove": True}),
    ("--stop-signal SIGINT --stop-timeout 5 --init busybox",
     {"HostConfig.Init": True, "StopSignal": "SIGINT", "StopTimeout": 5}),
    ("--init=false --stop-timeout 0 busybox", {"HostConfig.Init": False, "StopTimeout": 0}),
    ("-m 32m --memory-swap 64m --memory-reservation 16m busybox",
     {"HostConfig.Memory": 33554432, "HostConfig.MemoryReservation": 16777216, "HostConfig.MemorySwap": 67108864}),
    ("--memory-swap -1 -m 1g busybox", {"HostConfig.Memory": 1073741824, "HostConfig.MemorySwap": -1}),
    ("--memory 512k --shm-size 1.5g busybox", {"HostConfig.Memory": 524288, "HostConfig.ShmSize": 1610612736}),
    ("-m 1048576 busybox", {"HostConfig.Memory": 1048576}),
    ("--cpus 1.5 --cpu-shares 512 busybox", {"HostConfig.CpuShares": 512, "HostConfig.NanoCpus": 1500000000}),
    ("--cpus 3/2 busybox", {"HostConfig.NanoCpus": 1500000000}),
    ("-c 100 --cpus 0.25 busybox", {"HostConfig.CpuShares": 100, "HostConfig.NanoCpus": 250000000}),
    ("--cpu-period 100000 --cpu-quota 50000 --cpuset-cpus 0 busybox",
     {"HostConfig.CpuPeriod": 100000, "HostConfig.CpuQuota": 50000, "HostConfig.CpusetCpus": "0"}),
    ("--pids-limit 100 --read-only busybox", {"HostConfig.PidsLimit": 100, "HostConfig.ReadonlyRootfs": True}),
    ("--pids-limit -1 busybox", {"HostConfig.PidsLimit": -1}),
    ("--cap-add NET_ADMIN --cap-drop ALL --privileged busybox",
     {"HostConfig.CapAdd": ["NET_ADMIN"], "HostConfig.CapDrop": ["ALL"], "HostConfig.Privileged": True}),
    ("--security-opt no-new-privileges --security-opt seccomp=unconfined busybox",
     {"HostConfig.SecurityOpt": ["no-new-privileges", "seccomp=unconfined"]}),
    ("--security-opt systempaths=unconfined --security-opt apparmor=foo --security-opt label:disable busybox",
     {"HostConfig.MaskedPaths": [], "HostConfig.ReadonlyPaths": [],
      "HostConfig.SecurityOpt": ["apparmor=foo", "label:disable"]}),
    ("--ulimit nofile=1024:2048 --ulimit nproc=10 busybox",
     {"HostConfig.Ulimits": [{"Name": "nofile", "Hard": 2048, "Soft": 1024},
                             {"Name": "nproc", "Hard": 10, "Soft": 10}]}),
    ("--network none busybox", {"HostConfig.NetworkMode": "none"}),
    ("--net host busybox", {"HostConfig.NetworkMode": "host"}),
    ("--network container:abc busybox", {"HostConfig.NetworkMode": "container:abc"}),
    ("--network nxnet busybox", {"HostConfig.NetworkMode": "nxnet"}),
    ("--network nxnet --network-alias foo --network-alias bar --ip 172.30.0.50 --ip6 fd00::5 "
     "--mac-address 02:42:ac:11:00:99 busybox",
     {"HostConfig.NetworkMode": "nxnet", "MacAddress": "02:42:ac:11:00:99",
      "NetworkingConfig": {"EndpointsConfig": {"nxnet": endpoint(
          IPAMConfig={"IPv4Address": "172.30.0.50", "IPv6Address": "fd00::5"}, Aliases=["foo", "bar"])}}}),
    ("--network nxnet --link a:b busybox",
     {"HostConfig.Links": ["a:b"], "HostConfig.NetworkMode": "nxnet",
      "NetworkingConfig": {"EndpointsConfig": {"nxnet": endpoint(Links=["a:b"])}}}),
    ("--network nxnet --network nx2 busybox",
     {"HostConfig.NetworkMode": "nxnet",
      "NetworkingConfig": {"EndpointsConfig": {"nx2": endpoint(), "nxnet": endpoint()}}}),
    ("--network name=nxnet,alias=x busybox",
     {"HostConfig.NetworkMode": "nxnet", "NetworkingConfig": {"EndpointsConfig": {"nxnet": endpoint(Aliases=["x"])}}}),
    ("--network nxnet --net-alias a --link-local-ip 169.254.1.1 busybox",
     {"HostConfig.NetworkMode": "nxnet", "NetworkingConfig": {"EndpointsConfig": {"nxnet": endpoint(
         IPAMConfig={"LinkLocalIPs": ["169.254.1.1"]}, Aliases=["a"])}}}),
    ("--dns 8.8.8.8 --dns-search example.com --dns-option ndots:2 busybox",
     {"HostConfig.Dns": ["8.8.8.8"], "HostConfig.DnsOptions": ["ndots:2"], "HostConfig.DnsSearch": ["example.com"]}),
    ("--add-host a:1.2.3.4 --add-host gw:host-gateway --link foo:bar busybox",
     {"HostConfig.ExtraHosts": ["a:1.2.3.4", "gw:host-gateway"], "HostConfig.Links": ["foo:bar"]}),
    ("--expose 80 --expose 7000-7002/udp busybox",
     {"ExposedPorts": {"7000/udp": {}, "7001/udp": {}, "7002/udp": {}, "80/tcp": {}}}),
    ("-p 80 busybox", {"ExposedPorts": {"80/tcp": {}}, "HostConfig.PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": ""}]}}),
    ("-p 8080:80 -p 127.0.0.1:9000:90/udp -p 127.0.0.1::91 busybox",
     {"ExposedPorts": {"80/tcp": {}, "90/udp": {}, "91/tcp": {}},
      "HostConfig.PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                  "90/udp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}],
                                  "91/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}}),
    ("-p 8000-8002:7000-7002 busybox",
     {"ExposedPorts": {"7000/tcp": {}, "7001/tcp": {}, "7002/tcp": {}},
      "HostConfig.PortBindings": {"7000/tcp": [{"HostIp": "", "HostPort": "8000"}],
                                  "7001/tcp": [{"HostIp": "", "HostPort": "8001"}],
                                  "7002/tcp": [{"HostIp": "", "HostPort": "8002"}]}}),
    ("-p 80:80 -p 81:80 busybox",
     {"ExposedPorts": {"80/tcp": {}},
      "HostConfig.PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "80"}, {"HostIp": "", "HostPort": "81"}]}}),
    ("-p [::1]:8080:80 busybox",
     {"ExposedPorts": {"80/tcp": {}}, "HostConfig.PortBindings": {"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]}}),
    ("-p 127.0.0.1:8000-8002:80 busybox",
     {"ExposedPorts": {"80/tcp": {}},
      "HostConfig.PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8000-8002"}]}}),
    ("-p 0.0.0.0::80/UDP busybox",
     {"ExposedPorts": {"80/udp": {}}, "HostConfig.PortBindings": {"80/udp": [{"HostIp": "0.0.0.0", "HostPort": ""}]}}),
    ("-p 81/sctp busybox",
     {"ExposedPorts": {"81/sctp": {}}, "HostConfig.PortBindings": {"81/sctp": [{"HostIp": "", "HostPort": ""}]}}),
    ("-p target=80,published=8080,protocol=udp busybox",
     {"ExposedPorts": {"80/udp": {}}, "HostConfig.PortBindings": {"80/udp": [{"HostIp": "", "HostPort": "8080"}]}}),
    ("-P --expose 80 busybox", {"ExposedPorts": {"80/tcp": {}}, "HostConfig.PublishAllPorts": True}),
    ("-v /data -v vol1:/v1:ro,nocopy -v /tmp:/t busybox",
     {"HostConfig.Binds": ["vol1:/v1:ro,nocopy", "/tmp:/t"], "Volumes": {"/data": {}}}),
    ("-v vol1:/v1 -v /tmp:/t -v vol1:/v1 -v /data -v /data busybox",
     {"HostConfig.Binds": ["vol1:/v1", "/tmp:/t"], "Volumes": {"/data": {}}}),
    ("--mount type=bind,src=/tmp,dst=/b,readonly --mount type=volume,source=v2,target=/v2,volume-nocopy,"
     "volume-driver=local,volume-opt=a=b,volume-label=x=y busybox",
     {"HostConfig.Mounts": [
         {"Type": "bind", "Source": "/tmp", "Target": "/b", "ReadOnly": True},
         {"Type": "volume", "Source": "v2", "Target": "/v2", "VolumeOptions": {
             "NoCopy": True, "Labels": {"x": "y"}, "DriverConfig": {"Name": "local", "Options": {"a": "b"}}}}]}),
    ("--mount type=tmpfs,dst=/tt,tmpfs-size=64m,tmpfs-mode=1770 busybox",
     {"HostConfig.Mounts": [{"Type": "tmpfs", "Target": "/tt", "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 1016}}]}),
    ("--mount type=bind,src=/tmp,dst=/b,bind-propagation=rshared,consistency=cached busybox",
     {"HostConfig.Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/b", "Consistency": "cached",
                             "BindOptions": {"Propagation": "rshared"}}]}),
    ("--mount 'type=bind,\"src=/a,b\",dst=/c' busybox",
     {"HostConfig.Mounts": [{"Type": "bind", "Source": "/a,b", "Target": "/c"}]}),
    ("--tmpfs /run --tmpfs /tmp2:rw,size=64m busybox", {"HostConfig.Tmpfs": {"/run": "", "/tmp2": "rw,size=64m"}}),
    ("--volumes-from abc --volumes-from def:ro busybox", {"HostConfig.VolumesFrom": ["abc", "def:ro"]}),
    ("--runtime runc --log-driver json-file --log-opt max-size=1m --log-opt max-file=2 busybox",
     {"HostConfig.LogConfig": {"Type": "json-file", "Config": {"max-file": "2", "max-size": "1m"}},
      "HostConfig.Runtime": "runc"}),
    ("--health-cmd 'true' --health-interval 5s --health-timeout 2s --health-retries 3 --health-start-period 1s busybox",
     {"Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 5000000000, "Timeout": 2000000000,
                      "StartPeriod": 1000000000, "Retries": 3}}),
    ("--health-interval 1m30s busybox", {"Healthcheck": {"Interval": 90000000000}}),
    ("--health-timeout 1.5s busybox", {"Healthcheck": {"Timeout": 1500000000}}),
    ("--no-healthcheck busybox", {"Healthcheck": {"Test": ["NONE"]}}),
    ("--group-add 10 --group-add audio busybox", {"HostConfig.GroupAdd": ["10", "audio"]}),
    ("--device /dev/null --device /dev/zero:/dev/z:r busybox",
     {"HostConfig.Devices": [
         {"PathOnHost": "/dev/null", "PathInContainer": "/dev/null", "CgroupPermissions": "rwm"},
         {"PathOnHost": "/dev/zero", "PathInContainer": "/dev/z", "CgroupPermissions": "r"}]}),
    ("--device /dev/null:rw --device /dev/zero:/dev/z busybox",
     {"HostConfig.Devices": [
         {"PathOnHost": "/dev/null", "PathInContainer": "/dev/null", "CgroupPermissions": "rw"},
         {"PathOnHost": "/dev/zero", "PathInContainer": "/dev/z", "CgroupPermissions": "rwm"}]}),
    ("--sysctl net.ipv4.ip_forward=1 --sysctl kernel.shmmax=1 --oom-kill-disable -m 8m --shm-size 64m busybox",
     {"HostConfig.OomKillDisable": True, "HostConfig.ShmSize": 67108864, "HostConfig.Memory": 8388608,
      "HostConfig.Sysctls": {"kernel.shmmax": "1", "net.ipv4.ip_forward": "1"}}),
    ("--ipc host --pid host --uts host --userns host busybox",
     {"HostConfig.IpcMode": "host", "HostConfig.PidMode": "host", "HostConfig.UTSMode": "host",
      "HostConfig.UsernsMode": "host"}),
    ("--pid container:abc --ipc container:abc busybox",
     {"HostConfig.IpcMode": "container:abc", "HostConfig.PidMode": "container:abc"}),
    ("--cgroupns private --cgroup-parent foo busybox", {"HostConfig.CgroupParent": "foo", "HostConfig.CgroupnsMode": "private"}),
    ("-a stdout busybox", {"AttachStderr": False}),
    ("-a STDOUT busybox", {"AttachStderr": False}),
    ("-a stdin -a stderr busybox", {"AttachStdin": True, "AttachStdout": False}),
    ("--cidfile /tmp/x.cid busybox", {"HostConfig.ContainerIDFile": "/tmp/x.cid"}),
    ("--kernel-memory 10m --memory-swappiness 50 --oom-score-adj 5 --cpu-rt-runtime 10 --cpu-rt-period 100 "
     "--cpuset-mems 0 --blkio-weight 300 busybox",
     {"HostConfig.BlkioWeight": 300, "HostConfig.CpuRealtimePeriod": 100, "HostConfig.CpuRealtimeRuntime": 10,
      "HostConfig.CpusetMems": "0", "HostConfig.KernelMemory": 10485760, "HostConfig.MemorySwappiness": 50,
      "HostConfig.OomScoreAdj": 5}),
    ("--device-cgroup-rule 'c 1:3 mr' --isolation default --volume-driver foo --storage-opt size=1G "
     "--cgroupns host busybox",
     {"HostConfig.CgroupnsMode": "host", "HostConfig.DeviceCgroupRules": ["c 1:3 mr"],
      "HostConfig.Isolation": "default", "HostConfig.StorageOpt": {"size": "1G"}, "HostConfig.VolumeDriver": "foo"}),
    ("--gpus all busybox",
     {"HostConfig.DeviceRequests": [{"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]],
                                     "Options": {}}]}),
]


@pytest.mark.parametrize("cmdline,expected", CASES, ids=[c for c, _ in CASES])
def test_flags_become_dockers_create_body(cmdline, expected):
    assert differences(build(cmdline).body) == expected


def test_name_and_platform_are_query_parameters():
    request = build("--name web --platform linux/amd64 busybox")
    assert request.params == {"name": "web", "platform": "linux/amd64"}
    assert "name" not in request.body


def test_run_only_flags_leave_the_body_alone():
    request = build("-d --detach-keys ctrl-a --sig-proxy=false busybox", run=True)
    assert json.dumps(request.body, separators=(",", ":")) == DOCKER_DEFAULT_BODY


def test_mount_and_port_keys_keep_docker_field_order():
    mount = build("--mount type=volume,volume-label=b=2,volume-label=a=1,volume-driver=d,dst=/v,volume-nocopy "
                  "busybox").body["HostConfig"]["Mounts"][0]
    assert json.dumps(mount) == ('{"Type": "volume", "Target": "/v", "VolumeOptions": {"NoCopy": true, '
                                 '"Labels": {"a": "1", "b": "2"}, "DriverConfig": {"Name": "d"}}}')


def test_env_file_and_label_file(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\n\n  A=1\nFOO\nNOPE\nC=x=y\n  D= spaced \n\tT=tab\n  # indented\n")
    label_file = tmp_path / "labels"
    label_file.write_text("la=1\n# c\nlb\nlc= 3\n")
    request = build(f"-u root -e A=9 -e Z=1 --env-file {env_file} --label-file {label_file} -l x=q "
                    f"-l la=override busybox")
    assert request.body["Env"] == ["A=1", "FOO=fooval", "C=x=y", "D= spaced ", "T=tab", "A=9", "Z=1"]
    assert request.body["Labels"] == {"la": "override", "lc": " 3", "x": "q"}


@pytest.mark.parametrize("content,message", [
    ("BAD VAR=1\n", "berth: poorly formatted environment: variable 'BAD VAR' contains whitespaces."),
    ("=1\n", "berth: poorly formatted environment: no variable name on line '=1'."),
    ("export E=1\n", "berth: poorly formatted environment: variable 'export E' contains whitespaces."),
])
def test_bad_env_files(tmp_path, content, message):
    path = tmp_path / "env"
    path.write_text(content)
    with pytest.raises(runvalues.OptionError) as info:
        build(f"--env-file {path} busybox")
    assert info.value.render() == message


ERRORS = [
    ("-m abc busybox", 'invalid argument "abc" for "-m, --memory" flag: invalid size: \'abc\''),
    ("--memory-swap xx busybox", 'invalid argument "xx" for "--memory-swap" flag: invalid size: \'xx\''),
    ("--shm-size -1 busybox", 'invalid argument "-1" for "--shm-size" flag: invalid size: \'-1\''),
    ("--cpus abc busybox", 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number'),
    ("--cpus 0.0000000001 busybox", 'invalid argument "0.0000000001" for "--cpus" flag: value is too precise'),
    ("-p abc busybox", "berth: Invalid containerPort: abc."),
    ("-p 70000 busybox", "berth: Invalid containerPort: 70000."),
    ("-p 1:2:3:4 busybox", "berth: Invalid ip address 1:2: address 1:2:: too many colons in address."),
    ("-p 8000-8001:7000-7002 busybox",
     "berth: Invalid ranges specified for container and host Ports: 7000-7002 and 8000-8001."),
    ("-p 7000-6000 busybox", "berth: Invalid containerPort: 7000-6000."),
    ("-p 80/foo busybox", "berth: Invalid proto: foo."),
    ("-p 1.2.3:80:80 busybox", "berth: Invalid ip address: 1.2.3."),
    ("-p 80x:80 busybox", "berth: Invalid hostPort: 80x."),
    ("--ulimit nofile busybox", 'invalid argument "nofile" for "--ulimit" flag: invalid ulimit argument: nofile'),
    ("--ulimit nofile=a busybox",
     'invalid argument "nofile=a" for "--ulimit" flag: strconv.ParseInt: parsing "a": invalid syntax'),
    ("--ulimit nofile=10:5 busybox", 'invalid argument "nofile=10:5" for "--ulimit" flag: ulimit soft limit must '
                                     'be less than or equal to hard limit: 10 > 5'),
    ("--ulimit foo=1 busybox", 'invalid argument "foo=1" for "--ulimit" flag: invalid ulimit type: foo'),
    ("--restart on-failure:x busybox", "berth: maximum retry count must be an integer."),
    ("--mount src=/x busybox", 'invalid argument "src=/x" for "--mount" flag: target is required'),
    ("--mount type=volume,dst=/x,foo=bar busybox",
     'invalid argument "type=volume,dst=/x,foo=bar" for "--mount" flag: unexpected key \'foo\' in \'foo=bar\''),
    ("--mount type=volume,dst=/x,readonly=maybe busybox",
     'invalid argument "type=volume,dst=/x,readonly=maybe" for "--mount" flag: invalid value for readonly: maybe'),
    ("--mount type=tmpfs,dst=/x,tmpfs-size=abc busybox",
     'invalid argument "type=tmpfs,dst=/x,tmpfs-size=abc" for "--mount" flag: invalid value for tmpfs-size: abc'),
    ("--mount garbage busybox",
     'invalid argument "garbage" for "--mount" flag: invalid field \'garbage\' must be a key=value pair'),
    ("--mount type=bind,dst=/x,volume-nocopy busybox", 'invalid argument "type=bind,dst=/x,volume-nocopy" for '
                                                       '"--mount" flag: cannot mix \'volume-*\' options with mount type \'bind\''),
    ("--env-file /nonexistent/env busybox", "berth: open /nonexistent/env: no such file or directory."),
    ("-e =x busybox", 'invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x'),
    ("-l =x busybox", 'invalid argument "=x" for "-l, --label" flag: invalid label \'=x\': empty name'),
    ("--add-host foo busybox", 'invalid argument "foo" for "--add-host" flag: bad format for add-host: "foo"'),
    ("--add-host foo:notip busybox",
     'invalid argument "foo:notip" for "--add-host" flag: invalid IP address in add-host: "notip"'),
    ("--expose abc busybox",
     'berth: invalid range format for --expose: abc, error: strconv.ParseUint: parsing "abc": invalid syntax.'),
    ("--expose 1:2 busybox", "berth: invalid port format for --expose: 1:2."),
    ("--device /dev/nx:a:b:c busybox", "berth: bad format for path: /dev/nx:a:b:c."),
    ("--device /dev/nx:/dev/y:abc busybox", "berth: bad mode specified: abc."),
    ("--device rel busybox", "berth: rel is not an absolute path."),
    ("--device-cgroup-rule bogus busybox",
     "invalid argument \"bogus\" for \"--device-cgroup-rule\" flag: invalid device cgroup format 'bogus'"),
    ("--device-cgroup-rule x:1:2 busybox",
     "invalid argument \"x:1:2\" for \"--device-cgroup-rule\" flag: invalid device cgroup format 'x:1:2'"),
    ("--health-interval abc busybox",
     'invalid argument "abc" for "--health-interval" flag: time: invalid duration "abc"'),
    ("--health-interval 5 busybox",
     'invalid argument "5" for "--health-interval" flag: time: missing unit in duration "5"'),
    ("-a foo busybox", 'invalid argument "foo" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR'),
    ("--link a:b:c busybox", 'invalid argument "a:b:c" for "--link" flag: bad format for links: a:b:c'),
    ("--sysctl foo busybox", 'invalid argument "foo" for "--sysctl" flag: sysctl \'foo\' is not whitelisted'),
    ("--sysctl kernel.foo=1 busybox",
     'invalid argument "kernel.foo=1" for "--sysctl" flag: sysctl \'kernel.foo=1\' is not whitelisted'),
    ("--dns abc busybox", 'invalid argument "abc" for "--dns" flag: abc is not an ip address'),
    ("--dns-search a..b busybox", 'invalid argument "a..b" for "--dns-search" flag: a..b is not a valid domain'),
    ("--mac-address xx busybox", "berth: xx is not a valid mac address."),
    ("--memory-swappiness 200 busybox", "berth: invalid value: 200. Valid memory swappiness range is 0-100."),
    ("--pid foo busybox", "berth: --pid: invalid PID mode."),
    ("--uts foo busybox", "berth: --uts: invalid UTS mode."),
    ("--userns foo busybox", "berth: --userns: invalid USER mode."),
    ("--security-opt foo busybox", 'berth: Invalid --security-opt: "foo".'),
    ("--security-opt seccomp=/nonexistent.json busybox", "berth: opening seccomp profile (/nonexistent.json) "
                                                         "failed: open /nonexistent.json: no such file or directory."),
    ("--health-cmd x --no-healthcheck busybox", "berth: --no-healthcheck conflicts with --health-* options."),
    ("--rm --restart always busybox", "berth: Conflicting options: --restart and --rm."),
    ("--rm --restart foo busybox", "berth: Conflicting options: --restart and --rm."),
    ("--network bridge --network-alias foo busybox",
     "berth: network-scoped aliases are only supported for user-defined networks."),
    ("--network bridge --link a:b busybox", "berth: links are only supported for user-defined networks."),
    ("--network host --network-alias q busybox",
     "berth: network-scoped aliases are only supported for user-defined networks."),
    ("--network nxnet --network host busybox",
     "berth: conflicting options: cannot attach both user-defined and non-user-defined network-modes."),
]


@pytest.mark.parametrize("cmdline,message", ERRORS, ids=[c for c, _ in ERRORS])
def test_bad_values_give_dockers_messages(cmdline, message):
    with pytest.raises(runvalues.OptionError) as info:
        build(cmdline)
    assert info.value.render() == message


@pytest.mark.parametrize("cmdline,warnings", [
    ("--oom-kill-disable busybox", ["WARNING: Disabling the OOM killer on containers without setting a "
                                    "'-m/--memory' limit may be dangerous."]),
    ("--oom-kill-disable -m 10m busybox", []),
    ("--kernel-memory 10m busybox", ["WARNING: Specifying a kernel memory limit is deprecated and will be removed "
                                     "in a future release."]),
    ("--dns 127.0.0.53 --dns 2001:db8::1 --dns 8.8.8.8 busybox",
     ["WARNING: Localhost DNS setting (--dns=127.0.0.53) may fail in containers.",
      "WARNING: Localhost DNS setting (--dns=2001:db8::1) may fail in containers."]),
])
def test_client_side_warnings(cmdline, warnings):
    assert build(cmdline).warnings == warnings


@pytest.mark.parametrize("text,expected", [
    ("0", 0), ("1024", 1024), ("1k", 1024), ("1K", 1024), ("1kb", 1024), ("1KiB", 1024), ("32m", 33554432),
    ("1.5g", 1610612736), ("1 g", 1073741824), ("2t", 2 * 1024 ** 4), ("1p", 1024 ** 5), ("1.5", 1),
    ("10b", 10),
])
def test_ram_in_bytes(text, expected):
    assert runvalues.ram_in_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-1", "1x", "1kk", "k", " 1k", "1.k"])
def test_ram_in_bytes_refuses(text):
    with pytest.raises(ValueError, match="invalid size"):
        runvalues.ram_in_bytes(text)


@pytest.mark.parametrize("text,nanos", [
    ("1", 1_000_000_000), ("0.5", 500_000_000), ("1.000000001", 1_000_000_001), ("3/2", 1_500_000_000),
    ("1e-3", 1_000_000), (".25", 250_000_000), ("", 0),
])
def test_nano_cpus(text, nanos):
    assert runvalues.nano_cpus(text) == nanos


@pytest.mark.parametrize("text,nanos", [
    ("", 0), ("0", 0), ("1ns", 1), ("1us", 1000), ("1µs", 1000), ("250ms", 250_000_000), ("1h2m3s", 3_723_000_000_000),
    ("1.5h", 5_400_000_000_000), ("-2s", -2_000_000_000), (".5s", 500_000_000),
])
def test_go_durations(text, nanos):
    assert runvalues.duration_ns("--x", text) == nanos


@pytest.mark.parametrize("text,message", [
    ("5", 'time: missing unit in duration "5"'), ("5x", 'time: unknown unit "x" in duration "5x"'),
    ("s", 'time: invalid duration "s"'), ("1s2", 'time: missing unit in duration "1s2"'),
])
def test_go_duration_errors(text, message):
    with pytest.raises(runvalues.OptionError) as info:
        runvalues.duration_ns("--x", text)
    assert info.value.message == message


@pytest.mark.parametrize("spec,policy", [
    ("no", {"Name": "no", "MaximumRetryCount": 0}), ("on-failure", {"Name": "on-failure", "MaximumRetryCount": 0}),
    ("on-failure:5", {"Name": "on-failure", "MaximumRetryCount": 5}),
    ("unless-stopped", {"Name": "unless-stopped", "MaximumRetryCount": 0}),
])
def test_restart_policy(spec, policy):
    assert runvalues.restart_policy(spec) == policy


def test_restart_policy_with_too_many_parts():
    with pytest.raises(runvalues.OptionError, match="invalid restart policy format"):
        runvalues.restart_policy("on-failure:1:2")
