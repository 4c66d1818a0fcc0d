"""Type stubs of the native module ``fms._fms`` (re-exported by ``fms``)."""

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from os import PathLike
from typing import Any, Literal, TypeVar, Union, final, overload

_T = TypeVar("_T")

#: Values a record holds. Nested maps are ``Record``s, lists are ``List``s.
_Value = Union[None, bool, int, float, str, bytes, "Record", "List"]
#: What ``build`` accepts as a value.
_Input = Union[None, bool, int, float, str, bytes, Mapping[str, "_Input"], Sequence["_Input"]]
_StrPath = Union[str, PathLike[str]]

FORMAT_VERSION: int
__all__ = [
    "Snapshot",
    "Record",
    "List",
    "Store",
    "Ids",
    "Fields",
    "Elements",
    "to_python",
    "build",
    "FmsError",
    "SnapshotError",
    "BaseError",
    "LimitError",
    "FORMAT_VERSION",
]

class FmsError(Exception):
    """Base class of the errors fms raises (file errors are OSError)."""

class SnapshotError(FmsError):
    """Not a valid snapshot: malformed, truncated, damaged or of an unknown version."""

class BaseError(FmsError):
    """An overlay was opened over the wrong base, or without one."""

class LimitError(FmsError):
    """A format limit was exceeded."""

@final
class Snapshot(Mapping[str, "Record"]):
    """A snapshot file mapped into memory: a read-only mapping of id -> Record."""

    @staticmethod
    def open(path: _StrPath, base: Snapshot | None = None) -> Snapshot:
        """Maps the file and checks its header (O(1)); with ``base``, an overlay over it."""
    @staticmethod
    def from_bytes(data: bytes, base: Snapshot | None = None) -> Snapshot:
        """A snapshot from bytes (copied)."""
    def __getitem__(self, id: str, /) -> Record: ...
    @overload
    def get(self, id: str) -> Record | None: ...
    @overload
    def get(self, id: str, default: _T) -> Record | _T: ...
    def __contains__(self, id: object, /) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def keys(self) -> KeysView[str]: ...
    def values(self) -> ValuesView[Record]: ...
    def items(self) -> ItemsView[str, Record]: ...
    def verify(self) -> None:
        """Checks every byte (and the bases'); raises SnapshotError. Releases the GIL."""
    @property
    def hash(self) -> str:
        """The content hash, 32 hex digits."""
    @property
    def base(self) -> Snapshot | None: ...
    @property
    def depth(self) -> int: ...
    @property
    def is_overlay(self) -> bool: ...
    @property
    def nbytes(self) -> int:
        """Bytes of this snapshot's own file."""

@final
class Record(Mapping[str, _Value]):
    """A record or nested map: a read-only Mapping of field name -> value, read from the
    map on each access. Equal to a dict with the same items; pickles as a dict."""

    def __getitem__(self, key: str, /) -> _Value: ...
    @overload
    def get(self, key: str) -> _Value: ...
    @overload
    def get(self, key: str, default: _T) -> _Value | _T: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def keys(self) -> KeysView[str]: ...
    def values(self) -> ValuesView[_Value]: ...
    def items(self) -> ItemsView[str, _Value]: ...
    def to_dict(self) -> dict[str, Any]:
        """A plain dict copy (nested maps and lists as dicts and lists)."""
    def to_json(self) -> str:
        """Compact JSON, written straight from the map."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class List(Sequence[_Value]):
    """A list of a snapshot: a read-only Sequence. Equal to a list or tuple with equal
    elements; pickles as a list."""

    @overload
    def __getitem__(self, index: int, /) -> _Value: ...
    @overload
    def __getitem__(self, index: slice, /) -> list[_Value]: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[_Value]: ...
    def __contains__(self, x: object, /) -> bool: ...
    def index(self, x: object) -> int: ...  # type: ignore[override]
    def count(self, x: object) -> int: ...
    def to_list(self) -> list[Any]:
        """A plain list copy (nested maps as dicts)."""
    def to_json(self) -> str:
        """Compact JSON, written straight from the map."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Store:
    """One snapshot per locale from a manifest; ``reload`` swaps versions atomically."""

    @staticmethod
    def open_manifest(path: _StrPath) -> Store: ...
    def current(self, locale: str) -> Snapshot | None:
        """The snapshot ``locale`` serves, else the default locale's."""
    def current_exact(self, locale: str) -> Snapshot | None: ...
    def reload(self, path: _StrPath) -> dict[str, str]:
        """Serves what the manifest lists, all or nothing; returns locale -> hash."""
    def published(self) -> dict[str, str]: ...
    def evict_unpublished(self) -> int: ...
    @property
    def default_locale(self) -> str: ...

def to_python(obj: object) -> Any:
    """A Record as a dict, a List as a list (deeply); TypeError for anything else. For
    ``json.dumps(x, default=fms.to_python)``."""

def build(
    records: Mapping[str, Mapping[str, _Input]] | Iterable[tuple[str, Mapping[str, _Input]]],
    path: _StrPath,
    *,
    base: Snapshot | None = None,
    compression: Literal["auto", "none"] | int | None = None,
) -> dict[str, Any]:
    """Writes a snapshot (with ``base``: an overlay whose merged tree is ``records``)
    atomically. Returns hash, records, bytes, keys, shapes and sections."""

@final
class Ids(Iterator[str]):
    """Iterator over a snapshot's ids (``iter(snapshot)``)."""

    def __next__(self) -> str: ...
    def __length_hint__(self) -> int: ...

@final
class Fields(Iterator[str]):
    """Iterator over a record's field names (``iter(record)``)."""

    def __next__(self) -> str: ...
    def __length_hint__(self) -> int: ...

@final
class Elements(Iterator[_Value]):
    """Iterator over a list's elements (``iter(list)``)."""

    def __next__(self) -> _Value: ...
    def __length_hint__(self) -> int: ...
