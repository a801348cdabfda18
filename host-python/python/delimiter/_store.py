"""A store for ``consume`` made of callables."""

__all__ = ["CallbackStore"]

_OPTIONAL = ("backoff", "now_us", "entropy", "read_locked", "unlock", "read_batch", "commit_batch")


class CallbackStore:
    """Adapts callables to the store ``consume`` (and ``consume_batch``)
    expects.

    ``read(project, resources) -> Snapshot``; ``commit(claim, request) ->
    CommitOutcome`` (or ``"committed"`` / ``"conflict"`` /
    ``"conflict-after-wait"``). Optional, each becoming a method only when
    given: ``backoff(attempt, delay_us)`` (without it the driver sleeps
    ``delay_us`` microseconds itself, without the GIL), ``now_us()`` and
    ``entropy()`` (without them, the process's monotonic clock and fresh
    random bits), ``read_locked(project, resources) -> Snapshot | None`` and
    ``unlock()`` (both or neither: the locked attempts of
    ``RetryPolicy(lock_after_conflict=True)``), ``read_batch(projects,
    resources) -> Snapshot`` and ``commit_batch(claim, members) ->
    CommitOutcome | MemberFailure`` (both or neither: what
    ``consume_batch`` and ``Combiner`` need).
    """

    __slots__ = ("read", "commit") + _OPTIONAL

    def __init__(
        self,
        read,
        commit,
        backoff=None,
        *,
        now_us=None,
        entropy=None,
        read_locked=None,
        unlock=None,
        read_batch=None,
        commit_batch=None,
    ):
        if (read_batch is None) != (commit_batch is None):
            raise TypeError("CallbackStore takes read_batch and commit_batch together")
        if (read_locked is None) != (unlock is None):
            raise TypeError("CallbackStore takes read_locked and unlock together")
        self.read = read
        self.commit = commit
        given = dict(
            backoff=backoff,
            now_us=now_us,
            entropy=entropy,
            read_locked=read_locked,
            unlock=unlock,
            read_batch=read_batch,
            commit_batch=commit_batch,
        )
        for name, value in given.items():
            if value is not None:
                setattr(self, name, value)
