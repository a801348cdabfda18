"""A store for ``consume`` made of callables."""

__all__ = ["CallbackStore"]


class CallbackStore:
    """Adapts three callables to the store ``consume`` expects.

    ``read(project, resources) -> Snapshot``; ``commit(claim, request) ->
    CommitOutcome`` (or ``"committed"`` / ``"conflict"``); ``backoff(attempt,
    delay_us)``, optional: without it the driver sleeps ``delay_us``
    microseconds itself, without the GIL.
    """

    __slots__ = ("read", "commit", "backoff")

    def __init__(self, read, commit, backoff=None):
        self.read = read
        self.commit = commit
        if backoff is not None:
            self.backoff = backoff
