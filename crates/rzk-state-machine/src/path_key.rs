//! [`PathKey`]: a znode's full path as the tree's key, behind a thin pointer.
//!
//! The tree's B+tree leaves hold a key and a [`Node`](crate::tree::Node) pointer per znode. A
//! `Box<str>` key is 16 bytes (pointer and length), so a leaf slot was 24 bytes; a `PathKey` is 8
//! bytes (the length lives in the allocation, in front of the bytes), so a slot is 16. With a
//! million znodes that is 8 MiB less in full leaves and 16 MiB in the half-full ones that in-order
//! creates leave. The allocation itself is the same size as a `Box<str>`'s for every path shorter
//! than 128 bytes but the 1-byte length (a 31-byte path takes jemalloc's 32-byte class either
//! way).
//!
//! The crates that offer thin strings (`thin-vec`, `triomphe`'s `ThinArc`, `arcstr`) keep a
//! 16-byte header in the allocation, which costs what the thin pointer saves; hence this small
//! type of our own, and the crate's only unsafe code besides the snapshot encoder's prefetch.
//!
//! # Layout and safety
//! One allocation with alignment 1: the path's length as LEB128 (7 bits a byte, low bits first;
//! 1 byte below 128, at most 10 for any `usize`), then the path's UTF-8 bytes. It is made from a
//! `&str` and never changed, so the bytes are always valid UTF-8 and the length always matches
//! the allocation, which `Drop` frees with the layout it was made with. A `PathKey` owns its
//! allocation alone (`Clone` makes a new one), like a `Box<str>`, hence `Send` and `Sync`.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::ptr::NonNull;

/// Most bytes the LEB128 length of a `usize` takes.
const LENGTH_BYTES_MAX: usize = usize::BITS.div_ceil(7) as usize;

/// A path (any string) in one allocation behind an 8-byte pointer. Derefs, compares, orders and
/// hashes as the `str` it holds, so a map keyed by `PathKey` is looked up with a `&str`.
pub(crate) struct PathKey(NonNull<u8>);

// SAFETY: a PathKey owns its allocation exclusively and never mutates it (as a Box<str>), so it
// may move to and be shared between threads.
unsafe impl Send for PathKey {}
// SAFETY: as above; `&PathKey` gives only `&str`.
unsafe impl Sync for PathKey {}

impl PathKey {
    /// A new key holding a copy of `path`.
    pub fn new(path: &str) -> PathKey {
        let mut length = [0u8; LENGTH_BYTES_MAX];
        let prefix = encode_length(path.len(), &mut length);
        let layout = layout(prefix, path.len());
        // SAFETY: the layout's size is at least 1 (the length takes a byte even for "").
        let start = unsafe { alloc(layout) };
        let Some(start) = NonNull::new(start) else {
            handle_alloc_error(layout)
        };
        // SAFETY: the allocation is `prefix + path.len()` bytes, fresh, so it overlaps neither
        // source; both copies stay inside it.
        unsafe {
            std::ptr::copy_nonoverlapping(length.as_ptr(), start.as_ptr(), prefix);
            std::ptr::copy_nonoverlapping(path.as_ptr(), start.as_ptr().add(prefix), path.len());
        }
        PathKey(start)
    }

    /// The bytes the length takes and the length.
    #[inline]
    fn header(&self) -> (usize, usize) {
        let start = self.0.as_ptr();
        // SAFETY: `new` wrote a complete LEB128 length at the start of the allocation; reading
        // stops at its last byte (the first without the high bit), which is inside it.
        let first = unsafe { *start };
        if first < 0x80 {
            return (1, usize::from(first));
        }
        let mut length = 0usize;
        let mut at = 0usize;
        loop {
            // SAFETY: as above.
            let byte = unsafe { *start.add(at) };
            length |= usize::from(byte & 0x7f) << (7 * at);
            at += 1;
            if byte < 0x80 {
                return (at, length);
            }
        }
    }

    /// The path.
    #[inline]
    pub fn as_str(&self) -> &str {
        let (prefix, length) = self.header();
        // SAFETY: `new` copied `length` bytes of a `str` right after the length; they are valid
        // UTF-8, never changed, and live as long as `self`.
        unsafe {
            let bytes = std::slice::from_raw_parts(self.0.as_ptr().add(prefix), length);
            std::str::from_utf8_unchecked(bytes)
        }
    }
}

