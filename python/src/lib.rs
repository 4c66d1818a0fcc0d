//! `fms._fms`: the native half of the Python package `fms` (see `fms/__init__.py`, which
//! registers the classes with `collections.abc` and re-exports them).
//!
//! Every Python object that reads a snapshot holds an `Arc` of it (through [`Snap`]), so
//! the map stays alive as long as anything refers into it. Records and lists are
//! [`fms::Anchor`]s, resolved again on each access (O(overlay depth), no hashing); values
//! are created per read; key names are interned once per snapshot.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use fms::{Anchor, Compression, ContentHash, SnapshotBuilder, TupleMap, Value, ValueRef};
use pyo3::exceptions::{PyIndexError, PyKeyError, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PySlice, PyString, PyTuple,
};
use pyo3::{IntoPyObjectExt, create_exception};

create_exception!(
    _fms,
    FmsError,
    pyo3::exceptions::PyException,
    "Base class of the errors fms raises (file errors are OSError)."
);
create_exception!(
    _fms,
    SnapshotError,
    FmsError,
    "The bytes are not a valid snapshot: malformed, truncated, damaged (checksum), or of an unknown format version. The message says what and at which byte."
);
create_exception!(
    _fms,
    BaseError,
    FmsError,
    "An overlay was opened over the wrong base, or without one."
);
create_exception!(
    _fms,
    LimitError,
    FmsError,
    "A format limit was exceeded (the message names it)."
);

/// Turns an fms error into the Python exception that fits its cause: OSError (with errno
/// and filename, so FileNotFoundError and friends) for I/O, SnapshotError for bad bytes,
/// BaseError for overlay bases, KeyError for unknown ids, ValueError for bad input,
/// LimitError, else FmsError. The message is fms's whole message (it names the file).
fn err(e: fms::Error) -> PyErr {
    use fms::Error as E;
    let msg = e.to_string();
    match e.root() {
        E::Io { path, source } => match source.raw_os_error() {
            // Python's own form, "[Errno 2] No such file or directory: 'path'", when the
            // error is the I/O error itself; else fms's message, which says what was done.
            Some(code) => {
                let text = if matches!(e, E::Io { .. }) {
                    let s = source.to_string();
                    s.strip_suffix(&format!(" (os error {code})"))
                        .unwrap_or(&s)
                        .to_owned()
                } else {
                    msg
                };
                PyOSError::new_err((code, text, path.display().to_string()))
            }
            None => PyOSError::new_err(msg),
        },
        E::Format { .. } | E::Checksum { .. } | E::Version { .. } | E::Corrupt { .. } => {
            SnapshotError::new_err(msg)
        }
        E::BaseMismatch { .. } | E::MissingBase { .. } => BaseError::new_err(msg),
        E::Limit { .. } => LimitError::new_err(msg),
        E::UnknownId { .. } | E::NotLoaded { .. } => PyKeyError::new_err(msg),
        E::DuplicateId { .. }
        | E::Value(_)
        | E::InvalidInput(_)
        | E::Json(_)
        | E::Jsonl { .. }
        | E::Manifest { .. } => PyValueError::new_err(msg),
        _ => FmsError::new_err(msg),
    }
}

fn corrupt(what: &str) -> PyErr {
    SnapshotError::new_err(format!(
        "corrupt snapshot: {what} (verify the file for details)"
    ))
}

/// A snapshot and what the binding keeps per snapshot: the interned key names.
struct Snap {
    snap: Arc<fms::Snapshot>,
    /// Key id -> interned Python name, filled on first use.
    names: Box<[PyOnceLock<Py<PyString>>]>,
}

impl Snap {
    fn new(snap: Arc<fms::Snapshot>) -> Arc<Snap> {
        let names = (0..snap.key_count()).map(|_| PyOnceLock::new()).collect();
        Arc::new(Snap { snap, names })
    }

