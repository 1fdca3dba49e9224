//! Small helpers every layer may use: UTF-8 widths and a scoped parallel map.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Result, TokforgeError};

/// Width of the UTF-8 sequence that starts with byte `b` (1 for a stray continuation byte).
#[inline]
pub fn utf8_width(b: u8) -> usize {
    match b {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// Maps `f` over `items` on up to `num_threads` scoped threads (work stealing by an atomic
/// index, so one long item does not stall a fixed share of the others). Order is kept, and the
/// first error wins. No thread pool lives beyond the call: nothing to fork-protect.
pub fn parallel_map<T: Sync, U: Send>(
    items: &[T],
    num_threads: usize,
    f: impl Fn(&T) -> Result<U> + Sync,
) -> Result<Vec<U>> {
    let threads = num_threads.max(1).min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<Result<U>>> = (0..items.len()).map(|_| None).collect();
    let results: Vec<Vec<(usize, Result<U>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= items.len() {
                            break;
                        }
                        mine.push((i, f(&items[i])));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (i, r) in results.into_iter().flatten() {
        slots[i] = Some(r);
    }
    slots
        .into_iter()
        .map(|s| {
            s.unwrap_or_else(|| {
                Err(TokforgeError::InvalidArgument(
                    "worker thread panicked".into(),
                ))
            })
        })
        .collect()
}
