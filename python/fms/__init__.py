"""fms: a memory-compact, read-only frozen model store.

Snapshots are files of records (dicts of str, int, float, bool, None, bytes, lists and
nested dicts) that are mapped into memory, not loaded: opening one is O(1), and reading
``snap[id][field]`` creates only the value it returns. Nothing of a snapshot lives on the
Python heap; the map stays alive while any object read from it does.

    >>> import fms
    >>> info = fms.build({"video:intro": {"title": "Intro", "views": 3}}, "/tmp/en.fms")
    >>> en = fms.Snapshot.open("/tmp/en.fms")
    >>> rec = en["video:intro"]
    >>> rec["title"], rec.get("missing", 0), dict(rec)
    ('Intro', 0, {'title': 'Intro', 'views': 3})

``Record`` is a ``collections.abc.Mapping`` (so ``isinstance``, ``dict(rec)``, ``{**rec}``
and ``match`` mapping patterns work), ``List`` a ``collections.abc.Sequence`` and
``Snapshot`` a ``Mapping`` of id -> Record. ``json.dumps(x, default=fms.to_python)``
serializes them; ``rec.to_json()`` writes JSON straight from the map.
"""

import collections.abc as _abc

from ._fms import (
    FORMAT_VERSION as FORMAT_VERSION,
    BaseError as BaseError,
    FmsError as FmsError,
    LimitError as LimitError,
    List as List,
    Record as Record,
    Snapshot as Snapshot,
    SnapshotError as SnapshotError,
    Store as Store,
    build as build,
    to_python as to_python,
)

# Registration makes isinstance() true and, from Python 3.10, sets the type flags that
# `match` uses for mapping and sequence patterns. (The methods are the classes' own.)
_abc.Mapping.register(Record)
_abc.Mapping.register(Snapshot)
_abc.Sequence.register(List)

__all__ = [
    "FORMAT_VERSION",
    "BaseError",
    "FmsError",
    "LimitError",
    "List",
    "Record",
    "Snapshot",
    "SnapshotError",
    "Store",
    "build",
    "to_python",
]
