//! The origin of a log entry (which connection on which member proposed it) survives the log
//! encoding, and entries logged before the field existed (format 1) still decode, with origin 0.

use rzk_proto::Request;
use rzk_state_machine::{Entry, EntryOp};

fn entry(origin: u64) -> Entry {
    Entry {
        session_id: 0x0100_0000_0000_0001,
        xid: 7,
        origin,
        time_ms: 1_700_000_000_000,
        op: EntryOp::Write {
            auth: Vec::new(),
            request: Request::Delete(rzk_proto::DeleteRequest {
                path: "/a".into(),
                version: -1,
            }),
        },
    }
}

// Goal: member and connection round-trip through the encoding, and they do not overlap.
#[test]
fn origin_round_trips() {
    let largest_connection = (1 << 48) - 1;
    for (member, connection) in [(3, 41), (255, largest_connection)] {
        let entry = entry(Entry::origin_of(member, connection));
        assert_eq!(entry.proposer(), Some((member, connection)));
    }
    assert_eq!(entry(0).proposer(), None);
    for origin in [
        0,
        Entry::origin_of(3, 41),
        Entry::origin_of(255, largest_connection),
    ] {
        let entry = entry(origin);
        assert_eq!(Entry::decode(&entry.encode()), Ok(entry));
    }
}

// Goal: a format-1 entry (no origin: version, session, xid, time, kind...) decodes with origin 0,
// and an unknown format version is refused.
#[test]
fn format_1_entries_decode_with_origin_zero() {
    let current = entry(Entry::origin_of(1, 9)).encode();
    assert_eq!(current[0], 2);
    let mut old = vec![1];
    old.extend_from_slice(&current[1..13]);
    old.extend_from_slice(&current[21..]);
    assert_eq!(Entry::decode(&old), Ok(entry(0)));
    let mut unknown = current.clone();
    unknown[0] = 9;
    assert!(Entry::decode(&unknown).is_err());
}
