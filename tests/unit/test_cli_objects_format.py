"""Pure parts of the network, volume and stats commands: IPAM checks, rows, stats arithmetic."""

from __future__ import annotations

import pytest

from berth.cli import output
from berth.cli.commands.networks import IPAMError, NetworkRow, go_time_string, ipam_config
from berth.cli.commands.stats import StatsRow, cpu_percent, memory_usage
from berth.cli.commands.volumes import (
    VolumeRow,
    go_json_indent,
    natural_key,
    parse_filters,
    parse_map,
)
from berth.cli.flags import FlagSet


@pytest.mark.parametrize(("subnets", "ranges", "gateways", "aux", "expected"), [
    ([], [], [], {}, []),
    (["10.1.0.0/24"], ["10.1.0.128/25"], ["10.1.0.1"], {"h": "10.1.0.9"},
     [{"Subnet": "10.1.0.0/24", "IPRange": "10.1.0.128/25", "Gateway": "10.1.0.1",
       "AuxiliaryAddresses": {"h": "10.1.0.9"}}]),
    (["10.1.0.0/24", "fd00::/64"], [], ["fd00::1", "10.1.0.254"], {},
     [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.254"}, {"Subnet": "fd00::/64", "Gateway": "fd00::1"}]),
    ([], [], ["10.1.1.1"], {}, "every ip-range or gateway must have a corresponding subnet"),
    (["10.0.0.0/24"], ["10.0.0.0/25", "10.0.0.128/25"], [], {},
     "every ip-range or gateway must have a corresponding subnet"),
    (["10.240.0.0/16", "10.240.1.0/24"], [], [], {}, "multiple overlapping subnet configuration is not supported"),
    (["10.0.0.0/24"], ["10.1.0.0/24"], [], {}, "no matching subnet for range 10.1.0.0/24"),
    (["10.0.0.0/24"], [], ["bad"], {}, "no matching subnet for gateway bad"),
    (["10.0.0.0/24"], [], [], {"bad": ""}, "no matching subnet for aux-address "),
    (["10.0.0.0/24", "10.1.0.0/24"], [], ["10.0.0.1", "10.0.0.2"], {},
     "cannot configure multiple gateways (10.0.0.2, 10.0.0.1) for the same subnet (10.0.0.0/24)"),
])
def test_ipam_config(subnets, ranges, gateways, aux, expected):
    if isinstance(expected, str):
        with pytest.raises(IPAMError) as err:
            ipam_config(subnets, ranges, gateways, aux)
        assert str(err.value) == expected
    else:
        assert ipam_config(subnets, ranges, gateways, aux) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-29T20:43:19.877311417Z", "2026-11-29 20:43:19.877311417 +0000 UTC"),
    ("2026-11-29T20:43:19.8773Z", "2026-11-29 20:43:19.8773 +0000 UTC"),
    ("2026-11-29T20:43:19Z", "2026-11-29 20:43:19 +0000 UTC"),
    ("2026-11-29T20:43:19.5+02:00", "2026-11-29 20:43:19.5 +0200 +0200"),
])
def test_go_time_string(value, expected):
    assert go_time_string(value) == expected


def test_natural_order():
    names = ["net10", "net2", "bridge", "net1", "Net3"]
    assert sorted(names, key=natural_key) == ["Net3", "bridge", "net1", "net2", "net10"]


@pytest.mark.parametrize(("specs", "expected"), [
    ([], None),
    ([""], None),
    (["name=zz", " Label = a=b "], {"name": {"zz": True}, "label": {"a=b": True}}),
    (["dangling=true", "dangling=false"], {"dangling": {"true": True, "false": True}}),
])
def test_parse_filters(specs, expected):
    assert parse_filters(FlagSet("berth volume ls", ""), specs) == expected


@pytest.mark.parametrize(("names", "label"), [("-f, --filter", "-f, --filter"), ("--filter", "--filter")])
def test_parse_filters_bad_format(capsys, names, label):
    flags = FlagSet("berth volume ls", "").add(names, "list")
    with pytest.raises(SystemExit) as exit_info:
        parse_filters(flags, ["bogus"])
    assert exit_info.value.code == 125
    assert capsys.readouterr().err.startswith(
        f'invalid argument "bogus" for "{label}" flag: bad format of filter (expected name=value)\n')


def test_parse_map():
    assert parse_map(["a=b", "c", "d=e=f"]) == {"a": "b", "c": "", "d": "e=f"}


