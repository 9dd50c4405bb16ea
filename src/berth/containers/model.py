"""The container record: what berth persists for each container and how it shows in the API.

``config`` and ``host_config`` keep docker's own shapes (``container.Config`` and
``container.HostConfig`` from the Engine API "ContainerCreate" body): they are docker's model of a
container's settings, round-tripped to clients as given. Runtime state is the typed :class:`State`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"

STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")

HEALTH_STATUSES = ("starting", "healthy", "unhealthy")
"""Docker's ``Health.Status`` values; the ``health`` ps filter also accepts ``none`` (no healthcheck)."""


@dataclass(frozen=True)
class HealthcheckResult:
    """One probe (Engine API "HealthcheckResult"): RFC 3339 ``start``/``end``, ``exit_code`` 0
    healthy, 1 unhealthy, -1 when the probe could not run or timed out; ``output`` as kept by docker
    (at most 4096 bytes of stdout and stderr together, then ``...``)."""

    start: str
    end: str
    exit_code: int
    output: str

    def to_json(self) -> dict[str, Any]:
        return {"Start": self.start, "End": self.end, "ExitCode": self.exit_code, "Output": self.output}


@dataclass
class Health:
    """Docker's ``State.Health``: ``status`` one of :data:`HEALTH_STATUSES`, ``failing_streak``
    consecutive failed probes counted toward ``Retries``, ``log`` the last five results, oldest first."""

    status: str = "starting"
    failing_streak: int = 0
    log: list[HealthcheckResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"Status": self.status, "FailingStreak": self.failing_streak,
                "Log": [r.to_json() for r in self.log]}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Health:
        return cls(str(record.get("status") or "starting"), int(record.get("failing_streak") or 0),
                   [HealthcheckResult(**r) for r in record.get("log") or []])


@dataclass
class State:
    """Docker's ``ContainerState``; ``status`` is one of :data:`STATUSES`."""

    status: str = "created"
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    health: Health | None = None
    # True while the container is frozen by a commit rather than by ``docker pause``: a daemon
    # killed mid-commit never unpauses, so the next one thaws it at restore (not in the API).
    commit_paused: bool = False

    @property
    def running(self) -> bool:
        """Docker reports Running for paused and restarting containers too."""
        return self.status in ("running", "paused", "restarting")

    def to_json(self) -> dict[str, Any]:
        """``ContainerState``; ``Health`` only for a container with a healthcheck (Go's omitempty)."""
        out: dict[str, Any] = {
            "Status": self.status, "Running": self.running, "Paused": self.status == "paused",
            "Restarting": self.status == "restarting", "OOMKilled": self.oom_killed,
            "Dead": self.status == "dead", "Pid": self.pid, "ExitCode": self.exit_code, "Error": self.error,
            "StartedAt": self.started_at, "FinishedAt": self.finished_at,
        }
        if self.health is not None:
            out["Health"] = self.health.to_json()
        return out


@dataclass
class Container:
    """One container. ``name`` has no leading slash; ``image`` is the reference the user gave."""

    id: str
    name: str
    created: str
    image: str
    image_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    networking_config: dict[str, Any] = field(default_factory=dict)
    state: State = field(default_factory=State)
    path: str = ""
    args: list[str] = field(default_factory=list)
    restart_count: int = 0
    manually_stopped: bool = False
    started_before: bool = False
    mounts: list[dict[str, Any]] = field(default_factory=list)
    network_settings: dict[str, Any] = field(default_factory=dict)
    runtime: str = "berth"
    size_root_fs: int = 0

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    @property
    def cgroup_path(self) -> str:
        """The container's cgroup, relative to each hierarchy's root: ``/berth/<id>``, or under
        ``--cgroup-parent`` (``/<parent>/<id>``, dockerd's cgroupfs driver)."""
        parent = (self.host_config.get("CgroupParent") or "/berth").strip("/")
        return f"/{parent}/{self.id}"

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Container:
        record = dict(record)
        state = dict(record.get("state", {}))
        if state.get("health") is not None:
            state["health"] = Health.from_record(state["health"])
        record["state"] = State(**state)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in record.items() if k in known})


