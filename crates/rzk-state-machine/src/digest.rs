//! A digest of the tree for comparing states (after a restart, across members): the wrapping sum
//! over every znode of a 64-bit hash of its path, data and Stat as clients see it. A sum does not
//! depend on the order nodes are visited, so it needs no sort (ZooKeeper's `DigestCalculator`
//! sums per-node CRCs the same way), and a client that reads the whole tree can compute the same
//! value with [`znode_digest`].

use rzk_proto::Stat;

use crate::StateMachine;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// splitmix64's finalizer: spreads FNV's weak high bits before the hashes are summed.
fn mix(mut value: u64) -> u64 {
    value ^= value >> 30;
    value = value.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value ^= value >> 27;
    value = value.wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// One znode's share of [`StateMachine::digest`]: path, data (null hashes as empty, as clients
/// read it) and every Stat field.
pub fn znode_digest(path: &str, data: &[u8], stat: &Stat) -> u64 {
    let mut hash = fnv1a(FNV_OFFSET, &(path.len() as u64).to_be_bytes());
    hash = fnv1a(hash, path.as_bytes());
    hash = fnv1a(hash, &(data.len() as u64).to_be_bytes());
    hash = fnv1a(hash, data);
    for value in [
        stat.czxid,
        stat.mzxid,
        stat.ctime,
        stat.mtime,
        stat.ephemeral_owner,
        stat.pzxid,
    ] {
        hash = fnv1a(hash, &value.to_be_bytes());
    }
    for value in [
        stat.version,
        stat.cversion,
        stat.aversion,
        stat.data_length,
        stat.num_children,
    ] {
        hash = fnv1a(hash, &value.to_be_bytes());
    }
    mix(hash)
}

impl StateMachine {
    /// The tree's digest (see the module docs): equal trees give equal digests. Sessions,
    /// watches and the last zxid are not part of it. O(znodes), no allocation.
    pub fn digest(&self) -> u64 {
        let extended = self.options.extended_types_enabled;
        self.nodes.iter().fold(0u64, |sum, (path, node)| {
            let data = node.data().unwrap_or_default();
            sum.wrapping_add(znode_digest(path, data, &node.client_stat(extended)))
        })
    }
}