def test_volume_row():
    row = VolumeRow({"Name": "v", "Driver": "local", "Scope": "local", "Mountpoint": "/m",
                     "Labels": {"z": "1", "a": "2"}, "UsageData": {"Size": 2048, "RefCount": 0}})
    assert row.to_json() == {"Availability": "N/A", "Driver": "local", "Group": "N/A", "Labels": "a=2,z=1",
                             "Links": "0", "Mountpoint": "/m", "Name": "v", "Scope": "local", "Size": "2.05kB",
                             "Status": "N/A"}
    assert row.Label("z") == "1" and row.Label("missing") == ""
    assert VolumeRow({"Name": "w"}).Size == "N/A"


def test_network_row():
    network = {"Name": "n", "Id": "f" * 64, "Driver": "bridge", "Scope": "local", "EnableIPv6": True,
               "Internal": False, "Labels": None, "Created": "2026-11-29T20:45:10.981513543Z"}
    assert NetworkRow(network, True).to_json() == {
        "CreatedAt": "2026-11-29 20:45:10.981513543 +0000 UTC", "Driver": "bridge", "ID": "f" * 12,
        "IPv4": "false", "IPv6": "true", "Internal": "false", "Labels": "", "Name": "n", "Scope": "local"}
    assert NetworkRow(network, False).ID == "f" * 64


def test_table_header():
    """A field without a title prints <no value>, as docker 20.10 and 28 print it for
    ``volume ls --format 'table {{.Foo}}'`` when no volume is listed."""
    header = output.HeaderContext({"Name": "VOLUME NAME"})
    assert (header.Name, header.Other, header.Label("com.docker.my-label_x")) == ("VOLUME NAME", "<no value>",
                                                                                   "my label x")
    assert output.render("table {{.Foo}}\\t{{.Name}}", [], "", {"Name": "VOLUME NAME"}) == "<no value>   VOLUME NAME\n"


def test_go_json_indent_escapes_like_go():
    assert go_json_indent({"a": "<é&>"}) == '{\n    "a": "\\u003cé\\u0026\\u003e"\n}'


SAMPLE = {
    "id": "7d062ea676f32d3ef26c1a8fc8bc8f03ed48763d222e3a61b5cfca8130439daa", "name": "/web",
    "cpu_stats": {"cpu_usage": {"total_usage": 400_000_000, "percpu_usage": [1, 2]},
                  "system_cpu_usage": 3_000_000_000, "online_cpus": 2},
    "precpu_stats": {"cpu_usage": {"total_usage": 200_000_000}, "system_cpu_usage": 1_000_000_000},
    "memory_stats": {"usage": 10 * 1024 * 1024, "limit": 100 * 1024 * 1024,
                     "stats": {"total_inactive_file": 2 * 1024 * 1024}},
    "networks": {"eth0": {"rx_bytes": 1090, "tx_bytes": 0}, "eth1": {"rx_bytes": 10, "tx_bytes": 2500}},
    "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 8192},
                                                   {"op": "Total", "value": 12288}]},
    "pids_stats": {"current": 3},
}


def test_stats_arithmetic():
    # 0.2 s of CPU out of 2 s of host time on 2 CPUs
    assert cpu_percent(SAMPLE) == pytest.approx(20.0)
    assert memory_usage(SAMPLE) == 8 * 1024 * 1024
    assert memory_usage({"memory_stats": {"usage": 100, "stats": {"inactive_file": 40}}}) == 60
    assert cpu_percent({"cpu_stats": {}, "precpu_stats": {}}) == 0.0


def test_stats_row():
    row = StatsRow("web", SAMPLE)
    assert row.to_json() == {"BlockIO": "4.1kB / 8.19kB", "CPUPerc": "20.00%", "Container": "web",
                             "ID": "7d062ea676f3", "MemPerc": "8.00%", "MemUsage": "8MiB / 100MiB", "Name": "web",
                             "NetIO": "1.1kB / 2.5kB", "PIDs": "3"}
    assert StatsRow("web", SAMPLE, trunc=False).ID == SAMPLE["id"]


def test_stats_row_of_a_stopped_container():
    stopped = {"id": "abc", "name": "/s", "read": "0001-01-01T00:00:00Z", "pids_stats": {},
               "blkio_stats": {"io_service_bytes_recursive": None}, "cpu_stats": {"cpu_usage": {"total_usage": 0}},
               "precpu_stats": {"cpu_usage": {"total_usage": 0}}, "memory_stats": {}}
    row = StatsRow("s", stopped)
    assert (row.CPUPerc, row.MemUsage, row.MemPerc, row.NetIO, row.BlockIO, row.PIDs) == (
        "0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B", "0")
    missing = StatsRow("gone", None)
    assert (missing.CPUPerc, missing.MemUsage, missing.NetIO, missing.PIDs) == ("--", "-- / --", "--", "--")
