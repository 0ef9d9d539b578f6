//! The process's allocator: the system's, with two additions.
//!
//! - **A count per thread** of the bytes allocated and not freed, so a
//!   profile that grows its data without bound is stopped with a message
//!   instead of exhausting memory. Rhai's size limits are checked on
//!   function arguments and results, but not on every path: `m[key] =
//!   value` grows a map past `max_map_size` unchecked, and a map of 1 MiB
//!   strings reaches gigabytes well within the operation limit. The
//!   engine's progress callback (run at every operation) compares the count
//!   against `script::limits::MEMORY_BYTES`.
//! - **A kept region** (`kept`): what a closure allocates is placed, packed
//!   one after another, in a region of its own that is never reused. The
//!   launcher copies what it holds while the program runs (the resolved
//!   plan) there once the setup is done. In the system heap those objects
//!   lay scattered among the evaluation's freed memory, one or two to a
//!   page, and kept every such page resident in both the launcher and the
//!   supervisor, written by each (a page with a free chunk is written when
//!   malloc uses or trims it), so a page apiece; packed in the region, they
//!   fill a few pages that neither process writes, shared between the two
//!   after the fork, and the heap's pages can all be given back
//!   (`sys::shed_idle_memory`). README "Performance" has the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    /// Bytes allocated minus bytes freed by this thread (memory freed by
    /// another thread than the one that allocated it skews both, harmlessly).
    static IN_USE: Cell<isize> = const { Cell::new(0) };
    /// Whether this thread's allocations go to the kept region (`kept`).
    static KEEPING: Cell<bool> = const { Cell::new(false) };
}

fn add(delta: isize) {
    // `try_with`: never panic inside the allocator, even during thread exit.
    let _ = IN_USE.try_with(|n| n.set(n.get().wrapping_add(delta)));
}

fn keeping() -> bool {
    KEEPING.try_with(Cell::get).unwrap_or(false)
}

/// The kept region's size: address space reserved, pages used as written.
/// The launcher keeps a few tens of KiB; past the end, allocations go to
/// the system heap as any other.
const REGION: usize = 4 << 20;
/// The region's start (0: not mapped yet) and the next free byte in it.
static REGION_START: AtomicUsize = AtomicUsize::new(0);
static REGION_NEXT: AtomicUsize = AtomicUsize::new(0);

/// Whether `ptr` lies in the kept region.
fn in_region(ptr: *mut u8) -> bool {
    let start = REGION_START.load(Ordering::Acquire);
    start != 0 && (start..start + REGION).contains(&(ptr as usize))
}

/// `layout` bump-allocated in the kept region (mapped on first use), or
/// null when it is full or cannot be mapped. Fresh anonymous memory that
/// is never reused: zeroed.
fn region_alloc(layout: Layout) -> *mut u8 {
    let mut start = REGION_START.load(Ordering::Acquire);
    if start == 0 {
        let Some(p) = crate::sys::map_reserved(REGION) else {
            return std::ptr::null_mut();
        };
        match REGION_START.compare_exchange(0, p, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                REGION_NEXT.store(p, Ordering::Release);
                start = p;
            }
            Err(other) => {
                // Another thread mapped it first: ours goes.
                // SAFETY: our own new mapping, which nothing refers to.
                unsafe { crate::sys::unmap_unused(p, REGION) };
                start = other;
            }
        }
    }
    let end = start + REGION;
    let mut next = REGION_NEXT.load(Ordering::Acquire);
    loop {
        if next < start {
            // The other thread has not stored the first `next` yet.
            std::hint::spin_loop();
            next = REGION_NEXT.load(Ordering::Acquire);
            continue;
        }
        let at = next.next_multiple_of(layout.align());
        let Some(after) = at.checked_add(layout.size()).filter(|&a| a <= end) else {
            return std::ptr::null_mut();
        };
        match REGION_NEXT.compare_exchange_weak(next, after, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return at as *mut u8,
            Err(now) => next = now,
        }
    }
}

/// Runs `f` with this thread's allocations placed in the kept region: for
/// data that lives until the process ends, packed together (the module's
/// comment says why). Freeing such data later is allowed and frees nothing;
/// growing it moves it to the system heap. What does not fit goes to the
/// system heap.
pub fn kept<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = KEEPING.try_with(|k| k.set(self.0));
        }
    }
    let _restore = Restore(KEEPING.with(|k| k.replace(true)));
    f()
}

/// The system allocator, counting per thread and placing what `kept` asks
/// for in the kept region.
pub struct Counting;

