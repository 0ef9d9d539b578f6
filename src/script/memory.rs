//! How much heap the evaluating thread holds, so a profile that grows its
//! data without bound is stopped with a message instead of exhausting memory.
//!
//! Rhai's size limits are checked on function arguments and results, but not
//! on every path: `m[key] = value` grows a map past `max_map_size` unchecked,
//! and a map of 1 MiB strings reaches gigabytes well within the operation
//! limit. The engine's progress callback (run at every operation) compares
//! this per-thread count against `limits::MEMORY_BYTES`.
//!
//! The count is kept by a thin wrapper around the system allocator: one
//! thread-local addition per allocation, nothing else changes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread (memory freed by
    /// another thread than the one that allocated it skews both, harmlessly).
    static IN_USE: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    // `try_with`: never panic inside the allocator, even during thread exit.
    let _ = IN_USE.try_with(|n| n.set(n.get().wrapping_add(delta)));
}

/// The system allocator, counting per thread.
pub struct Counting;

// SAFETY: every call is forwarded unchanged to `System`; the only addition
// is a thread-local counter that neither allocates nor panics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap bytes the current thread has allocated and not freed.
pub fn in_use() -> isize {
    IN_USE.try_with(Cell::get).unwrap_or(0)
}