    fn record(&self, at: Anchor) -> PyResult<fms::Record<'_>> {
        self.snap
            .record_at(at)
            .ok_or_else(|| corrupt("unreadable record"))
    }

    fn list(&self, at: Anchor) -> PyResult<fms::List<'_>> {
        self.snap
            .list_at(at)
            .ok_or_else(|| corrupt("unreadable list"))
    }

    /// The interned name of field `i` of `rec`: looked up in the file once per key.
    fn name<'py>(
        &self,
        py: Python<'py>,
        rec: &fms::Record<'_>,
        i: usize,
    ) -> PyResult<Bound<'py, PyString>> {
        let key = rec
            .field_key(i)
            .ok_or_else(|| corrupt("unreadable field name"))?;
        let slot = self
            .names
            .get(key.id() as usize)
            .ok_or_else(|| corrupt("key id out of range"))?;
        let name = slot.get_or_try_init(py, || {
            let name = rec
                .field_name(i)
                .ok_or_else(|| corrupt("unreadable field name"))?;
            Ok::<_, PyErr>(PyString::intern(py, name).unbind())
        })?;
        Ok(name.bind(py).clone())
    }

    /// A value as a Python object: scalars and strings by value, maps and lists as views.
    fn value<'py>(
        self: &Arc<Self>,
        py: Python<'py>,
        v: ValueRef<'_>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(match v {
            ValueRef::Null => py.None().into_bound(py),
            ValueRef::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
            ValueRef::Int(i) => i.into_bound_py_any(py)?,
            ValueRef::Float(f) => PyFloat::new(py, f).into_any(),
            ValueRef::Str(s) => match s.as_plain() {
                Some(s) => PyString::new(py, s).into_any(),
                None => SCRATCH.with_borrow_mut(|buf| {
                    buf.clear();
                    s.write_into(buf).map_err(err)?;
                    let out = PyString::new(py, buf).into_any();
                    if buf.capacity() > SCRATCH_KEEP {
                        *buf = String::new();
                    }
                    Ok::<_, PyErr>(out)
                })?,
            },
            ValueRef::Bytes(b) => PyBytes::new(py, b).into_any(),
            ValueRef::List(l) => Bound::new(
                py,
                List {
                    snap: self.clone(),
                    at: l.anchor(),
                    len: l.len(),
                },
            )?
            .into_any(),
            ValueRef::Map(m) => {
                let at = m.anchor().ok_or_else(|| corrupt("unanchorable map"))?;
                Bound::new(
                    py,
                    Record {
                        snap: self.clone(),
                        at,
                    },
                )?
                .into_any()
            }
        })
    }
}

/// Bytes a thread's decode buffer may keep between reads (a cold string can be large).
const SCRATCH_KEEP: usize = 64 * 1024;

thread_local! {
    /// Where compressed strings are decoded before becoming Python strings.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// An owned value (from `to_owned`, which bounds the work a file can cause) as plain
/// Python objects: dicts, lists, str, int, float, bool, None, bytes.
fn plain<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_bound_py_any(py)?,
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::List(l) => {
            let out = PyList::empty(py);
            for x in l.iter() {
                out.append(plain(py, x)?)?;
            }
            out.into_any()
        }
        Value::Map(m) => plain_map(py, m)?.into_any(),
    })
}

fn plain_map<'py>(py: Python<'py>, m: &TupleMap) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (k, v) in m.iter() {
        out.set_item(k, plain(py, v)?)?;
    }
    Ok(out)
}

fn hex(h: ContentHash) -> String {
    h.to_string()
}

/// A snapshot file mapped into memory (or an overlay over a base snapshot): a read-only
/// mapping from record id to `Record`.
#[pyclass(module = "fms", frozen, mapping)]
struct Snapshot {
    snap: Arc<Snap>,
    /// The Python object of the base, for overlays (what `base` returns).
    base: Option<Py<Snapshot>>,
}

impl Snapshot {
    fn wrap(snap: Arc<fms::Snapshot>, base: Option<Py<Snapshot>>) -> Snapshot {
        Snapshot {
            snap: Snap::new(snap),
            base,
        }
    }

    fn lookup(&self, py: Python<'_>, id: &str) -> PyResult<Option<Py<Record>>> {
        match self.snap.snap.anchor(id) {
            Some(at) => Ok(Some(Py::new(
                py,
                Record {
                    snap: self.snap.clone(),
                    at,
                },
            )?)),
            None => Ok(None),
        }
    }
}