// SAFETY: every call is forwarded to `System` except for the kept region's
// blocks: allocated there only inside `kept` (bump allocation of a
// mapping that is never unmapped nor reused, so a block stays valid and
// its own until the process ends), never passed to `System` (freeing one
// is a no-op, growing one copies it out). The additions neither allocate
// nor panic.
unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: GlobalAlloc's caller gives a non-zero-sized layout.
        unsafe { allocate(layout, false) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe { allocate(layout, true) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !in_region(ptr) {
            System.dealloc(ptr, layout);
        }
        add(-(layout.size() as isize));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if in_region(ptr) || keeping() {
            // SAFETY: realloc's own contract, passed on.
            return unsafe { move_block(ptr, layout, new_size) };
        }
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// `alloc` and `alloc_zeroed`. `system` and `counted` are inlined into
/// it: a call of their own, out of the functions `link/order.txt` lays out
/// together, made each allocation fault in another 128 KiB of code once
/// the waits had dropped it.
///
/// # Safety
/// `layout` is not zero-sized (for this and `system`, `keep`).
#[inline(always)]
unsafe fn allocate(layout: Layout, zeroed: bool) -> *mut u8 {
    // SAFETY: the contract above, passed on.
    unsafe {
        if keeping() {
            return keep(layout, zeroed);
        }
        counted(system(layout, zeroed), layout)
    }
}

#[inline(always)]
unsafe fn system(layout: Layout, zeroed: bool) -> *mut u8 {
    // SAFETY: a non-zero-sized layout (the contract of `allocate`).
    unsafe {
        if zeroed {
            System.alloc_zeroed(layout)
        } else {
            System.alloc(layout)
        }
    }
}

#[inline(always)]
fn counted(p: *mut u8, layout: Layout) -> *mut u8 {
    if !p.is_null() {
        add(layout.size() as isize);
    }
    p
}

/// `allocate` inside `kept`: in the region, or the system heap if it is
/// full. Out of line, so that the allocator's common path stays short (a
/// launch allocates some ten thousand times).
#[cold]
#[inline(never)]
unsafe fn keep(layout: Layout, zeroed: bool) -> *mut u8 {
    // Never-reused anonymous memory is zero already.
    let p = region_alloc(layout);
    // SAFETY: a non-zero-sized layout (the contract of `allocate`).
    counted(
        if p.is_null() {
            unsafe { system(layout, zeroed) }
        } else {
            p
        },
        layout,
    )
}

/// `realloc` of a kept block, or of any block inside `kept`: a new block
/// (where `alloc` places it), the bytes copied, the old one freed.
///
/// # Safety
/// GlobalAlloc::realloc's contract: `ptr` is a live block of `layout`, and
/// `new_size` is not zero and valid with its alignment.
#[cold]
#[inline(never)]
unsafe fn move_block(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    // SAFETY: the contract above makes `new_size` with the old alignment
    // a valid layout.
    let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
    // SAFETY: a valid non-zero layout, as above.
    let p = unsafe { Counting.alloc(new) };
    if !p.is_null() {
        // SAFETY: `ptr` is a live block of `layout` (the contract), `p` a
        // fresh one of `new_size`: both valid for the smaller size, and
        // distinct.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
            Counting.dealloc(ptr, layout);
        }
    }
    p
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap bytes the current thread has allocated and not freed.
pub fn in_use() -> isize {
    IN_USE.try_with(Cell::get).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_data_is_packed_in_the_region_and_outlives_frees_and_growth() {
        let (a, b) = kept(|| (String::from("first"), vec![7u64; 3]));
        assert!(in_region(a.as_ptr().cast_mut()) && in_region(b.as_ptr().cast::<u8>().cast_mut()));
        let gap = b.as_ptr() as usize - a.as_ptr() as usize;
        assert!(gap <= 16, "packed one after another: {gap} bytes apart");
        // Outside `kept`, new data goes to the system heap; a kept block
        // grown moves there with its bytes.
        let mut grown = b.clone();
        assert!(!in_region(grown.as_ptr().cast::<u8>().cast_mut()));
        let mut moved = a;
        moved.push_str(&"x".repeat(100));
        assert!(!in_region(moved.as_ptr().cast_mut()));
        assert!(moved.starts_with("firstxx"));
        grown.push(8);
        assert_eq!(grown, [7, 7, 7, 8]);
        drop(b); // frees nothing, and is no error
        let zeroed = kept(|| vec![0u8; 4096]);
        assert!(zeroed.iter().all(|&x| x == 0));
    }
}
