"""Combining the concurrent consumes of one process into batches.

Many threads of one process that consume against one project tree mostly
conflict with each other: every consume claims the root's generation, so
all but one of them lose each round and read again. A :class:`Combiner`
runs them as batches instead (semantics, "Combining concurrent consumes"):
the first thread to arrive leads, takes up to ``cap`` of the requests
queued behind it in arrival order and runs them with
:func:`delimiter.consume_batch` through its own store (one read of the
trees, decisions in arrival order, one commit of the admitted members);
the others wait and get their own result. A member is decided exactly as
it would be one by one in arrival order.

Pure Python over ``consume_batch``, with only the ``threading`` module's
``Lock`` and ``Condition``: under eventlet's monkey-patching (Nova's API
workers) they are green, so the combiner combines green threads too (make
the combiner after patching). A waiting thread blocks on a condition, so it
holds neither the GIL nor a CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import threading
from collections import deque
from typing import Any, Callable, Deque, Dict, Hashable, List, Optional

import delimiter._delimiter as _d

__all__ = ["Combiner", "CombinerStats"]


@dataclasses.dataclass(frozen=True)
class CombinerStats:
    """What a :class:`Combiner` has done so far.

    ``batches``: ``consume_batch`` runs; ``combined``: the requests they
    carried; ``largest``: the most requests one carried; ``lone``: requests
    consumed alone because their store has no ``read_batch`` and
    ``commit_batch``."""

    batches: int = 0
    combined: int = 0
    largest: int = 0
    lone: int = 0

    @property
    def mean_batch(self) -> float:
        """Requests per batch (0.0 before the first batch)."""
        return self.combined / self.batches if self.batches else 0.0


class _Slot:
    """One waiting consume: its request, the store its thread passed, and
    its outcome once decided (a ``Consumed`` or an exception to raise)."""

    __slots__ = ("request", "store", "done", "result")

    def __init__(self, request: Any, store: Any) -> None:
        self.request = request
        self.store = store
        self.done = False
        self.result: Any = None

    def outcome(self) -> Any:
        result = self.result
        if isinstance(result, BaseException):
            raise result
        return result


class _Group:
    """The queue of one group key and whether a leader is running a batch."""

    __slots__ = ("cond", "queue", "busy")

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.queue: Deque[_Slot] = deque()
        self.busy = False


def _batches(store: Any) -> bool:
    return hasattr(store, "read_batch") and hasattr(store, "commit_batch")


_TAKES_STORES: Dict[type, bool] = {}


def _takes_stores(store: Any) -> bool:
    """Whether ``store.commit_batch`` takes the members' own stores
    (``stores=``), as ``SqlAlchemyStore``'s does."""
    kind = type(store)
    known = _TAKES_STORES.get(kind)
    if known is None:
        try:
            known = "stores" in inspect.signature(store.commit_batch).parameters
        except (TypeError, ValueError):
            known = False
        _TAKES_STORES[kind] = known
    return known


class _MemberStores:
    """The leader's store as ``consume_batch`` sees it, passing the members'
    own stores to its ``commit_batch`` (``stores=``, one per member), so
    that each member's rows are written as its own store would write them
    (say, a ``SqlAlchemyStore.with_rows`` binding). Every other method is
    the leader store's own.

    Which slot a member passed to ``commit_batch`` is: the members are the
    admitted ones among the slots still pending, in order, so each is the
    next pending slot with an equal request. Equal requests in one batch
    come with one store (see ``Combiner._take``), so a tie cannot pick the
    wrong store; a member failure drops its slot from the pending ones."""

    def __init__(self, store: Any, slots: List[_Slot]) -> None:
        self._store = store
        self._pending = list(slots)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def commit_batch(self, claim: Any, members: Any) -> Any:
        matched: List[Optional[_Slot]] = []
        at = 0
        for member in members:
            found = None
            while at < len(self._pending):
                slot = self._pending[at]
                at += 1
                if slot.request == member:
                    found = slot
                    break
            matched.append(found)
        stores = [None if s is None else s.store for s in matched]
        outcome = self._store.commit_batch(claim, members, stores=stores)
        if isinstance(outcome, _d.MemberFailure) and outcome.index < len(matched):
            failed = matched[outcome.index]
            if failed is not None:
                self._pending.remove(failed)
        return outcome


def _for_follower(error: BaseException) -> BaseException:
    """A copy of an exception the whole batch ended with, for a follower
    to raise in its own thread (its cause kept); the exception itself if it
    cannot be copied."""
    try:
        other = copy.copy(error)
    except Exception:
        return error
    if type(other) is not type(error):
        return error
    other.__cause__ = error.__cause__
    other.__traceback__ = None
    return other


