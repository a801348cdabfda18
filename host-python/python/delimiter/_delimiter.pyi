"""Type stubs of the extension module ``delimiter._delimiter`` (Rust, pyo3).

Every class is immutable (frozen), compares by value and, unless it holds
an exception object (``InvalidFinding``), is hashable. List-valued
attributes return a fresh list on every access. Every function takes the
keyword-only ``fuel`` (default ``DEFAULT_FUEL``) and ``memory_limit``
(bytes, default ``DEFAULT_MEMORY_LIMIT``) that bound the component for that
call; exceeding either raises ``GuestFault``.
"""

from typing import Mapping, Protocol, Sequence, Union, final

from delimiter._errors import InvalidInput

DEFAULT_FUEL: int
DEFAULT_MEMORY_LIMIT: int
DEFAULT_MAX_DEPTH: int

# ---- settings ----------------------------------------------------------------

@final
class Model:
    """How usage in a project tree counts against limits."""

    FLAT: Model
    STRICT_TWO_LEVEL: Model
    NESTED: Model
    @property
    def value(self) -> str:
        """``flat``, ``strict-two-level`` or ``nested``."""

@final
class MissingLimit:
    """What a resource with neither a project nor a registered limit is worth."""

    ZERO: MissingLimit
    UNLIMITED: MissingLimit
    @property
    def value(self) -> str:
        """``zero`` or ``unlimited``."""

@final
class Config:
    """Settings for every call. A model may be given by name (``flat``,
    ``strict-two-level``, Keystone's ``strict_two_level``, ``nested``), the
    missing-limit rule too (``zero``, ``unlimited``). The component checks
    them (``parse-config``): an unknown model raises
    ``InvalidInput(kind="unknown-model")``, an unknown missing-limit rule or
    a ``max_depth`` of 0 ``InvalidInput(kind="invalid-config")`` naming the
    field (``missing-limit``, ``max-depth``)."""

    def __init__(
        self,
        model: Union[Model, str, None] = None,
        max_depth: int = 64,
        missing_limit: Union[MissingLimit, str, None] = None,
    ) -> None: ...
    @property
    def model(self) -> Model: ...
    @property
    def max_depth(self) -> int: ...
    @property
    def missing_limit(self) -> MissingLimit: ...

@final
class RetryPolicy:
    """How hard ``consume`` tries."""

    def __init__(
        self,
        max_attempts: int = 5,
        base_delay_us: int = 1000,
        max_delay_us: int = 100000,
        seed: int = 0,
    ) -> None: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def base_delay_us(self) -> int: ...
    @property
    def max_delay_us(self) -> int: ...
    @property
    def seed(self) -> int: ...

# ---- inputs ------------------------------------------------------------------

@final
class Project:
    def __init__(self, id: str, parent: str | None = None) -> None: ...
    @property
    def id(self) -> str: ...
    @property
    def parent(self) -> str | None: ...

@final
class RegisteredLimit:
    def __init__(self, resource: str, limit: int) -> None: ...
    @property
    def resource(self) -> str: ...
    @property
    def limit(self) -> int: ...