/// Write `value` as LEB128 into `out`; returns the bytes written.
fn encode_length(mut value: usize, out: &mut [u8; LENGTH_BYTES_MAX]) -> usize {
    let mut at = 0;
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out[at] = low;
            return at + 1;
        }
        out[at] = low | 0x80;
        at += 1;
    }
}

fn layout(prefix: usize, length: usize) -> Layout {
    // A `str` is at most isize::MAX bytes, so adding at most 10 cannot overflow a usize; a
    // layout this large is refused by the allocator, not here.
    Layout::from_size_align(prefix + length, 1).expect("a path's allocation fits a Layout")
}

impl Drop for PathKey {
    fn drop(&mut self) {
        let (prefix, length) = self.header();
        // SAFETY: allocated in `new` with this same layout (the length is read back unchanged),
        // and freed only here, once.
        unsafe { dealloc(self.0.as_ptr(), layout(prefix, length)) }
    }
}

impl Clone for PathKey {
    fn clone(&self) -> PathKey {
        PathKey::new(self.as_str())
    }
}

impl Deref for PathKey {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for PathKey {
    #[inline]
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for PathKey {
    #[inline]
    fn eq(&self, other: &PathKey) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for PathKey {}

impl PartialOrd for PathKey {
    #[inline]
    fn partial_cmp(&self, other: &PathKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathKey {
    // As `str` orders, which `Borrow<str>` requires.
    #[inline]
    fn cmp(&self, other: &PathKey) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for PathKey {
    // As `str` hashes, which `Borrow<str>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for PathKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for PathKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
        let mut hasher = DefaultHasher::new();
        value.hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn a_key_is_one_pointer() {
        assert_eq!(std::mem::size_of::<PathKey>(), 8);
        assert_eq!(std::mem::size_of::<Option<PathKey>>(), 8);
    }

    #[test]
    fn lengths_at_every_prefix_boundary_round_trip() {
        // 1-, 2- and 3-byte lengths, and the edges between them.
        for length in [0, 1, 31, 127, 128, 129, 16_383, 16_384, 16_385, 1 << 20] {
            let path: String = "/a".repeat(length / 2) + &"b".repeat(length % 2);
            assert_eq!(path.len(), length);
            let key = PathKey::new(&path);
            assert_eq!(key.as_str(), path, "length {length}");
            let copy = key.clone();
            drop(key);
            assert_eq!(&*copy, path, "a clone outlives its original");
        }
    }

    #[test]
    fn the_length_prefix_is_leb128() {
        let mut out = [0u8; LENGTH_BYTES_MAX];
        assert_eq!(encode_length(0, &mut out), 1);
        assert_eq!(out[0], 0);
        assert_eq!(encode_length(127, &mut out), 1);
        assert_eq!(out[0], 0x7f);
        assert_eq!(encode_length(128, &mut out), 2);
        assert_eq!(&out[..2], &[0x80, 0x01]);
        assert_eq!(encode_length(usize::MAX, &mut out), LENGTH_BYTES_MAX);
    }

    #[test]
    fn a_map_keyed_by_paths_is_looked_up_by_str() {
        let mut map = imbl::OrdMap::new();
        for path in ["/b", "/a/c", "/a", "/", "/é/ü"] {
            map.insert(PathKey::new(path), path.len());
        }
        assert_eq!(map.get("/a/c"), Some(&4));
        assert_eq!(map.get("/é/ü"), Some(&"/é/ü".len()));
        assert_eq!(map.get("/missing"), None);
        let order: Vec<&str> = map.keys().map(|key| key.as_str()).collect();
        assert_eq!(order, ["/", "/a", "/a/c", "/b", "/é/ü"]);
        assert_eq!(format!("{:?}", map.keys().next().expect("a key")), "\"/\"");
    }

    proptest! {
        #[test]
        fn a_key_behaves_as_its_str(a in "\\PC{0,200}", b in "\\PC{0,200}") {
            let (key_a, key_b) = (PathKey::new(&a), PathKey::new(&b));
            prop_assert_eq!(key_a.as_str(), a.as_str());
            prop_assert_eq!(key_a.cmp(&key_b), a.as_str().cmp(b.as_str()));
            prop_assert_eq!(key_a == key_b, a == b);
            prop_assert_eq!(hash_of(&key_a), hash_of(a.as_str()));
            prop_assert_eq!(key_a.to_string(), a.clone());
            prop_assert_eq!(key_a.clone(), key_a);
        }
    }
}
