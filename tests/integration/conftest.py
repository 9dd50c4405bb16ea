"""Session-end check: after the whole run no berthd started by these tests left a bridge, veth,
iptables chain, process (daemon, shim, proxy) or mount on the machine (issue #5, acceptance 7).

Each ``Daemon.cleanup`` already fails its test when it leaves something; this hook looks again
once every fixture is gone (the session-scoped daemon included) and makes the run fail with the
list, since a late leftover (a veth the kernel drops slowly, a proxy still bound) would otherwise
go unnoticed.
"""

from __future__ import annotations

import pytest

from tests.daemon_fixture import CLEANED, session_leftovers


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    left = session_leftovers()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if left:
        if reporter is not None:
            reporter.write_sep("=", "berth leftovers after the session", red=True)
            for item in left:
                reporter.write_line(item)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None and CLEANED:
        reporter.write_line(f"berth leftovers check: {len(CLEANED)} daemons, nothing left on the machine")
