//! Hostile-input tests: decoders return errors, never panic, and never trust a length.
//! Method: proptest feeds random bytes, and random mutations and truncations of valid
//! packets, into every decoder; explicit cases check huge counts fail without allocating.

use proptest::collection::vec;
use proptest::prelude::*;
use rzk_proto::codec::*;
use rzk_proto::frame::{next_frame, JUTE_MAXBUFFER_DEFAULT};
use rzk_proto::*;

/// Run every decoder on `body`; their results are irrelevant, only that they return.
fn decode_everything(body: &[u8]) {
    let _ = decode_connect_request(body);
    let _ = decode_connect_response(body);
    let _ = decode_request(body);
    let _ = decode_request_header(body);
    let _ = decode_reply_header(body);
    let _ = decode_notification(body);
    for op in OpCode::ALL {
        let _ = decode_reply(*op, body);
    }
    let _ = next_frame(body, JUTE_MAXBUFFER_DEFAULT);
    let _ = next_frame(body, u32::MAX);
}

/// A multi request with one of each allowed op, as a valid body to mutate.
fn sample_multi_body() -> Vec<u8> {
    let create = CreateRequest {
        path: "/a".into(),
        data: Some(b"x".to_vec()),
        acl: vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }],
        flags: 0,
    };
    let ops = vec![
        Request::Create(create.clone()),
        Request::Create2(create),
        Request::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        }),
        Request::SetData(SetDataRequest {
            path: "/b".into(),
            data: None,
            version: 3,
        }),
        Request::Check(CheckVersionRequest {
            path: "/c".into(),
            version: 1,
        }),
    ];
    let mut frame = Vec::new();
    encode_request(7, &Request::Multi(ops), &mut frame);
    frame.split_off(4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Goal: arbitrary bytes never panic any decoder.
    #[test]
    fn random_bytes_never_panic(body in vec(any::<u8>(), 0..256)) {
        decode_everything(&body);
    }

    /// Goal: a valid header followed by random bytes reaches every request body decoder.
    #[test]
    fn random_request_bodies_never_panic(
        op in proptest::sample::select(OpCode::ALL),
        tail in vec(any::<u8>(), 0..128),
    ) {
        let mut body = 1i32.to_be_bytes().to_vec();
        body.extend_from_slice(&op.code().to_be_bytes());
        body.extend_from_slice(&tail);
        decode_everything(&body);
    }

    /// Goal: a successful reply header followed by random bytes reaches every reply body decoder.
    #[test]
    fn random_reply_bodies_never_panic(tail in vec(any::<u8>(), 0..128)) {
        let mut body = vec![0u8; 16];
        body.extend_from_slice(&tail);
        decode_everything(&body);
    }

    /// Goal: bit flips and byte overwrites inside a valid multi never panic.
    #[test]
    fn mutated_multi_never_panics(edits in vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut body = sample_multi_body();
        for (index, value) in edits {
            let index = index % body.len();
            body[index] = value;
        }
        decode_everything(&body);
    }
}

/// Goal: every strict prefix of a valid multi is an error (the terminator is missing), never a panic.
#[test]
fn truncated_multi_is_an_error() {
    let body = sample_multi_body();
    assert!(decode_request(&body).is_ok());
    for end in 0..body.len() {
        let result = decode_request(&body[..end]);
        assert!(result.is_err(), "prefix of {end} bytes decoded");
        decode_everything(&body[..end]);
    }
}

/// Goal: a vector count of i32::MAX with almost no bytes behind it fails at once. If the
/// decoder reserved capacity from the count, this test would abort on allocation.
#[test]
fn huge_vector_count_is_rejected_without_allocating() {
    let mut body = vec![0u8; 16]; // ReplyHeader{0, 0, 0}
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    body.extend_from_slice(b"abcd");
    for op in [
        OpCode::GetChildren,
        OpCode::GetEphemerals,
        OpCode::GetAcl,
        OpCode::WhoAmI,
        OpCode::GetChildren2,
    ] {
        let error = decode_reply(op, &body).unwrap_err();
        assert!(
            matches!(error, DecodeError::Truncated { offset: 20, .. }),
            "{op:?}: {error:?}"
        );
    }
}

/// Goal: a buffer length of i32::MAX is an error, not a 2 GiB allocation.
#[test]
fn huge_buffer_length_is_rejected() {
    let mut body = vec![0u8; 16];
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    let error = decode_reply(OpCode::GetData, &body).unwrap_err();
    assert_eq!(
        error,
        DecodeError::Truncated {
            offset: 20,
            needed: i32::MAX as usize
        }
    );
}

/// Goal: negative lengths other than -1 are InvalidLength with the offset of the length.
#[test]
fn negative_lengths_are_invalid() {
    for length in [-2i32, -100, i32::MIN] {
        // getData reply: ReplyHeader + buffer length.
        let mut body = vec![0u8; 16];
        body.extend_from_slice(&length.to_be_bytes());
        assert_eq!(
            decode_reply(OpCode::GetData, &body).unwrap_err(),
            DecodeError::InvalidLength { offset: 16, length }
        );
        // getChildren reply: ReplyHeader + vector count.
        assert_eq!(
            decode_reply(OpCode::GetChildren, &body).unwrap_err(),
            DecodeError::InvalidLength { offset: 16, length }
        );
        // sync request: RequestHeader + ustring length.
        let mut body = 1i32.to_be_bytes().to_vec();
        body.extend_from_slice(&9i32.to_be_bytes());
        body.extend_from_slice(&length.to_be_bytes());
        let (header, error) = decode_request(&body).unwrap_err();
        assert_eq!(header, Some(RequestHeader { xid: 1, op: 9 }));
        assert_eq!(error, DecodeError::InvalidLength { offset: 8, length });
    }
}

/// Goal: invalid UTF-8 in a ustring is reported with the string's offset.
#[test]
fn invalid_utf8_is_an_error() {
    let mut body = 1i32.to_be_bytes().to_vec();
    body.extend_from_slice(&9i32.to_be_bytes()); // sync
    body.extend_from_slice(&2i32.to_be_bytes());
    body.extend_from_slice(&[0xc3, 0x28]);
    let (_, error) = decode_request(&body).unwrap_err();
    assert_eq!(error, DecodeError::InvalidUtf8 { offset: 12 });
}