#[pymethods]
impl Snapshot {
    /// Opens a snapshot file: maps it and checks its header in O(1). With `base`, opens
    /// an overlay over that snapshot (BaseError if the overlay was built over another).
    #[staticmethod]
    #[pyo3(signature = (path, base = None))]
    fn open(py: Python<'_>, path: PathBuf, base: Option<Py<Snapshot>>) -> PyResult<Snapshot> {
        let snap = match &base {
            None => fms::Snapshot::open(&path),
            Some(b) => fms::Snapshot::open_overlay(&path, b.get().snap.snap.clone()),
        }
        .map_err(err)?;
        let _ = py;
        Ok(Snapshot::wrap(Arc::new(snap), base))
    }

    /// A snapshot from bytes in memory (copied), e.g. read from elsewhere. With `base`,
    /// an overlay.
    #[staticmethod]
    #[pyo3(signature = (data, base = None))]
    fn from_bytes(data: Vec<u8>, base: Option<Py<Snapshot>>) -> PyResult<Snapshot> {
        let snap = match &base {
            None => fms::Snapshot::from_bytes(data),
            Some(b) => fms::Snapshot::overlay_from_bytes(data, b.get().snap.snap.clone()),
        }
        .map_err(err)?;
        Ok(Snapshot::wrap(Arc::new(snap), base))
    }

    /// The record with this id (KeyError if there is none).
    fn __getitem__(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Py<Record>> {
        // Like a dict: a key of another type is just absent (KeyError, not TypeError).
        let found = match id.cast::<PyString>() {
            Ok(s) => self.lookup(py, s.to_str()?)?,
            Err(_) => None,
        };
        found.ok_or_else(|| PyKeyError::new_err(id.clone().unbind()))
    }

    /// The record with this id, or `default`.
    #[pyo3(signature = (id, default = None))]
    fn get(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let found = match id.cast::<PyString>() {
            Ok(s) => self.lookup(py, s.to_str()?)?,
            Err(_) => None,
        };
        Ok(match found {
            Some(r) => r.into_any(),
            None => default.unwrap_or_else(|| py.None()),
        })
    }

    fn __contains__(&self, id: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(match id.cast::<PyString>() {
            Ok(s) => self.snap.snap.contains(s.to_str()?),
            Err(_) => false,
        })
    }

    fn __len__(&self) -> usize {
        self.snap.snap.len()
    }

    /// The ids, in the snapshot's order.
    fn __iter__(&self) -> Ids {
        Ids {
            snap: self.snap.clone(),
            at: Some(self.snap.snap.ids().cursor()),
        }
    }

    /// A `KeysView` of the ids.
    fn keys<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        abc(slf.py(), "KeysView")?.call1((slf,))
    }

    /// A `ValuesView` of the records.
    fn values<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        abc(slf.py(), "ValuesView")?.call1((slf,))
    }

    /// An `ItemsView` of the `(id, record)` pairs.
    fn items<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        abc(slf.py(), "ItemsView")?.call1((slf,))
    }

    /// Checks every byte of the file (and of its bases): checksums, strings, nodes,
    /// indexes. Raises SnapshotError naming the first problem. Releases the GIL.
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        let snap = self.snap.snap.clone();
        py.detach(move || snap.verify()).map_err(err)
    }

    /// The content hash (32 hex digits): identifies the snapshot and its base.
    #[getter]
    fn hash(&self) -> String {
        hex(self.snap.snap.hash())
    }

    /// For an overlay, the snapshot it reads through; else None.
    #[getter]
    fn base(&self, py: Python<'_>) -> PyResult<Option<Py<Snapshot>>> {
        if let Some(b) = &self.base {
            return Ok(Some(b.clone_ref(py)));
        }
        match self.snap.snap.base() {
            Some(b) => Ok(Some(Py::new(py, Snapshot::wrap(b.clone(), None))?)),
            None => Ok(None),
        }
    }

    /// 0 for a full snapshot; 1 + the base's depth for an overlay.
    #[getter]
    fn depth(&self) -> u32 {
        self.snap.snap.depth()
    }

    /// Whether this is an overlay.
    #[getter]
    fn is_overlay(&self) -> bool {
        self.snap.snap.is_overlay()
    }

    /// Bytes of this snapshot's own file.
    #[getter]
    fn nbytes(&self) -> usize {
        self.snap.snap.as_bytes().len()
    }

    fn __repr__(&self) -> String {
        let s = &self.snap.snap;
        format!(
            "<fms.Snapshot {} records={} bytes={}{}>",
            s.hash(),
            s.len(),
            s.as_bytes().len(),
            s.base_hash()
                .map(|b| format!(" base={b}"))
                .unwrap_or_default()
        )
    }
}

