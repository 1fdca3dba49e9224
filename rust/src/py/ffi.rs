//! The bindings' one use of unsafe CPython FFI: a per-tokenizer table of `int` objects for
//! token ids, and lists built from it without a conversion per item.

use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::vocab::Rank;

/// Python `int` objects for token ids, created on first use and then shared by every list this
/// tokenizer returns.
///
/// Building a list of ids is the boundary's main cost: PyO3's `Vec<u32> -> list` creates one
/// `int` per token (CPython caches only -5..=256), about 15-30 ns each. Here a token's `int` is
/// made once, and a list item is a pointer load and a reference count increment. Measured on
/// 4 KB documents (cl100k, one core, warm, `python benches/encode_bench.py`): list output went
/// from 45% to about 75% of array output's speed on en_docs. The table is filled lazily (a
/// compare-and-swap per new id), so a tokenizer that returns few ids pays for few objects, and
/// creating it costs a zeroed allocation of 8 bytes per id.
pub(super) struct IntCache {
    ints: Box<[AtomicPtr<pyo3::ffi::PyObject>]>,
}

impl IntCache {
    pub(super) fn new(n: usize) -> Self {
        IntCache {
            ints: (0..n)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
        }
    }

    /// A new reference to the `int` for `id`.
    #[inline]
    fn get(&self, _py: Python<'_>, id: Rank) -> *mut pyo3::ffi::PyObject {
        use pyo3::ffi;
        let Some(slot) = self.ints.get(id as usize) else {
            // Not an id of this vocabulary (cannot happen for encoder output); no caching.
            return unsafe { ffi::PyLong_FromUnsignedLong(id as _) };
        };
        let p = slot.load(Ordering::Acquire);
        if !p.is_null() {
            unsafe { ffi::Py_INCREF(p) };
            return p;
        }
        // SAFETY: the GIL is held (`_py`); PyLong_FromUnsignedLong returns a new reference or
        // NULL with an exception set (out of memory), which the list builder reports.
        let fresh = unsafe { ffi::PyLong_FromUnsignedLong(id as _) };
        if fresh.is_null() {
            return fresh;
        }
        match slot.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // The table keeps the reference it was given; the caller gets one more.
            Ok(_) => unsafe { ffi::Py_INCREF(fresh) },
            Err(other) => unsafe {
                ffi::Py_DECREF(fresh);
                ffi::Py_INCREF(other);
                return other;
            },
        }
        fresh
    }

    /// A list of the ids, built with one allocation and no per-item conversion.
    pub(super) fn list<'py>(&self, py: Python<'py>, ids: &[Rank]) -> PyResult<Bound<'py, PyList>> {
        use pyo3::ffi;
        // SAFETY: the GIL is held; PyList_New returns a new list of NULLs or NULL with an
        // exception; PyList_SetItem steals the item reference and cannot fail for an index in
        // range of a fresh list. The list owns its items once filled.
        unsafe {
            let list = ffi::PyList_New(ids.len() as ffi::Py_ssize_t);
            if list.is_null() {
                return Err(PyErr::fetch(py));
            }
            let list = Bound::from_owned_ptr(py, list);
            for (i, &id) in ids.iter().enumerate() {
                let item = self.get(py, id);
                if item.is_null() {
                    return Err(PyErr::fetch(py));
                }
                ffi::PyList_SetItem(list.as_ptr(), i as ffi::Py_ssize_t, item);
            }
            Ok(list.cast_into_unchecked())
        }
    }
}

impl Drop for IntCache {
    fn drop(&mut self) {
        if self
            .ints
            .iter()
            .all(|s| s.load(Ordering::Acquire).is_null())
        {
            return;
        }
        // A pyclass is dropped with the GIL held, so attaching is immediate.
        Python::attach(|py| {
            for slot in self.ints.iter() {
                let p = slot.swap(std::ptr::null_mut(), Ordering::AcqRel);
                if !p.is_null() {
                    // SAFETY: `p` is the table's own reference to a live object.
                    drop(unsafe { Py::<PyAny>::from_owned_ptr(py, p) });
                }
            }
        });
    }
}