@final
class ProjectLimit:
    def __init__(self, project: str, resource: str, limit: int) -> None: ...
    @property
    def project(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def limit(self) -> int: ...

@final
class Limits:
    def __init__(
        self,
        registered: Sequence[RegisteredLimit] = ...,
        project: Sequence[ProjectLimit] = ...,
    ) -> None: ...
    @property
    def registered(self) -> list[RegisteredLimit]: ...
    @property
    def project(self) -> list[ProjectLimit]: ...
    def limit_of(self, project: str, resource: str) -> int | None:
        """The limit of `project`'s own usage of `resource`: its project
        limit, else the registered limit, else None. -1 is unlimited."""

@final
class UsageEntry:
    def __init__(self, project: str, resource: str, usage: int) -> None: ...
    @property
    def project(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def usage(self) -> int: ...

@final
class ResourceUsage:
    def __init__(self, resource: str, usage: int) -> None: ...
    @property
    def resource(self) -> str: ...
    @property
    def usage(self) -> int: ...

@final
class PathUsage:
    def __init__(
        self,
        local: Sequence[ResourceUsage] = ...,
        subtree: Sequence[UsageEntry] = ...,
    ) -> None: ...
    @property
    def local(self) -> list[ResourceUsage]: ...
    @property
    def subtree(self) -> list[UsageEntry]: ...

@final
class Generation:
    def __init__(self, project: str, generation: int) -> None: ...
    @property
    def project(self) -> str: ...
    @property
    def generation(self) -> int: ...

@final
class Snapshot:
    def __init__(
        self,
        projects: Sequence[Project] = ...,
        limits: Limits | None = None,
        usage: Union[Sequence[UsageEntry], PathUsage, None] = None,
        generations: Sequence[Generation] = ...,
    ) -> None: ...
    @property
    def projects(self) -> list[Project]: ...
    @property
    def limits(self) -> Limits: ...
    @property
    def usage(self) -> Union[list[UsageEntry], PathUsage]: ...
    @property
    def generations(self) -> list[Generation]: ...

@final
class Delta:
    def __init__(self, resource: str, delta: int) -> None: ...
    @property
    def resource(self) -> str: ...
    @property
    def delta(self) -> int: ...

@final
class Request:
    def __init__(self, project: str, deltas: Union[Sequence[Delta], Mapping[str, int]]) -> None: ...
    @property
    def project(self) -> str: ...
    @property
    def deltas(self) -> list[Delta]: ...

@final
class ResourceLimit:
    def __init__(self, resource: str, limit: int) -> None: ...
    @property
    def resource(self) -> str: ...
    @property
    def limit(self) -> int: ...

@final
class OsloCheck:
    def __init__(
        self,
        project_id: str | None,
        deltas: Union[Sequence[Delta], Mapping[str, int]],
        registered: Sequence[ResourceLimit] = ...,
        project: Sequence[ResourceLimit] = ...,
        usage: Sequence[ResourceUsage] = ...,
    ) -> None: ...
    @property
    def project_id(self) -> str | None: ...
    @property
    def deltas(self) -> list[Delta]: ...
    @property
    def registered(self) -> list[ResourceLimit]: ...
    @property
    def project(self) -> list[ResourceLimit]: ...
    @property
    def usage(self) -> list[ResourceUsage]: ...

# ---- results -------------------------------------------------------------------

@final
class ClaimEntry:
    def __init__(self, project: str, generation: int) -> None: ...
    @property
    def project(self) -> str: ...
    @property
    def generation(self) -> int: ...

@final
class Violation:
    def __init__(self, project: str, resource: str, limit: int, usage: int, delta: int) -> None: ...
    @property
    def project(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def limit(self) -> int: ...
    @property
    def usage(self) -> int: ...
    @property
    def delta(self) -> int: ...

@final
class Decision:
    """An admitted decision has no violations, a refused one no claim
    (``ValueError`` otherwise)."""

    def __init__(
        self,
        admitted: bool,
        claim: Sequence[ClaimEntry] = ...,
        violations: Sequence[Violation] = ...,
    ) -> None: ...
    @property
    def admitted(self) -> bool: ...
    @property
    def claim(self) -> list[ClaimEntry]: ...
    @property
    def violations(self) -> list[Violation]: ...

@final
class Prepared:
    """The config, project tree and limits, checked and indexed once inside
    the component, for many decisions that pass only the request and the
    numbers of the project's path (``path``). Safe to share between
    threads; calls on one object run one at a time. A decision (a few
    microseconds) holds the GIL; preparing, and a call that waits for
    another thread's, release it."""

    def __init__(
        self,
        projects: Sequence[Project],
        limits: Limits | None = None,
        config: Config | None = None,
        *,
        fuel: int | None = None,
        memory_limit: int | None = None,
    ) -> None: ...
    def path(self, project: str) -> list[str]:
        """The nodes to read for ``project``: itself, then each ancestor."""
    def evaluate(
        self,
        project: str,
        deltas: Union[Mapping[str, int], Sequence[Delta]],
        local: Sequence[int],
        subtree: Sequence[int],
        generations: Sequence[int],
    ) -> Decision:
        """``local[r]``: the project's own usage of the r-th resource of
        ``deltas``; ``subtree[k * len(deltas) + r]``: the subtree usage of
        ``path(project)[k]``; ``generations[k]``: the generation read for
        it. A list of the wrong length raises
        ``InvalidInput(kind="shape-mismatch")``."""

@final
class ResourceHeadroom:
    def __init__(self, resource: str, room: int | None) -> None: ...
    @property
    def resource(self) -> str: ...
    @property
    def room(self) -> int | None:
        """None when unlimited."""
    @property
    def unlimited(self) -> bool: ...

@final
class Count:
    def __init__(self, units: int | None) -> None: ...
    @property
    def units(self) -> int | None:
        """None when unlimited."""
    @property
    def unlimited(self) -> bool: ...

@final
class InvalidFinding:
    @property
    def kind(self) -> str: ...
    @property
    def project(self) -> str | None: ...
    @property
    def resource(self) -> str | None: ...
    @property
    def error(self) -> InvalidInput: ...

@final
class ChildLimitExceedsParent:
    def __init__(
        self, parent: str, child: str, resource: str, parent_limit: int, child_limit: int
    ) -> None: ...
    @property
    def kind(self) -> str: ...
    @property
    def parent(self) -> str: ...
    @property
    def child(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def parent_limit(self) -> int: ...
    @property
    def child_limit(self) -> int: ...

@final
class OverLimitInfo:
    def __init__(self, resource_name: str, limit: int, current_usage: int, delta: int) -> None: ...
    @property
    def resource_name(self) -> str: ...
    @property
    def limit(self) -> int: ...
    @property
    def current_usage(self) -> int: ...
    @property
    def delta(self) -> int: ...

@final
class CommitOutcome:
    COMMITTED: CommitOutcome
    CONFLICT: CommitOutcome
    @property
    def value(self) -> str: ...

@final
class Consumed:
    def __init__(self, claim: Sequence[ClaimEntry], attempts: int) -> None: ...
    @property
    def claim(self) -> list[ClaimEntry]: ...
    @property
    def attempts(self) -> int: ...

# ---- functions -----------------------------------------------------------------

class _Store(Protocol):
    """What ``consume`` drives (``backoff`` is optional)."""

    def read(self, project: str, resources: list[str]) -> Snapshot: ...
    def commit(self, claim: list[ClaimEntry], request: Request) -> Union[CommitOutcome, str]: ...

def evaluate(
    snapshot: Snapshot,
    request: Request,
    config: Config | None = None,
    *,
    fuel: int | None = None,
    memory_limit: int | None = None,
) -> Decision: ...
def headroom(
    snapshot: Snapshot,
    project: str,
    resources: Sequence[str],
    config: Config | None = None,
    *,
    fuel: int | None = None,
    memory_limit: int | None = None,
) -> list[ResourceHeadroom]: ...
def max_count(
    snapshot: Snapshot,
    request: Request,
    config: Config | None = None,
    *,
    fuel: int | None = None,
    memory_limit: int | None = None,
) -> Count: ...
def validate(
    projects: Sequence[Project],
    limits: Limits | None = None,
    config: Config | None = None,
    *,
    fuel: int | None = None,
    memory_limit: int | None = None,
) -> list[Union[InvalidFinding, ChildLimitExceedsParent]]: ...
def oslo_check(
    check: OsloCheck, *, fuel: int | None = None, memory_limit: int | None = None
) -> list[OverLimitInfo]: ...
def consume(
    store: _Store,
    request: Request,
    config: Config | None = None,
    policy: RetryPolicy | None = None,
    *,
    fuel: int | None = None,
    memory_limit: int | None = None,
) -> Consumed:
    """Read, decide, commit through ``store``, retrying conflicts. Raises
    ``OverLimit``, ``RetriesExhausted``, ``InvalidInput``, ``GuestFault``,
    or ``StorageError`` when a store method raised one: its ``attempts`` is
    the attempt that failed and its ``original`` (also its ``__cause__``)
    the storage's own exception (the ``original`` the store's
    ``StorageError`` carried, e.g. SQLAlchemy's ``IntegrityError``, else
    that ``StorageError``). Any other exception a store method raises
    propagates as itself. Nothing is committed in any of these cases."""
def parse_model(
    name: str, *, fuel: int | None = None, memory_limit: int | None = None
) -> Model: ...
def load_info() -> dict[str, object]:
    """Where the component was loaded from: ``source`` (``cache``,
    ``compiled`` or ``compiled-uncached``), ``path``, ``note``, ``seconds``,
    ``component_size``."""