/// Iterator over a snapshot's ids.
#[pyclass(module = "fms")]
struct Ids {
    snap: Arc<Snap>,
    at: Option<fms::IdCursor>,
}

#[pymethods]
impl Ids {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> Option<Bound<'py, PyString>> {
        let mut ids = self.snap.snap.ids_from(self.at?)?;
        let Some(id) = ids.next() else {
            self.at = None;
            return None;
        };
        self.at = Some(ids.cursor());
        Some(PyString::new(py, id))
    }

    fn __length_hint__(&self) -> usize {
        self.at
            .and_then(|c| self.snap.snap.ids_from(c))
            .map_or(0, |i| i.len())
    }
}

/// A record (or nested map) of a snapshot: a read-only `Mapping` from field name to value.
/// Values are read from the map on each access; nested maps are Records, lists `List`s.
#[pyclass(module = "fms", frozen, mapping)]
struct Record {
    snap: Arc<Snap>,
    at: Anchor,
}

impl Record {
    /// An owned copy, in one walk under the file's walk limit.
    fn owned(&self) -> PyResult<TupleMap> {
        self.snap.record(self.at)?.to_owned().map_err(err)
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        plain_map(py, &self.owned()?)
    }
}

/// What `__reduce__` returns to pickle a view as the plain container `ty(copy)`.
fn reduce_as<'py>(
    ty: Bound<'py, pyo3::types::PyType>,
    copy: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let py = ty.py();
    PyTuple::new(py, [ty.into_any(), PyTuple::new(py, [copy])?.into_any()])
}

/// `collections.abc` classes, imported once.
fn abc<'py>(py: Python<'py>, name: &'static str) -> PyResult<Bound<'py, PyAny>> {
    static ABC: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let m = ABC.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("collections.abc")?.unbind())
    })?;
    m.bind(py).getattr(name)
}

#[pymethods]
impl Record {
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(k) = key.cast::<PyString>() {
            if let Some(v) = self.snap.record(self.at)?.get(k.to_str()?) {
                return self.snap.value(py, v);
            }
        }
        Err(PyKeyError::new_err(key.clone().unbind()))
    }

    /// The value of field `key`, or `default`.
    #[pyo3(signature = (key, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(k) = key.cast::<PyString>() {
            if let Some(v) = self.snap.record(self.at)?.get(k.to_str()?) {
                return self.snap.value(py, v);
            }
        }
        Ok(default.unwrap_or_else(|| py.None().into_bound(py)))
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(match key.cast::<PyString>() {
            Ok(k) => self.snap.record(self.at)?.contains_key(k.to_str()?),
            Err(_) => false,
        })
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.snap.record(self.at)?.len())
    }

    fn __iter__(&self) -> PyResult<Fields> {
        Ok(Fields {
            snap: self.snap.clone(),
            at: self.at,
            next: 0,
            len: self.__len__()?,
        })
    }

    /// A `KeysView` of the field names, in field order.
    fn keys<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        abc(slf.py(), "KeysView")?.call1((slf,))
    }

    /// A `ValuesView` of the values, in field order.
    fn values<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        abc(slf.py(), "ValuesView")?.call1((slf,))
    }

    /// An `ItemsView` of the `(name, value)` pairs, in field order.
    fn items<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        abc(slf.py(), "ItemsView")?.call1((slf,))
    }

    /// A plain `dict` copy, nested maps and lists included (dicts and lists).
    #[pyo3(name = "to_dict")]
    fn py_to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.to_dict(py)
    }

    /// The record as compact JSON, written straight from the map (no Python objects in
    /// between; fms's `Record::write_json`, which writes what serde_json writes: NaN and
    /// infinities as `null`, byte strings as lists of numbers). Raises ValueError on a
    /// corrupt file.
    fn to_json(&self) -> PyResult<String> {
        let rec = self.snap.record(self.at)?;
        let mut out = Vec::new();
        rec.write_json(&mut out)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        String::from_utf8(out).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Equal to a mapping with the same items (a dict, another Record).
    fn __eq__<'py>(&self, py: Python<'py>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        if let Ok(o) = other.cast::<Record>() {
            let eq = self.owned()? == o.get().owned()?;
            return Ok(PyBool::new(py, eq).to_owned().into_any().unbind());
        }
        if other.cast::<PyDict>().is_ok() || other.cast::<PyMapping>().is_ok() {
            let mine = self.to_dict(py)?;
            let theirs = PyDict::new(py);
            theirs.update(other.cast::<PyMapping>()?)?;
            return Ok(mine.eq(theirs)?.into_bound_py_any(py)?.unbind());
        }
        Ok(py.NotImplemented())
    }

    /// Pickles as a plain dict.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        reduce_as(py.get_type::<PyDict>(), self.to_dict(py)?.into_any())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("fms.Record({})", self.to_dict(py)?.repr()?))
    }

    /// Records are read-only views; they compare equal to dicts, so they are unhashable
    /// like dicts.
    #[classattr]
    const __hash__: Option<Py<PyAny>> = None;
}