class Combiner:
    """Runs concurrent ``consume`` calls of one process as batches.

    ``combiner.consume(store, request)`` is ``delimiter.consume(store,
    request, config, policy)`` with the same result (a ``Consumed``) or the
    same exception type (``OverLimit``, ``RetriesExhausted``,
    ``StorageError``, ``InvalidInput``, ``GuestFault``, or what a store
    method raised), but calls from several threads whose projects share a
    group key run together:

    - the first to arrive leads: it takes up to ``cap`` (default 32) of the
      queued requests of its group, in arrival order, itself first, and runs
      them with ``delimiter.consume_batch`` through the ``store`` IT passed
      (its own connection) and its own component instance;
    - the others wait (blocked on a condition: no GIL, no CPU) until their
      batch is done, then return or raise their own outcome; a request that
      arrives while a batch runs waits for the next one, led by the first
      of them.

    ``key(project_id)`` gives a request's group (any hashable value);
    requests of different groups never share a batch, and groups run in
    parallel. The default puts every request in one group, which is right
    for one project tree; for several trees, ``key`` might map a project to
    its root (a batch reads the whole trees of its members, so unrelated
    trees in one batch only make the read bigger).

    Stores: each thread passes the store it would pass to ``consume``, used
    from that thread only if it leads. A store without ``read_batch`` and
    ``commit_batch`` is consumed alone (``stats.lone``). In a batch the
    leader's store writes every member's rows: a store whose
    ``commit_batch`` takes ``stores=`` (``SqlAlchemyStore``) is handed each
    member's own store, so a follower's ``with_rows`` binding writes that
    follower's rows; equal requests from different store objects then go
    into separate batches. Every store given to one combiner must use the
    same database.

    The policy's deadline and attempts count per batch, from the moment its
    leader starts it; time spent waiting for an earlier batch is not
    counted. If the leader is interrupted by something other than an
    ``Exception`` (``KeyboardInterrupt``, a green thread killed), it raises
    that, and its followers go back to the head of the queue to be led by
    another.

    ``stats`` tells how much combining happened.
    """

    def __init__(
        self,
        config: Optional[_d.Config] = None,
        policy: Optional[_d.RetryPolicy] = None,
        *,
        key: Optional[Callable[[str], Hashable]] = None,
        cap: int = 32,
        fuel: Optional[int] = None,
        memory_limit: Optional[int] = None,
    ) -> None:
        if cap < 1:
            raise ValueError(f"cap must be at least 1, not {cap}")
        self.config = config
        self.policy = policy
        self.key = key
        self.cap = cap
        self._bounds: Dict[str, Any] = {"fuel": fuel, "memory_limit": memory_limit}
        self._lock = threading.Lock()
        self._groups: Dict[Hashable, _Group] = {}
        self._stats = CombinerStats()

    @property
    def stats(self) -> CombinerStats:
        """The counts so far (a snapshot)."""
        with self._lock:
            return self._stats

    def _count(self, **more: int) -> None:
        with self._lock:
            s = self._stats
            self._stats = CombinerStats(
                batches=s.batches + more.get("batches", 0),
                combined=s.combined + more.get("combined", 0),
                largest=max(s.largest, more.get("largest", 0)),
                lone=s.lone + more.get("lone", 0),
            )

    def _group(self, project: str) -> _Group:
        k = None if self.key is None else self.key(project)
        with self._lock:
            group = self._groups.get(k)
            if group is None:
                group = self._groups[k] = _Group()
            return group

    def consume(self, store: Any, request: _d.Request) -> _d.Consumed:
        """Consumes ``request``, in a batch with the concurrent calls of its
        group when ``store`` can batch; see the class."""
        if not _batches(store):
            self._count(lone=1)
            return _d.consume(store, request, self.config, self.policy, **self._bounds)
        group = self._group(request.project)
        slot = _Slot(request, store)
        with group.cond:
            group.queue.append(slot)
            try:
                while not slot.done:
                    if not group.busy and group.queue[0] is slot:
                        group.busy = True
                        batch = self._take(group.queue, _takes_stores(store))
                        break
                    group.cond.wait()
                else:
                    return slot.outcome()
            except BaseException:
                # Interrupted while waiting (KeyboardInterrupt, a green
                # thread killed or timed out): leave the queue, unless a
                # leader already took the request (it runs, unread).
                if slot in group.queue:
                    group.queue.remove(slot)
                    group.cond.notify_all()
                raise
        self._lead(group, batch, store)
        return slot.outcome()

    def _take(self, queue: Deque[_Slot], per_member: bool) -> List[_Slot]:
        """Up to ``cap`` slots from the head of ``queue``, in order. With
        per-member stores, stops before a request equal to one taken with
        another store (so ``_MemberStores`` cannot mistake one for the
        other)."""
        batch: List[_Slot] = []
        stores: Dict[Any, Any] = {}
        while queue and len(batch) < self.cap:
            slot = queue[0]
            if per_member and stores.setdefault(slot.request, slot.store) is not slot.store:
                break
            batch.append(queue.popleft())
        return batch

    def _lead(self, group: _Group, batch: List[_Slot], store: Any) -> None:
        """Runs ``batch`` through ``store`` and hands out the outcomes."""
        requests = [s.request for s in batch]
        view = _MemberStores(store, batch) if _takes_stores(store) else store
        try:
            try:
                results: List[Any] = list(
                    _d.consume_batch(view, requests, self.config, self.policy, **self._bounds)
                )
            except Exception as error:
                # A guest fault, or what the store raised: everyone's.
                results = [error] + [_for_follower(error) for _ in batch[1:]]
        except BaseException:
            # Interrupted: the followers wait for another leader.
            with group.cond:
                group.queue.extendleft(reversed(batch[1:]))
                group.busy = False
                group.cond.notify_all()
            raise
        self._count(batches=1, combined=len(batch), largest=len(batch))
        with group.cond:
            for slot, result in zip(batch, results):
                slot.result = result
                slot.done = True
            group.busy = False
            group.cond.notify_all()
