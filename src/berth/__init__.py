"""berth: Docker's engine, CLI and runtime, rebuilt in Python."""

__version__ = "0.1.0"

#: Engine API version this implementation is modelled on (Docker 20.10).
API_VERSION = "1.41"
#: Oldest API version accepted in a ``/vX.Y/`` path prefix.
MIN_API_VERSION = "1.24"
