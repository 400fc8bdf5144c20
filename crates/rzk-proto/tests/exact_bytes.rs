//! Exact-bytes tests: packets checked against bytes computed by hand from `zookeeper.jute`,
//! so a symmetric mistake in encoder and decoder (which a round trip cannot see) is caught.

use rzk_proto::codec::*;
use rzk_proto::*;

/// Build bytes from big-endian pieces, to keep the hand-computed packets readable.
fn be(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Goal: a ConnectRequest as the Java client sends it (new session, 16 zero password bytes,
/// readOnly=false) decodes and re-encodes to the same bytes.
#[test]
fn connect_request_java_client() {
    let body = be(&[
        &0i32.to_be_bytes(),     // protocolVersion
        &0i64.to_be_bytes(),     // lastZxidSeen
        &30000i32.to_be_bytes(), // timeOut
        &0i64.to_be_bytes(),     // sessionId
        &16i32.to_be_bytes(),    // passwd length
        &[0u8; 16],              // passwd
        &[0u8],                  // readOnly
    ]);
    assert_eq!(body.len(), 45);
    let request = decode_connect_request(&body).unwrap();
    assert_eq!(
        request,
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 30000,
            session_id: 0,
            password: vec![0; 16],
            read_only: Some(false),
        }
    );
    let mut out = Vec::new();
    encode_connect_request(&request, &mut out);
    assert_eq!(&out[..4], &45i32.to_be_bytes());
    assert_eq!(&out[4..], &body[..]);
}