/// Iterator over a record's field names.
#[pyclass(module = "fms")]
struct Fields {
    snap: Arc<Snap>,
    at: Anchor,
    next: usize,
    len: usize,
}

#[pymethods]
impl Fields {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyString>>> {
        if self.next >= self.len {
            return Ok(None);
        }
        let rec = self.snap.record(self.at)?;
        let name = self.snap.name(py, &rec, self.next)?;
        self.next += 1;
        Ok(Some(name))
    }

    fn __length_hint__(&self) -> usize {
        self.len - self.next
    }
}

/// A list of a snapshot: a read-only `Sequence`. Elements are read on each access.
#[pyclass(module = "fms", frozen, sequence)]
struct List {
    snap: Arc<Snap>,
    at: Anchor,
    len: usize,
}

impl List {
    fn item<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        let l = self.snap.list(self.at)?;
        let v = l.get(i).ok_or_else(|| corrupt("unreadable list element"))?;
        self.snap.value(py, v)
    }

    /// An owned copy, in one walk under the file's walk limit.
    fn owned(&self) -> PyResult<Value> {
        ValueRef::List(self.snap.list(self.at)?)
            .to_owned()
            .map_err(err)
    }

    fn to_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        Ok(plain(py, &self.owned()?)?.cast_into::<PyList>()?)
    }
}

#[pymethods]
impl List {
    fn __len__(&self) -> usize {
        self.len
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(slice) = index.cast::<PySlice>() {
            let s = slice.indices(self.len as isize)?;
            let out = PyList::empty(py);
            let mut i = s.start;
            for _ in 0..s.slicelength {
                out.append(self.item(py, i as usize)?)?;
                i += s.step;
            }
            return Ok(out.into_any());
        }
        let i: isize = index
            .extract()
            .map_err(|_| PyTypeError::new_err("list indices must be integers or slices"))?;
        let j = if i < 0 { i + self.len as isize } else { i };
        if j < 0 || j as usize >= self.len {
            return Err(PyIndexError::new_err("list index out of range"));
        }
        self.item(py, j as usize)
    }

    fn __iter__(&self) -> Elements {
        Elements {
            snap: self.snap.clone(),
            at: self.at,
            next: 0,
            len: self.len,
        }
    }

    fn __contains__<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<bool> {
        for i in 0..self.len {
            if self.item(py, i)?.eq(x)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn __reversed__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let l = self.to_list(py)?;
        l.reverse()?;
        l.try_iter().map(|i| i.into_any())
    }

    /// The first index of `x` (ValueError if absent).
    fn index<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<usize> {
        for i in 0..self.len {
            if self.item(py, i)?.eq(x)? {
                return Ok(i);
            }
        }
        Err(PyValueError::new_err("value is not in list"))
    }

    /// How many elements equal `x`.
    fn count<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<usize> {
        let mut n = 0;
        for i in 0..self.len {
            n += usize::from(self.item(py, i)?.eq(x)?);
        }
        Ok(n)
    }

    /// A plain `list` copy (nested maps become dicts).
    #[pyo3(name = "to_list")]
    fn py_to_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        self.to_list(py)
    }