def new_container_id() -> str:
    """64 hex characters whose 12-character prefix is not all digits (docker's stringid rule)."""
    while True:
        cid = secrets.token_hex(32)
        if not cid[:12].isdigit():
            return cid


# Names for containers created without --name: "<adjective>_<scientist>" like docker's generator.
_LEFT = ("admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome", "beautiful",
         "blissful", "bold", "boring", "brave", "busy", "charming", "clever", "cool", "compassionate",
         "competent", "confident", "crazy", "dazzling", "determined", "distracted", "dreamy", "eager",
         "ecstatic", "elastic", "elated", "elegant", "eloquent", "epic", "fervent", "festive", "flamboyant",
         "focused", "friendly", "frosty", "funny", "gallant", "gifted", "goofy", "gracious", "happy",
         "hardcore", "heuristic", "hopeful", "hungry", "infallible", "inspiring", "intelligent", "jolly",
         "jovial", "keen", "kind", "laughing", "loving", "lucid", "magical", "modest", "musing", "mystifying",
         "naughty", "nervous", "nice", "nifty", "nostalgic", "objective", "optimistic", "peaceful",
         "pedantic", "pensive", "practical", "priceless", "quirky", "quizzical", "recursing", "relaxed",
         "reverent", "romantic", "sad", "serene", "sharp", "silly", "sleepy", "stoic", "strange", "stupefied",
         "suspicious", "sweet", "tender", "thirsty", "trusting", "unruffled", "upbeat", "vibrant",
         "vigilant", "vigorous", "wizardly", "wonderful", "xenodochial", "youthful", "zealous", "zen")
_RIGHT = ("agnesi", "albattani", "allen", "archimedes", "ardinghelli", "babbage", "banach", "bardeen",
          "bartik", "bell", "benz", "bhabha", "black", "blackwell", "bohr", "booth", "borg", "bose",
          "brahmagupta", "brattain", "brown", "burnell", "cannon", "carson", "cartwright", "cerf",
          "chandrasekhar", "chaplygin", "chatelet", "chebyshev", "clarke", "cohen", "colden", "cori",
          "curie", "darwin", "davinci", "dijkstra", "dirac", "easley", "einstein", "elion", "euclid", "euler",
          "faraday", "fermat", "fermi", "feynman", "franklin", "galileo", "gauss", "germain", "goldberg",
          "goodall", "hamilton", "hawking", "heisenberg", "hermann", "hertz", "hodgkin", "hopper", "hypatia",
          "jennings", "johnson", "kalam", "kepler", "khayyam", "knuth", "kowalevski", "lalande", "lamarr",
          "leakey", "leavitt", "lovelace", "lumiere", "mayer", "mccarthy", "meitner", "mendel", "mirzakhani",
          "montalcini", "moore", "morse", "napier", "nash", "newton", "nobel", "noether", "noyce", "pasteur",
          "payne", "perlman", "pike", "poincare", "ptolemy", "raman", "ramanujan", "ride", "ritchie",
          "rosalind", "sammet", "shannon", "shirley", "sinoussi", "stonebraker", "swanson", "tesla",
          "thompson", "torvalds", "turing", "villani", "wescoff", "wiles", "williams", "wozniak", "wright",
          "yalow", "yonath")


def random_name(retry: int = 0) -> str:
    """``adjective_scientist``; with ``retry`` > 0 a digit is appended, as docker does on collisions."""
    name = f"{secrets.choice(_LEFT)}_{secrets.choice(_RIGHT)}"
    if name == "boring_wozniak":  # docker's one excluded pair
        return random_name(retry)
    return f"{name}{secrets.randbelow(10)}" if retry else name


def container_dir(data_root: os.PathLike[str] | str, cid: str) -> str:
    return os.path.join(os.fspath(data_root), "containers", cid)
