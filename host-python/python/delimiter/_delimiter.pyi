"""Type stubs of the extension module ``delimiter._delimiter`` (Rust, pyo3).

Every class is immutable (frozen), compares by value and, unless it holds
an exception object (``InvalidFinding``), is hashable. List-valued
attributes return a fresh list on every access. Every function takes the
keyword-only ``fuel`` (default ``DEFAULT_FUEL``) and ``memory_limit``
(bytes, default ``DEFAULT_MEMORY_LIMIT``) that bound the component for that
call; exceeding either raises ``GuestFault``.
"""

from typing import Mapping, Protocol, Sequence, Union, final

from delimiter._errors import InvalidInput, QuotaError

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
    """How hard ``consume`` (and ``consume_batch``) tries: until
    ``deadline_us`` microseconds have passed on the store's clock
    (``now_us``), with ``max_attempts`` attempts as a guard. After a plain
    conflict the driver backs off (jittered, under a cap that starts at
    ``base_delay_us`` and doubles up to ``max_delay_us``); after a
    conflict-after-wait it reads again at once. No attempt starts once the
    next backoff would end past the deadline. The jitter is drawn afresh per
    call from the store's ``entropy`` unless ``seed`` is set (reproducible
    tests only: callers sharing a seed back off in lockstep).

    ``lock_after_conflict`` (opt-in, default False): every attempt after
    the first conflict is a locked one. The store's ``read_locked`` locks
    the generation rows of the project's path (root first) and reads inside
    that transaction; the attempt decides and commits in it, so it cannot
    conflict, and no backoff precedes it. A store without ``read_locked``
    runs those attempts optimistically. Lone consumes only: a combined
    batch's conflict re-runs the batch optimistically.

    Checked when a consume starts, in field order: ``max_attempts >= 1``,
    ``deadline_us >= 1``, ``base_delay_us <= max_delay_us``,
    ``max_delay_us <= deadline_us``; otherwise
    ``InvalidInput(kind="invalid-config")`` naming the field."""

    def __init__(
        self,
        max_attempts: int = 100,
        deadline_us: int = 2000000,
        base_delay_us: int = 1000,
        max_delay_us: int = 50000,
        seed: int | None = None,
        lock_after_conflict: bool = False,
    ) -> None: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def deadline_us(self) -> int: ...
    @property
    def base_delay_us(self) -> int: ...
    @property
    def max_delay_us(self) -> int: ...
    @property
    def seed(self) -> int | None: ...
    @property
    def lock_after_conflict(self) -> bool: ...

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
class PreparedMember:
    """One member of ``Prepared.evaluate_batch``: a request and the numbers
    ``Prepared.evaluate`` takes for it, in the same shapes, with n =
    ``len(request.deltas)`` and path = ``Prepared.path(request.project)``
    (the project, then each ancestor up to the root):

    - ``local[r]``: the project's own usage of ``request.deltas[r]``'s
      resource (n integers, in the resource's units);
    - ``subtree[k * n + r]``: the subtree usage of ``path[k]`` for it
      (``len(path) * n`` integers);
    - ``generations[k]``: the generation read for ``path[k]``
      (``len(path)`` integers >= 0).

    Every member's numbers come from the batch's one read. A non-integer
    raises ``TypeError``; an integer out of range (64 bits; unsigned for
    generations) ``OverflowError``. Lengths are checked when the batch is
    decided (``InvalidInput(kind="shape-mismatch")`` for that member)."""

    def __init__(
        self,
        request: Request,
        local: Sequence[int],
        subtree: Sequence[int],
        generations: Sequence[int],
    ) -> None: ...
    @property
    def request(self) -> Request: ...
    @property
    def local(self) -> list[int]: ...
    @property
    def subtree(self) -> list[int]: ...
    @property
    def generations(self) -> list[int]: ...

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
    def evaluate_batch(self, members: Sequence[PreparedMember]) -> list[Union[Decision, InvalidInput]]:
        """Decides ``members`` in arrival order, each against its own
        numbers (``PreparedMember``: ``evaluate``'s ``local``, ``subtree``
        and ``generations``, all from one read view) plus the deltas of the
        members admitted before it: an earlier admission of the same
        project adds to its ``local``, one in the subtree of ``path[k]``
        adds to that node's ``subtree`` (under flat, only the project's own
        usage counts); a refused member adds nothing. The rule is the
        semantics' "Combining concurrent consumes" (docs/semantics.md): on
        numbers counted from one snapshot, the results are
        ``delimiter.evaluate_batch``'s on that snapshot.

        One element per member, in order: its ``Decision`` (the claim named,
        from the project up, with the generations that member passed), or
        the ``InvalidInput`` it gets, returned rather than raised; a
        member's error leaves the others' decisions as they were. A
        member's errors are ``evaluate``'s for its request and numbers
        (its request's, ``unknown-project``, ``shape-mismatch``, the usage
        errors of its numbers), then ``overflow`` when an earlier admission
        overflows its usage. Raises ``TypeError`` when ``members`` is not a
        sequence of ``PreparedMember``, and ``GuestFault`` (the component
        failed; the next call prepares again). Runs without the GIL."""

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
    """What a store's ``commit`` or ``commit_batch`` did. A store may also
    return the value's name: ``"committed"``, ``"conflict"`` or
    ``"conflict-after-wait"``.

    ``CONFLICT``: a claimed generation had moved on (or the database
    aborted the transaction as a deadlock or serialization failure);
    everything was rolled back, and the driver backs off before it reads
    again. ``CONFLICT_AFTER_WAIT``: the same, but the losing statement had
    waited for the winning writer, which has committed: the driver reads
    again at once."""

    COMMITTED: CommitOutcome
    CONFLICT: CommitOutcome
    CONFLICT_AFTER_WAIT: CommitOutcome
    @property
    def value(self) -> str: ...