    /// The list as compact JSON, written straight from the map.
    fn to_json(&self) -> PyResult<String> {
        let l = self.snap.list(self.at)?;
        let mut out = Vec::new();
        l.write_json(&mut out)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        String::from_utf8(out).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Equal to a list or tuple with equal elements, or another List.
    fn __eq__<'py>(&self, py: Python<'py>, other: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        // Both sides as plain lists, compared with Python's equality.
        let theirs = if let Ok(o) = other.cast::<List>() {
            o.get().to_list(py)?
        } else if other.cast::<PyList>().is_ok() || other.cast::<PyTuple>().is_ok() {
            PyList::new(py, other.try_iter()?.collect::<PyResult<Vec<_>>>()?)?
        } else {
            return Ok(py.NotImplemented());
        };
        let eq = self.to_list(py)?.eq(theirs)?;
        Ok(eq.into_bound_py_any(py)?.unbind())
    }

    /// Pickles as a plain list.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        reduce_as(py.get_type::<PyList>(), self.to_list(py)?.into_any())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("fms.List({})", self.to_list(py)?.repr()?))
    }

    #[classattr]
    const __hash__: Option<Py<PyAny>> = None;
}

/// Iterator over a list's elements.
#[pyclass(module = "fms")]
struct Elements {
    snap: Arc<Snap>,
    at: Anchor,
    next: usize,
    len: usize,
}

#[pymethods]
impl Elements {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.next >= self.len {
            return Ok(None);
        }
        let l = self.snap.list(self.at)?;
        let v = l
            .get(self.next)
            .ok_or_else(|| corrupt("unreadable list element"))?;
        self.next += 1;
        Ok(Some(self.snap.value(py, v)?))
    }

    fn __length_hint__(&self) -> usize {
        self.len - self.next
    }
}

/// `json.dumps(x, default=fms.to_python)`: a Record as a plain dict, a List as a plain
/// list (nested ones included). TypeError for anything else, as `default` must raise.
#[pyfunction]
fn to_python<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(r) = obj.cast::<Record>() {
        return Ok(r.get().to_dict(py)?.into_any());
    }
    if let Ok(l) = obj.cast::<List>() {
        return Ok(l.get().to_list(py)?.into_any());
    }
    Err(PyTypeError::new_err(format!(
        "Object of type {} is not an fms Record or List",
        obj.get_type().name()?
    )))
}

/// A Python value as an fms value: dict (str keys) -> map, list/tuple -> list, str, int
/// (64-bit), float, bool, None, bytes; fms Records and Lists by their contents.
fn from_python(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > 60 {
        return Err(PyValueError::new_err(
            "value nested too deeply (at most 60 levels)",
        ));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        let v: i64 = i
            .extract()
            .map_err(|_| PyValueError::new_err(format!("integer {i} does not fit in 64 bits")))?;
        return Ok(Value::Int(v));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(s.to_str()?.into()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().into()));
    }
    if let Ok(r) = obj.cast::<Record>() {
        return Ok(Value::Map(Box::new(r.get().owned()?)));
    }
    if let Ok(l) = obj.cast::<List>() {
        return l.get().owned();
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(Value::Map(Box::new(map_from_python(d.as_any(), depth)?)));
    }
    if obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok() {
        let mut out = Vec::new();
        for x in obj.try_iter()? {
            out.push(from_python(&x?, depth + 1)?);
        }
        return Ok(Value::List(out));
    }
    if obj.cast::<PyMapping>().is_ok() {
        return Ok(Value::Map(Box::new(map_from_python(obj, depth)?)));
    }
    Err(PyTypeError::new_err(format!(
        "cannot store a value of type {} (dict, list, tuple, str, int, float, bool, None, bytes)",
        obj.get_type().name()?
    )))
}

