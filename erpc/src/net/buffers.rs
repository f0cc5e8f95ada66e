//! A small per-thread pool of byte buffers for the read and write paths.
//!
//! Idle sessions hold no buffer: a reader gives its read buffer back before it waits for the
//! socket, and the writer gives its queue and batch back when it finds nothing more to write.
//! Under load that happens between every burst, so the buffers go to this pool instead of the
//! allocator, and the next burst takes them back without a system allocation. Each thread
//! keeps a few; a shared overflow keeps more, since a buffer often comes back on another
//! thread than the one that took it (a caller queues on one worker, the writer task empties the
//! queue on the other). Beyond that, and buffers too large to keep, go back to the allocator.

use std::cell::RefCell;
use std::sync::Mutex;

use bytes::BytesMut;

/// Buffers kept per thread.
const KEEP: usize = 4;
/// Buffers kept in the shared overflow, and the bytes they may hold together.
const KEEP_SHARED: usize = 64;
const KEEP_SHARED_BYTES: usize = 16 * 1024 * 1024;
/// Buffers smaller than this are not worth keeping; new ones are at least this large.
const MIN: usize = 4 * 1024;
/// Buffers larger than this are freed, not kept. Large enough for the write batches of a
/// thousand callers on one session.
const MAX: usize = 1024 * 1024;

thread_local! {
    static POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// The overflow every thread shares; only ever `try_lock`ed, so nobody waits for it.
static SHARED: Mutex<Vec<BytesMut>> = Mutex::new(Vec::new());

fn take_from(pool: &mut Vec<BytesMut>, room: usize) -> Option<BytesMut> {
    // Half the room will do: read buffers come back with what is left after the frames cut
    // from their front, and readers only grow a buffer with less than half its room free.
    // The most recently given that fits: it is likely still in cache, and it is found at once
    // (a search for the best fit through the shared overflow cost ~1,000 instructions a take).
    let at = pool.iter().rposition(|buf| buf.capacity() >= room.div_ceil(2))?;
    Some(pool.swap_remove(at))
}

/// A buffer with room for at least half of `room` bytes (callers reserve more as they need).
pub(crate) fn take(room: usize) -> BytesMut {
    let local = POOL
        .try_with(|pool| take_from(&mut pool.borrow_mut(), room))
        .ok()
        .flatten();
    local
        .or_else(|| {
            SHARED
                .try_lock()
                .ok()
                .and_then(|mut shared| take_from(&mut shared, room))
        })
        .unwrap_or_else(|| BytesMut::with_capacity(room.max(MIN)))
}

/// Gives `buf` back (emptied); it is kept if a pool has room and its size is worth it.
pub(crate) fn give(mut buf: BytesMut) {
    if !(MIN..=MAX).contains(&buf.capacity()) {
        return;
    }
    buf.clear();
    let overflow = POOL
        .try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < KEEP {
                pool.push(std::mem::take(&mut buf));
                return false;
            }
            true
        })
        .unwrap_or(true);
    if overflow
        && let Ok(mut shared) = SHARED.try_lock()
        && shared.len() < KEEP_SHARED
        && shared.iter().map(BytesMut::capacity).sum::<usize>() + buf.capacity() <= KEEP_SHARED_BYTES
    {
        shared.push(buf);
    }
}

/// Gives `buf` back unless it holds bytes, leaving an empty buffer that owns no memory.
pub(crate) fn give_if_empty(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > 0 {
        give(std::mem::take(buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept_here() -> usize {
        POOL.with(|pool| pool.borrow().len())
    }

    #[test]
    fn buffers_come_back_from_the_pool() {
        let buf = take(10_000);
        assert!(buf.capacity() >= 10_000, "new buffers have the whole room");
        let ptr = buf.as_ptr();
        give(buf);
        assert_eq!(kept_here(), 1);
        let again = take(8_000);
        assert_eq!(again.as_ptr(), ptr, "the pooled buffer is reused");
        assert!(again.is_empty());
        assert_eq!(kept_here(), 0);
        // Too large, or too small, to keep.
        give(BytesMut::with_capacity(MAX * 2));
        give(BytesMut::with_capacity(MIN / 2));
        assert_eq!(kept_here(), 0);
        // Holding bytes: not given back at all.
        let mut full = BytesMut::with_capacity(MIN);
        full.extend_from_slice(b"half a frame");
        give_if_empty(&mut full);
        assert_eq!((kept_here(), &full[..]), (0, &b"half a frame"[..]));
    }
}