@final
class MemberFailure:
    """What ``commit_batch`` returns when the rows of one member failed to
    write, after rolling the whole transaction back: ``index`` is the
    member's place in the ``members`` passed (from 0). ``message`` may be
    the failure's text or the exception itself (then kept as ``original``,
    its ``str()`` being the message): that member's ``StorageError``
    carries it as ``original``, as ``consume``'s would."""

    def __init__(self, index: int, message: str | BaseException) -> None: ...
    @property
    def index(self) -> int: ...
    @property
    def message(self) -> str: ...
    @property
    def original(self) -> BaseException | None: ...

@final
class Consumed:
    def __init__(self, claim: Sequence[ClaimEntry], attempts: int) -> None: ...
    @property
    def claim(self) -> list[ClaimEntry]: ...
    @property
    def attempts(self) -> int: ...

# ---- functions -----------------------------------------------------------------

class _Store(Protocol):
    """What ``consume`` drives. Optional, looked up when a consume starts:
    ``backoff(attempt, delay_us)`` (without it the driver sleeps, without
    the GIL), ``now_us() -> int`` (a monotonic clock in microseconds, any
    origin, the deadline is measured on; without it, the process's
    monotonic clock) and ``entropy() -> int`` (64 random bits, asked once
    per call whose policy has no seed; without it, fresh random bits).

    For ``RetryPolicy(lock_after_conflict=True)``: ``read_locked(project,
    resources) -> Snapshot | None`` begins a transaction, locks the
    generation rows of the project's path root first (``SELECT ... FOR
    UPDATE``, one statement per row) and reads inside it, leaving it open:
    the next ``commit`` writes and commits in it; ``unlock()`` rolls it
    back (the attempt was refused). None: the store takes no locks."""

    def read(self, project: str, resources: list[str]) -> Snapshot: ...
    def commit(self, claim: list[ClaimEntry], request: Request) -> Union[CommitOutcome, str]: ...

