//! Client-side input: a reply body decoded as the answer to every opcode, plus the
//! handshake answer and notifications. Every decoder must return, never panic, and a decoded
//! reply must survive a re-encode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rzk_proto::codec::{decode_connect_response, decode_notification, decode_reply, encode_reply};
use rzk_proto::OpCode;

fuzz_target!(|data: &[u8]| {
    let _ = decode_connect_response(data);
    let _ = decode_notification(data);
    for op in OpCode::ALL {
        if let Ok((header, reply)) = decode_reply(*op, data) {
            // An unknown error code decodes as SystemError, so only known codes round-trip.
            if reply.is_ok() || rzk_proto::ErrorCode::from_i32(header.err).is_some() {
                let mut frame = Vec::new();
                encode_reply(header.xid, header.zxid, &reply, &mut frame);
                let again = decode_reply(*op, &frame[4..]).expect("re-encoded reply decodes");
                assert_eq!(again.1, reply);
            }
        }
    }
});