fn map_from_python(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<TupleMap> {
    let mut m = TupleMap::new();
    let items = obj.call_method0("items")?;
    for kv in items.try_iter()? {
        let kv = kv?;
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = kv.extract()?;
        let k = k.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "map keys must be str, not {}",
                k.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let key = k.to_str()?;
        let v = from_python(&v, depth + 1).map_err(|e| {
            Python::attach(|py| {
                let cls = e.get_type(py);
                PyErr::from_type(cls, format!("field {key:?}: {}", e.value(py)))
            })
        })?;
        m.insert(key, v);
    }
    Ok(m)
}

/// Builds a snapshot file at `path` from `records`: a mapping of id -> record, or an
/// iterable of `(id, record)` pairs, each record a dict. With `base`, writes an overlay
/// whose merged tree is exactly `records` (base records absent from it are removed).
/// `compression` is "auto" (default), "none" or a zstd level 1..22 for long strings.
/// Written atomically: nothing is left at `path` on failure. Releases the GIL while it
/// encodes and writes. Returns facts about the file (hash, records, bytes, sections).
#[pyfunction]
#[pyo3(signature = (records, path, *, base = None, compression = None))]
fn build<'py>(
    py: Python<'py>,
    records: &Bound<'py, PyAny>,
    path: PathBuf,
    base: Option<Py<Snapshot>>,
    compression: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut b = match &base {
        None => SnapshotBuilder::new(),
        Some(s) => SnapshotBuilder::with_base(&s.get().snap.snap),
    };
    b.set_compression(parse_compression(compression)?);
    let pairs = if records.cast::<PyMapping>().is_ok() || records.cast::<PyDict>().is_ok() {
        records.call_method0("items")?
    } else {
        records.clone()
    };
    for (n, item) in pairs.try_iter()?.enumerate() {
        let item = item?;
        let (id, rec): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract().map_err(|_| {
            PyTypeError::new_err(format!("record {n}: expected an (id, dict) pair"))
        })?;
        let id = id
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("record {n}: the id must be a str")))?;
        let id = id.to_str()?;
        let value = match from_python(&rec, 0).map_err(|e| {
            PyErr::from_type(e.get_type(py), format!("record {id:?}: {}", e.value(py)))
        })? {
            Value::Map(m) => *m,
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "record {id:?}: a record must be a dict"
                )));
            }
        };
        if base.is_some() {
            b.upsert(id, &value).map_err(err)?;
        } else {
            b.insert(id, &value).map_err(err)?;
        }
    }
    if base.is_some() {
        b.remove_absent().map_err(err)?;
    }
    let info = py.detach(move || b.write_to_path(&path)).map_err(err)?;
    let out = PyDict::new(py);
    out.set_item("hash", hex(info.hash))?;
    out.set_item("records", info.records)?;
    out.set_item("bytes", info.bytes)?;
    out.set_item("keys", info.keys)?;
    out.set_item("shapes", info.shapes)?;
    let sections = PyDict::new(py);
    for (name, bytes) in &info.sections {
        sections.set_item(*name, *bytes)?;
    }
    out.set_item("sections", sections)?;
    Ok(out)
}

fn parse_compression(c: Option<&Bound<'_, PyAny>>) -> PyResult<Compression> {
    let Some(c) = c else {
        return Ok(Compression::Auto);
    };
    if c.is_none() {
        return Ok(Compression::Auto);
    }
    if let Ok(s) = c.extract::<String>() {
        return match s.as_str() {
            "auto" => Ok(Compression::Auto),
            "none" => Ok(Compression::None),
            other => other
                .parse::<i32>()
                .ok()
                .filter(|l| (1..=22).contains(l))
                .map(Compression::Level)
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "compression must be \"auto\", \"none\" or a level 1..22, not {other:?}"
                    ))
                }),
        };
    }
    match c.extract::<i64>() {
        Ok(l) if (1..=22).contains(&l) => Ok(Compression::Level(l as i32)),
        _ => Err(PyValueError::new_err(format!(
            "compression must be \"auto\", \"none\" or a level 1..22, not {}",
            c.repr()?
        ))),
    }
}

/// Serves one snapshot per locale from a manifest; publishes new versions with one atomic
/// swap (`reload`). A snapshot a reader holds stays readable after it stops being served.
#[pyclass(module = "fms", frozen)]
struct Store {
    store: Arc<fms::Store>,
    /// One Python Snapshot per content hash, so the same version is the same object (and
    /// its interned names are shared).
    wrapped: Mutex<std::collections::HashMap<ContentHash, Py<Snapshot>>>,
}

