//! Session ids and passwords, generated the way ZooKeeper does so operators recognise them.

/// First session id of a server: top byte = server id, next 40 bits = clock ms, low 16 bits a
/// counter (`SessionTrackerImpl.initializeNextSessionId`).
pub fn first_session_id(server_id: u64, now_ms: i64) -> i64 {
    let time_part = ((now_ms << 24) as u64 >> 8) as i64;
    time_part | ((server_id as i64) << 56)
}

/// The 16-byte password of a session: `new java.util.Random(id ^ 0xB3415C00).nextBytes(16)`.
/// Clients treat it as opaque; it only has to be the same on every member, and it is derived
/// from the id, so no member has to store it.
pub fn password(session_id: i64) -> [u8; 16] {
    let mut random = JavaRandom::new(session_id ^ 0xB341_5C00);
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(4) {
        let mut value = random.next_int();
        for byte in chunk {
            *byte = value as u8;
            value >>= 8;
        }
    }
    bytes
}

/// `java.util.Random`'s 48-bit linear congruential generator.
struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> JavaRandom {
        JavaRandom {
            seed: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next_int(&mut self) -> i32 {
        self.seed = (self.seed.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.seed >> 16) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_random_matches_the_jdk() {
        // new java.util.Random(42).nextInt() == -1170105035 (a well-known JDK value).
        assert_eq!(JavaRandom::new(42).next_int(), -1_170_105_035);
    }

    #[test]
    fn session_id_carries_the_server_id_in_the_top_byte() {
        let id = first_session_id(3, 1_700_000_000_000);
        assert_eq!((id as u64) >> 56, 3);
    }

    #[test]
    fn password_depends_on_the_id_only() {
        assert_eq!(password(77), password(77));
        assert_ne!(password(77), password(78));
    }
}
