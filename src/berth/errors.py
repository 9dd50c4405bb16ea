"""One exception hierarchy for the whole engine.

Services raise these; the API edge (``berth.api.server``) maps each class to the HTTP status
code docker uses (see the Engine API reference, "Errors") and to a ``{"message": ...}`` body.
The message is the text the docker CLI prints after ``Error response from daemon: ``.
"""

from __future__ import annotations


class BerthError(Exception):
    """Base class. ``status`` is the HTTP status the API answers with."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidParameter(BerthError):
    """Bad input from the client (HTTP 400)."""

    status = 400


class Unauthorized(BerthError):
    """Authentication needed or refused (HTTP 401)."""

    status = 401


class Forbidden(BerthError):
    """The operation is refused for this object (HTTP 403)."""

    status = 403


class NotFound(BerthError):
    """No such object: image, container, network, volume, exec (HTTP 404)."""

    status = 404


class Conflict(BerthError):
    """The object's state or a name in use prevents the operation (HTTP 409)."""

    status = 409


class NotModified(BerthError):
    """Nothing to do, e.g. starting a running container (HTTP 304)."""

    status = 304


class SystemError_(BerthError):
    """An unexpected failure inside the engine (HTTP 500)."""

    status = 500


class Unavailable(BerthError):
    """A needed service is unavailable (HTTP 503)."""

    status = 503
