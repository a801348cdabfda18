"""Delimiter's exceptions: one family rooted at :class:`QuotaError`.

Each carries its details as attributes, never only in its message:

- :class:`InvalidInput` (also a :class:`ValueError`): nothing was decided.
  ``kind`` is the kebab-case error kind (the conformance vectors'
  ``want_error``), and the error's fields are attributes (``project``,
  ``resource``, ...; the ones a kind does not have are None).
- :class:`OverLimit`: ``consume`` was refused (``violations``, ``attempts``).
- :class:`RetriesExhausted`: every attempt of ``consume`` met a conflict.
- :class:`StorageError`: the store failed (and must have rolled back). A
  store raises it itself to report a storage failure to ``consume``;
  ``original`` is the storage's own exception.
- :class:`GuestFault`: the component itself failed (``kind``: ``trap``,
  ``out-of-fuel``, ``memory-limit`` or ``load``). Never an over-limit or an
  invalid input.

This module imports nothing, so that ``import delimiter`` stays cheap.
"""

__all__ = [
    "QuotaError",
    "InvalidInput",
    "OverLimit",
    "RetriesExhausted",
    "StorageError",
    "GuestFault",
]


class QuotaError(Exception):
    """The base of every error Delimiter raises."""


class InvalidInput(QuotaError, ValueError):
    """The input was rejected; nothing was decided.

    ``kind`` is one of the WIT ``invalid-input`` cases (``empty-id``,
    ``unknown-project``, ``release-below-zero``, ...). ``fields`` holds the
    fields of the case's payload record (WIT names in snake_case); each is
    also an attribute. The message is the component's own description, the
    same on every host.
    """

    #: Every field any kind can have (the union of the WIT ``invalid-input``
    #: payload fields, checked by host-python/tools/check_stubs.py); a kind
    #: sets the ones it has.
    FIELDS = (
        "what", "project", "parent", "resource", "depth", "max_depth",
        "limit", "usage", "delta", "model", "field", "expected", "actual",
    )

    what = None
    project = None
    parent = None
    resource = None
    depth = None
    max_depth = None
    limit = None
    usage = None
    delta = None
    model = None
    field = None
    #: ``shape-mismatch``: the length a list needed and the one it had
    #: (``field`` names the list).
    expected = None
    actual = None

    def __init__(self, kind, message, **fields):
        unknown = set(fields) - set(self.FIELDS)
        if unknown:
            raise TypeError(f"unknown InvalidInput fields: {sorted(unknown)}")
        super().__init__(message)
        self.kind = kind
        self.fields = dict(fields)
        for key, value in fields.items():
            setattr(self, key, value)

    def __reduce__(self):
        return (_rebuild_invalid, (type(self), self.kind, str(self), self.fields))

    def __repr__(self):
        fields = "".join(f", {k}={v!r}" for k, v in self.fields.items())
        return f"InvalidInput({self.kind!r}, {str(self)!r}{fields})"


def _rebuild_invalid(cls, kind, message, fields):
    return cls(kind, message, **fields)


class OverLimit(QuotaError):
    """``consume`` was refused on the snapshot of attempt ``attempts``.

    Final, never retried. ``violations`` lists every violated constraint
    (``delimiter.Violation``), by resource, then from the project up.
    """

    def __init__(self, violations, attempts=1):
        self.violations = list(violations)
        self.attempts = attempts
        parts = "; ".join(
            f"{v.resource} of project {v.project!r} (limit {v.limit}, "
            f"usage {v.usage}, delta {v.delta})"
            for v in self.violations
        )
        super().__init__(f"over limit: {parts}")

    def __reduce__(self):
        rows = [(v.project, v.resource, v.limit, v.usage, v.delta) for v in self.violations]
        return (_rebuild_over_limit, (type(self), rows, self.attempts))


def _rebuild_over_limit(cls, rows, attempts):
    from delimiter._delimiter import Violation

    return cls([Violation(*row) for row in rows], attempts)


class RetriesExhausted(QuotaError):
    """Every one of ``attempts`` attempts of ``consume`` met a conflict."""

    def __init__(self, attempts):
        self.attempts = attempts
        super().__init__(
            f"gave up after {attempts} attempts, each lost to a concurrent writer"
        )

    def __reduce__(self):
        return (type(self), (self.attempts,))


class StorageError(QuotaError):
    """The store failed (and must have rolled back: nothing is charged).

    A store's ``read`` or ``commit`` raises ``StorageError(message)`` to
    report a failure, with the database's own exception as ``original`` if
    it wraps one. ``consume`` then raises a new one with ``attempts`` set
    (the attempt it failed on) and ``original`` the storage's own
    exception, also its ``__cause__``: the ``original`` of the store's
    ``StorageError`` if it had one (say, the ``sqlalchemy.exc.IntegrityError``
    of a duplicate key), else the store's ``StorageError`` itself. So a
    service can branch on it without parsing text::

        except StorageError as e:
            if isinstance(e.original, IntegrityError):
                ...
    """

    def __init__(self, message, attempts=None, original=None):
        self.message = message
        self.attempts = attempts
        self.original = original
        if attempts is None:
            super().__init__(message)
        else:
            super().__init__(f"storage error: {message} (attempt {attempts})")

    def __reduce__(self):
        return (type(self), (self.message, self.attempts, self.original))


class GuestFault(QuotaError):
    """The component failed: no answer was computed.

    ``kind`` is ``trap`` (a bug in the component), ``out-of-fuel`` (the
    call used up its fuel), ``memory-limit`` (the guest needed more memory
    than allowed) or ``load`` (the component could not be loaded).
    """

    def __init__(self, kind, message):
        self.kind = kind
        self.message = message
        super().__init__(f"guest fault ({kind}): {message}")

    def __reduce__(self):
        return (type(self), (self.kind, self.message))


# Shown (and pickled) as `delimiter.X`, where users find them.
for _cls in (QuotaError, InvalidInput, OverLimit, RetriesExhausted, StorageError, GuestFault):
    _cls.__module__ = "delimiter"
del _cls
