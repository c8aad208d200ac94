//! The simulator binary's allocator: mimalloc (as the node's), called the way a sweep's
//! allocations need. A sweep allocates and frees messages, txns and replies by the million;
//! glibc's malloc, free and realloc were about 15% of its instructions.
//!
//! Two departures from the `mimalloc` crate's own `MiMalloc`, both measured (BENCHMARKS.md,
//! "The simulator against its baseline"):
//! - Rust's allocations (alignment 16 at most) go to `mi_malloc`/`mi_realloc`, whose blocks
//!   are always 16-aligned, not to the aligned entry points, which check the alignment and
//!   its padding on every call (3% of a sweep's instructions).
//! - Freed memory is kept rather than given back to the OS after mimalloc's purge delay: each
//!   seed frees its world and the next one faults the pages back in (huge pages cleared by
//!   the kernel), 12,500 page faults per 100 seeds against 200.
//!
//! And no transparent huge pages (Linux): with the kernel's "always", every 2 MiB region the
//! allocator touches became resident whole, a fifth of a sweep's peak memory for no CPU
//! (`sweep --seeds 0..200`: 31 against 38 MiB, user 0.99x).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::{c_int, c_long, c_void};

/// mimalloc's guaranteed alignment of every block (`MI_MAX_ALIGN_SIZE` on 64-bit targets).
const MI_MAX_ALIGN: usize = 16;

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v2, the version sim/Cargo.toml
/// selects: the 16th entry, as in v3; libmimalloc-sys names its neighbours 14 and 16).
const MI_OPTION_PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    fn mi_option_get(option: c_int) -> c_long;
}

pub struct SimAlloc;

impl SimAlloc {
    /// Never purge freed memory, and no huge pages (called first thing in `main`; until then
    /// the defaults hold, which is only slower and larger).
    pub fn configure() {
        // SAFETY: mimalloc's option API, callable at any time from any thread.
        unsafe {
            mi_option_set(MI_OPTION_PURGE_DELAY, -1);
            assert_eq!(mi_option_get(MI_OPTION_PURGE_DELAY), -1);
        }
        // mimalloc's own `allow_thp` option acts only at its start, before `main`: the
        // process-wide switch instead, for every page faulted in from here on. A kernel
        // without it leaves huge pages on, which is only larger.
        #[cfg(target_os = "linux")]
        // SAFETY: prctl with an integer option and integer arguments touches no memory.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

// SAFETY: every block comes from mimalloc and goes back to it; a block from `mi_malloc` is
// aligned to MI_MAX_ALIGN, so it serves any layout whose alignment is at most that, and
// larger alignments take the aligned entry points.
unsafe impl GlobalAlloc for SimAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if layout.align() <= MI_MAX_ALIGN {
                libmimalloc_sys::mi_malloc(layout.size()) as *mut u8
            } else {
                libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if layout.align() <= MI_MAX_ALIGN {
                libmimalloc_sys::mi_zalloc(layout.size()) as *mut u8
            } else {
                libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { libmimalloc_sys::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe {
            if layout.align() <= MI_MAX_ALIGN {
                libmimalloc_sys::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
            } else {
                libmimalloc_sys::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align())
                    as *mut u8
            }
        }
    }
}