impl Store {
    /// The Python object of `s` (and of its bases), made once per content hash. The lock
    /// is never held while Python runs (an allocation may run finalizers, which may call
    /// back into this store).
    fn wrap(&self, py: Python<'_>, s: Arc<fms::Snapshot>) -> PyResult<Py<Snapshot>> {
        let lock = || self.wrapped.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = lock().get(&s.hash()) {
            return Ok(p.clone_ref(py));
        }
        let base = match s.base() {
            Some(b) => Some(self.wrap(py, b.clone())?),
            None => None,
        };
        let made = Py::new(py, Snapshot::wrap(s.clone(), base))?;
        Ok(lock().entry(s.hash()).or_insert(made).clone_ref(py))
    }
}

#[pymethods]
impl Store {
    /// A store serving what the manifest at `path` lists. Releases the GIL while it opens
    /// the files.
    #[staticmethod]
    fn open_manifest(py: Python<'_>, path: PathBuf) -> PyResult<Store> {
        let store = py
            .detach(move || fms::Store::open_manifest(&path))
            .map_err(err)?;
        Ok(Store {
            store: Arc::new(store),
            wrapped: Mutex::new(Default::default()),
        })
    }

    /// The snapshot `locale` serves (or the default locale's); None if neither has one.
    /// Pin it for a whole request: a reload does not change it.
    fn current(&self, py: Python<'_>, locale: &str) -> PyResult<Option<Py<Snapshot>>> {
        match self.store.current(locale) {
            Some(s) => Ok(Some(self.wrap(py, s)?)),
            None => Ok(None),
        }
    }

    /// The snapshot `locale` serves itself (no fallback to the default locale).
    fn current_exact(&self, py: Python<'_>, locale: &str) -> PyResult<Option<Py<Snapshot>>> {
        match self.store.current_exact(locale) {
            Some(s) => Ok(Some(self.wrap(py, s)?)),
            None => Ok(None),
        }
    }

    /// Serves exactly what the manifest at `path` lists, in one atomic swap; all or
    /// nothing (on error the store serves what it did). Returns locale -> hash. Releases
    /// the GIL.
    fn reload(
        &self,
        py: Python<'_>,
        path: PathBuf,
    ) -> PyResult<std::collections::BTreeMap<String, String>> {
        let store = self.store.clone();
        let published = py.detach(move || store.reload(&path)).map_err(err)?;
        Ok(published.into_iter().map(|(l, h)| (l, hex(h))).collect())
    }

    /// Locale -> hash of the snapshot it serves.
    fn published(&self) -> std::collections::BTreeMap<String, String> {
        self.store
            .published()
            .into_iter()
            .map(|(l, h)| (l, hex(h)))
            .collect()
    }

    /// Drops loaded snapshots nothing serves (readers that hold one keep it); returns how
    /// many.
    fn evict_unpublished(&self) -> usize {
        let n = self.store.evict_unpublished();
        let loaded: std::collections::HashSet<ContentHash> =
            self.store.loaded_hashes().into_iter().collect();
        let mut w = self.wrapped.lock().unwrap_or_else(|p| p.into_inner());
        w.retain(|h, _| loaded.contains(h));
        n
    }

    /// The default locale (the fallback of `current`).
    #[getter]
    fn default_locale(&self) -> String {
        self.store.default_locale().to_owned()
    }

    fn __repr__(&self) -> String {
        format!(
            "<fms.Store default={} locales={}>",
            self.store.default_locale(),
            self.store.published().len()
        )
    }
}

#[pymodule]
fn _fms(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Snapshot>()?;
    m.add_class::<Record>()?;
    m.add_class::<List>()?;
    m.add_class::<Store>()?;
    m.add_class::<Ids>()?;
    m.add_class::<Fields>()?;
    m.add_class::<Elements>()?;
    m.add_function(wrap_pyfunction!(to_python, m)?)?;
    m.add_function(wrap_pyfunction!(build, m)?)?;
    m.add("FmsError", py.get_type::<FmsError>())?;
    m.add("SnapshotError", py.get_type::<SnapshotError>())?;
    m.add("BaseError", py.get_type::<BaseError>())?;
    m.add("LimitError", py.get_type::<LimitError>())?;
    m.add("FORMAT_VERSION", fms::FORMAT_VERSION)?;
    Ok(())
}
