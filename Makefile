# berth: the two commands a fresh machine needs (see README.md).
#   make demo   - set up, start berthd, build the base images, walk the Docker course
#   make test   - set up, run the test suite
#   make clean-demo - remove what the demo made and stop its berthd (base images stay)
#   make bench  - benchmarks beside docker and podman (BENCHMARKS.md)
.PHONY: setup demo test lint bench clean-demo

setup:
	@scripts/setup.sh

demo: setup
	@.venv/bin/python -m contrib.demo

clean-demo:
	@.venv/bin/python -m contrib.demo --clean

test: setup
	@.venv/bin/python -m pytest -q -n 3 --dist loadfile

lint:
	@.venv/bin/ruff check src tests
	@.venv/bin/mypy src

bench: setup
	@.venv/bin/python -m bench
