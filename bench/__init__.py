"""berth's benchmarks beside docker and podman: ``python -m bench`` (see ``bench/__main__.py``).

A topic is a module ``bench/<topic>.py`` runnable as ``python -m bench.<topic>``; it measures its
cases on each available engine and calls ``bench.common.emit(rows)`` with ``bench.common.Row``
values, which prints them and hands them to the runner (``BENCH_JSON``). It uses the berthd that
``BERTH_HOST`` names (the runner starts a private one with busybox imported) and
``bench.common.docker_host()`` / ``podman_available()`` for the peers.
"""
