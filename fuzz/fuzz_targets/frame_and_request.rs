//! Server-side input: a fresh connection's bytes go through framing, then the first frame is
//! a ConnectRequest and the rest are requests. Every decoder must return, never panic, and a
//! decoded request must survive a re-encode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_proto::codec::{decode_connect_request, decode_request, encode_request};
use rzk_proto::frame::{four_letter_word, next_frame, JUTE_MAXBUFFER_DEFAULT};

fuzz_target!(|data: &[u8]| {
    if let Some(first) = data.first_chunk::<4>() {
        let _ = four_letter_word(*first);
    }
    // The whole input as one body, as the decoders see it after framing.
    let _ = decode_connect_request(data);
    check_request(data);

    // The input as a stream of frames: the first is the handshake, the rest are requests.
    let mut rest = data;
    let mut first = true;
    while let Ok(Some((range, consumed))) = next_frame(rest, JUTE_MAXBUFFER_DEFAULT) {
        let Some(body) = rest.get(range) else { break };
        if first {
            let _ = decode_connect_request(body);
            first = false;
        } else {
            check_request(body);
        }
        rest = rest.get(consumed..).unwrap_or_default();
    }
});

/// Decode a request; if it decodes, encoding it again must decode to the same value.
fn check_request(body: &[u8]) {
    if let Ok((header, request)) = decode_request(body) {
        let mut frame = Vec::new();
        encode_request(header.xid, &request, &mut frame);
        let again = decode_request(&frame[4..]).expect("re-encoded request decodes");
        assert_eq!(again.1, request);
    }
}
