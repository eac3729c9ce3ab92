//! Secret material must not outlive its use in memory a reader of the broker could reach (a
//! debugger with CAP_SYS_PTRACE, a swap image, a core dump taken despite the broker's settings).
//! Zeroizing types cover the values sshkeep holds itself, but copies are also made where no
//! type can follow them: a `Vec` that grows while a decrypted key is read into it, a key moved
//! into an `Arc`, an async function's state freed after a login, the stack frames of a signing
//! function. Two mechanisms catch those:
//!
//! - [`WipingAllocator`], the global allocator: every block is wiped before it goes back to the
//!   system allocator, and `realloc` never leaves the old block behind unwiped.
//! - [`scrub_stack`]: overwrites the stack below the caller, where deeper calls (decoding,
//!   signing) left their locals. Code that decrypts or uses a key calls [`secrets_touched`]
//!   when done; every runtime worker then scrubs its stack the next time it goes idle
//!   ([`scrub_if_touched`]), every runtime thread scrubs when it ends, and blocking work that
//!   handles secrets scrubs at its end.
//!
//! What neither reaches is said in threat-model.md: memory owned by C libraries (libdbus for
//! the Secret Service), registers, and the kernel's own buffers.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator with every freed block wiped first.
#[derive(Debug)]
pub struct WipingAllocator;

/// Tells the compiler that the memory at `p` may be read after this point, so the stores that
/// wiped it are not removed as dead (they are followed by a free, which the optimiser knows).
#[inline(always)]
fn keep_stores(p: *const u8) {
    // SAFETY: an empty asm block that takes a pointer in a register and may read memory; it
    // executes no instruction.
    unsafe { std::arch::asm!("/* {0} */", in(reg) p, options(nostack, preserves_flags, readonly)) }
}

// SAFETY: allocation is delegated to `System` unchanged; `dealloc` writes only inside the block
// it is handed (valid for `layout.size()` bytes until it is freed) before freeing it; `realloc`
// is the trait's default (allocate, copy, free the old block through `dealloc`).
unsafe impl GlobalAlloc for WipingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes that this call frees.
        unsafe {
            std::ptr::write_bytes(ptr, 0, layout.size());
            keep_stores(ptr);
            System.dealloc(ptr, layout)
        }
    }
}

/// The stack size of the broker's runtime threads, set explicitly so that [`scrub_stack`] knows
/// how much it may overwrite.
pub const THREAD_STACK_BYTES: usize = 2 * 1024 * 1024;

/// How much stack [`scrub_stack`] overwrites: most of a runtime thread's stack (debug builds of
/// the login path run a quarter of a megabyte deep), leaving room for the frames above it.
const SCRUB_BYTES: usize = THREAD_STACK_BYTES * 3 / 4;

/// Counts the times secret material was decrypted or used, so that idle threads know whether
/// their stacks need scrubbing.
static SECRETS_TOUCHED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The count of [`SECRETS_TOUCHED`] when this thread last scrubbed its stack.
    static SCRUBBED_AT: Cell<u64> = const { Cell::new(0) };
}

/// Records that a key was decrypted or used (call when its holder is done with it): every
/// runtime thread scrubs its stack the next time it goes idle.
pub fn secrets_touched() {
    SECRETS_TOUCHED.fetch_add(1, Ordering::Relaxed);
}

/// Scrubs this thread's stack if secrets were touched since it last did. The runtime calls this
/// whenever a worker thread goes idle; the cost is paid only after key use.
pub fn scrub_if_touched() {
    let now = SECRETS_TOUCHED.load(Ordering::Relaxed);
    if SCRUBBED_AT.with(|s| s.replace(now)) != now {
        scrub_stack();
    }
}

/// Overwrites the stack below the caller's frame with zeros.
#[inline(never)]
pub fn scrub_stack() {
    let area = [0u8; SCRUB_BYTES];
    keep_stores(area.as_ptr());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_block_is_wiped_before_the_system_allocator_gets_it_back() {
        let layout = Layout::from_size_align(4096, 8).expect("layout");
        // SAFETY: the block is allocated, written, wiped by `dealloc`, and then only its
        // first bytes are compared by reading them back through a fresh allocation of the
        // same size (glibc hands the same block back first from its thread cache).
        unsafe {
            let p = WipingAllocator.alloc(layout);
            assert!(!p.is_null());
            std::ptr::write_bytes(p, 0xA5, layout.size());
            WipingAllocator.dealloc(p, layout);
            let q = System.alloc(layout);
            if q == p {
                // Past glibc's 16 bytes of free-list pointers, what was written is gone.
                let tail = std::slice::from_raw_parts(q.add(64), layout.size() - 64);
                assert!(
                    tail.iter().all(|b| *b == 0),
                    "freed block still holds its bytes"
                );
            }
            System.dealloc(q, layout);
        }
    }
}
