"""Delimiter: quota enforcement for flat and nested project trees.

The library decides; your service stores. Every decision is made by
Delimiter's WebAssembly component, embedded in the extension module
``delimiter._delimiter`` and run with wasmtime, so the answers are byte for
byte those of every other Delimiter host.

>>> import delimiter as d
>>> snapshot = d.Snapshot(
...     projects=[d.Project("org"), d.Project("a", parent="org")],
...     limits=d.Limits(project=[d.ProjectLimit("org", "servers", 10)]),
...     usage=[d.UsageEntry("a", "servers", 9)],
...     generations=[d.Generation("org", 4), d.Generation("a", 7)],
... )
>>> d.evaluate(snapshot, d.Request("a", {"servers": 1}),
...            d.Config(missing_limit="unlimited")).claim
[ClaimEntry(project='a', generation=7), ClaimEntry(project='org', generation=4)]

Importing is cheap: the component is compiled on first use, once per
machine (the compiled artifact is cached on disk, see ``load_info()``).
"""

from delimiter._delimiter import (
    DEFAULT_FUEL,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MEMORY_LIMIT,
    ChildLimitExceedsParent,
    ClaimEntry,
    CommitOutcome,
    Config,
    Consumed,
    Count,
    Decision,
    Delta,
    Generation,
    InvalidFinding,
    Limits,
    MemberFailure,
    MissingLimit,
    Model,
    OsloCheck,
    OverLimitInfo,
    PathUsage,
    Prepared,
    PreparedMember,
    Project,
    ProjectLimit,
    RegisteredLimit,
    Request,
    ResourceHeadroom,
    ResourceLimit,
    ResourceUsage,
    RetryPolicy,
    Snapshot,
    UsageEntry,
    Violation,
    consume,
    consume_batch,
    evaluate,
    evaluate_batch,
    headroom,
    load_info,
    max_count,
    oslo_check,
    parse_model,
    validate,
)
from delimiter import _errors
from delimiter._errors import (
    GuestFault,
    InvalidInput,
    OverLimit,
    QuotaError,
    RetriesExhausted,
    StorageError,
)
from delimiter._store import CallbackStore

__version__ = "0.1.0"

__all__ = [
    # settings
    "Config",
    "Model",
    "MissingLimit",
    "RetryPolicy",
    "DEFAULT_FUEL",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MEMORY_LIMIT",
    # inputs
    "Project",
    "RegisteredLimit",
    "ProjectLimit",
    "Limits",
    "UsageEntry",
    "ResourceUsage",
    "PathUsage",
    "Generation",
    "Snapshot",
    "Delta",
    "Request",
    "PreparedMember",
    "ResourceLimit",
    "OsloCheck",
    # results
    "Decision",
    "Prepared",
    "ClaimEntry",
    "Violation",
    "ResourceHeadroom",
    "Count",
    "InvalidFinding",
    "ChildLimitExceedsParent",
    "OverLimitInfo",
    "Consumed",
    "CommitOutcome",
    "MemberFailure",
    # functions
    "evaluate",
    "headroom",
    "max_count",
    "validate",
    "oslo_check",
    "consume",
    "evaluate_batch",
    "consume_batch",
    "parse_model",
    "load_info",
    "CallbackStore",
    # combining concurrent consumes (delimiter.combiner, imported on first use)
    "Combiner",
    "CombinerStats",
]
# errors (the form type checkers read as extending __all__)
__all__ += _errors.__all__

_LAZY = {"Combiner": "delimiter.combiner", "CombinerStats": "delimiter.combiner"}


def __getattr__(name):
    # The combiner (threading, dataclasses, inspect) only when asked for,
    # so that `import delimiter` stays cheap.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'delimiter' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