class _BatchStore(_Store, Protocol):
    """What ``consume_batch`` drives: a ``_Store`` with the batch calls.

    ``read_batch(projects, resources)``: in ONE read view, the limits on
    ``resources``, the generations and the local usage (a list of
    ``UsageEntry``) of every project of the trees the members' projects are
    in (a subtree sum needs every descendant).

    ``commit_batch(claim, members)``: in ONE transaction, compare and bump
    each entry of ``claim`` once, in the order given (root first, then by
    depth, then project id), then write each member's rows in order.
    Returns ``CommitOutcome.COMMITTED``; ``CONFLICT`` or
    ``CONFLICT_AFTER_WAIT`` on a generation miss (everything rolled back);
    or ``MemberFailure(i, error)`` when member ``i``'s rows failed
    (everything rolled back). Raising ``StorageError`` fails every member."""

    def read_batch(self, projects: list[str], resources: list[str]) -> Snapshot: ...
    def commit_batch(
        self, claim: list[ClaimEntry], members: list[Request]
    ) -> Union[CommitOutcome, str, MemberFailure]: ...


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
    """Read, decide, commit through ``store``, retrying conflicts: at once
    after ``CONFLICT_AFTER_WAIT``, after a jittered backoff after
    ``CONFLICT``, until ``policy``'s deadline (default 2 s, on the store's
    ``now_us`` clock) or attempt cap (default 100). A refusal is final.
    Raises ``OverLimit``, ``RetriesExhausted``, ``InvalidInput`` (also
    ``invalid-config`` for a bad policy, before any store call), ``GuestFault``,
    or ``StorageError`` when a store method raised one: its ``attempts`` is
    the attempt that failed and its ``original`` (also its ``__cause__``)
    the storage's own exception (the ``original`` the store's
    ``StorageError`` carried, e.g. SQLAlchemy's ``IntegrityError``, else
    that ``StorageError``). Any other exception a store method raises
    propagates as itself. Nothing is committed in any of these cases."""
def evaluate_batch(
    snapshot: Snapshot,
    requests: Sequence[Request],
    config: Config | None = None,
    *,
    fuel: int | None = None,
    memory_limit: int | None = None,
) -> list[Union[Decision, InvalidInput]]:
    """Decides ``requests`` in order against one snapshot, each against the
    snapshot plus the deltas of the requests admitted before it (what they
    would get one by one, each committed before the next is read). One
    element per request: its ``Decision``, or the ``InvalidInput`` it would
    raise, returned rather than raised (a snapshot problem is every
    request's). Raises only ``GuestFault``."""
def consume_batch(
    store: _BatchStore,
    requests: Sequence[Request],
    config: Config | None = None,
    policy: RetryPolicy | None = None,
    *,
    fuel: int | None = None,
    memory_limit: int | None = None,
) -> list[Union[Consumed, QuotaError]]:
    """Consumes ``requests`` as one batch through ``store``: one
    ``read_batch``, decisions in arrival order (``evaluate_batch``), one
    ``commit_batch`` of the admitted members with their claims' union; a
    conflict re-runs the whole batch within ``policy``'s budget (deadline
    and attempts counted for the batch); a member whose rows failed gets
    its ``StorageError`` and the others are decided again without it. No
    result before the commit that made it (or the read, if none was
    admitted).

    One element per request, in order: its ``Consumed``, or the exception
    ``consume`` would raise for it, returned rather than raised
    (``OverLimit``, ``RetriesExhausted``, ``InvalidInput``, ``StorageError``
    with ``attempts`` and ``original`` as ``consume``'s; a storage failure
    of the read or the commit is every pending member's). Raises
    ``GuestFault``, or an exception other than ``StorageError`` that a
    store method raised, as itself; nothing is committed then. Most callers
    want ``delimiter.Combiner``, which makes the batches of concurrent
    consumes."""
def parse_model(
    name: str, *, fuel: int | None = None, memory_limit: int | None = None
) -> Model: ...
def load_info() -> dict[str, object]:
    """Where the component was loaded from: ``source`` (``cache``,
    ``compiled`` or ``compiled-uncached``), ``path``, ``note``, ``seconds``,
    ``component_size``."""
