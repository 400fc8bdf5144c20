//! What one benchmark request is: the operation kinds, znode names and the request records.
//! Pure functions only, so the load loop in `load.rs` holds the I/O and this file the choices.

use rzk_client::{Acl, CreateMode, Id, Request};
use rzk_proto::codes::perms;
use rzk_proto::{CreateRequest, DeleteRequest, PathWatchRequest, SetDataRequest};

/// The operation a benchmark run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    /// create a new persistent znode per request (a write that grows the tree).
    Create,
    /// setData on a random existing key (a write of the same size each time).
    Set,
    /// getData on a random existing key, no watch.
    Get,
    /// exists on a random existing key, no watch.
    Exists,
    /// getData with probability --read-percent, setData otherwise.
    Mixed,
    /// Watch-notification latency: arm a data watch on one session, setData from another
    /// session, and time from sending the setData to receiving the NodeDataChanged event.
    Watch,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Set => "set",
            Op::Get => "get",
            Op::Exists => "exists",
            Op::Mixed => "mixed",
            Op::Watch => "watch",
        }
    }
}

/// xorshift64*: a small deterministic generator, one per request slot, so key choices need
/// no shared state and no dependency. Seeded from the slot's position; never zero.
pub struct Rng(u64);

impl Rng {
    pub fn new(client: u32, slot: u32) -> Rng {
        let seed = (u64::from(client) << 32 | u64::from(slot)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `0..bound` for choosing keys (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "Rng::below needs a positive bound");
        self.next_u64() % bound
    }
}

/// `world:anyone` with all permissions (`ZooDefs.Ids.OPEN_ACL_UNSAFE`), what benchmarks use.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".to_owned(),
            id: "anyone".to_owned(),
        },
    }]
}

/// The value every benchmark write stores: `value_size` bytes of a fixed pattern.
pub fn value(value_size: u32) -> Vec<u8> {
    (0..value_size)
        .map(|index| b'a' + (index % 26) as u8)
        .collect()
}

/// The znode of key `index` in the key space.
pub fn key_path(prefix: &str, index: u64) -> String {
    format!("{prefix}/k{index:010}")
}

/// The znode a populate run creates as its `index`-th.
pub fn populate_path(prefix: &str, index: u64) -> String {
    format!("{prefix}/p{index:010}")
}

/// The znode a create run makes as request `sequence` of one slot. Slots never share names.
pub fn create_path(prefix: &str, client: u32, slot: u32, sequence: u64) -> String {
    format!("{prefix}/c{client}-{slot}-{sequence}")
}

/// The znode one watch slot arms and writes.
pub fn watch_path(prefix: &str, client: u32, slot: u32) -> String {
    format!("{prefix}/w{client}-{slot}")
}

pub fn create_request(path: String, data: &[u8]) -> Request {
    Request::Create(CreateRequest {
        path,
        data: Some(data.to_vec()),
        acl: open_acl(),
        flags: CreateMode::Persistent.code(),
    })
}

pub fn delete_request(path: String) -> Request {
    Request::Delete(DeleteRequest { path, version: -1 })
}

pub fn set_request(path: String, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest {
        path,
        data: Some(data.to_vec()),
        version: -1,
    })
}

pub fn get_request(path: String, watch: bool) -> Request {
    Request::GetData(PathWatchRequest { path, watch })
}

pub fn exists_request(path: String) -> Request {
    Request::Exists(PathWatchRequest { path, watch: false })
}

/// The next request of a slot for the key-space operations (not create, not watch).
pub fn key_space_request(
    op: Op,
    rng: &mut Rng,
    prefix: &str,
    keys: u64,
    read_percent: u8,
    data: &[u8],
) -> Request {
    let path = key_path(prefix, rng.below(keys));
    match op {
        Op::Get => get_request(path, false),
        Op::Exists => exists_request(path),
        Op::Set => set_request(path, data),
        Op::Mixed if rng.below(100) < u64::from(read_percent) => get_request(path, false),
        Op::Mixed => set_request(path, data),
        Op::Create | Op::Watch => unreachable!("{} does not use the key space", op.name()),
    }
}

/// How many creates or deletes go into one multi: as many as fit in `BATCH_BYTES_MAX`
/// (well under ZooKeeper's default 1 MiB `jute.maxbuffer`), at most `BATCH_OPS_MAX`.
pub fn batch_ops(value_size: u32) -> u64 {
    /// Bytes of one multi request we aim for; the server rejects frames over jute.maxbuffer.
    const BATCH_BYTES_MAX: u64 = 256 * 1024;
    /// Ops per multi: enough to amortise one fsync, small enough to keep latency sane.
    const BATCH_OPS_MAX: u64 = 1000;
    /// Path, ACL and record framing of one create, rounded up.
    const CREATE_OVERHEAD_BYTES: u64 = 96;
    (BATCH_BYTES_MAX / (u64::from(value_size) + CREATE_OVERHEAD_BYTES)).clamp(1, BATCH_OPS_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: key choices stay inside the key space and differ between slots.
    #[test]
    fn rng_stays_in_bounds_and_slots_differ() {
        let mut first = Rng::new(0, 0);
        let mut second = Rng::new(0, 1);
        let a: Vec<u64> = (0..100).map(|_| first.below(10)).collect();
        let b: Vec<u64> = (0..100).map(|_| second.below(10)).collect();
        assert!(a.iter().all(|&key| key < 10));
        assert_ne!(a, b);
    }

    /// Goal: mixed honours the read share at its ends (0% and 100% reads).
    #[test]
    fn mixed_read_percent_extremes() {
        let mut rng = Rng::new(1, 1);
        for _ in 0..50 {
            let read = key_space_request(Op::Mixed, &mut rng, "/b", 5, 100, b"x");
            assert!(matches!(read, Request::GetData(_)));
            let write = key_space_request(Op::Mixed, &mut rng, "/b", 5, 0, b"x");
            assert!(matches!(write, Request::SetData(_)));
        }
    }

    /// Goal: batches stay within jute.maxbuffer even for the largest values.
    #[test]
    fn batch_fits_in_a_frame() {
        assert_eq!(batch_ops(100), 1000);
        assert!(batch_ops(1024 * 1024) >= 1);
        assert!(batch_ops(1000) * (1000 + 96) <= 256 * 1024);
    }
}
