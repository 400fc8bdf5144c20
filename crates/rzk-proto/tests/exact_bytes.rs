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

/// Goal: a 3.3-era ConnectRequest (no readOnly byte) gives `read_only: None`, and a
/// ConnectResponse with `None` is written without the byte (36 bytes with a 16-byte passwd).
#[test]
fn connect_without_read_only() {
    let body = be(&[
        &0i32.to_be_bytes(),
        &5i64.to_be_bytes(),
        &4000i32.to_be_bytes(),
        &7i64.to_be_bytes(),
        &0i32.to_be_bytes(),
    ]);
    let request = decode_connect_request(&body).unwrap();
    assert_eq!(request.read_only, None);
    assert_eq!(request.password, Vec::<u8>::new());
    assert_eq!(
        (
            request.last_zxid_seen,
            request.timeout_ms,
            request.session_id
        ),
        (5, 4000, 7)
    );

    // A null password (-1) decodes as empty.
    let null_password = be(&[&body[..24], &(-1i32).to_be_bytes(), &[1u8]]);
    let request = decode_connect_request(&null_password).unwrap();
    assert_eq!((request.password.len(), request.read_only), (0, Some(true)));

    let response = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 0x1234,
        session_id: 0x0102030405060708,
        password: vec![0xaa; 16],
        read_only: None,
    };
    let mut out = Vec::new();
    encode_connect_response(&response, &mut out);
    let expected = be(&[
        &36i32.to_be_bytes(),
        &[0, 0, 0, 0],
        &[0, 0, 0x12, 0x34],
        &[1, 2, 3, 4, 5, 6, 7, 8],
        &[0, 0, 0, 16],
        &[0xaa; 16],
    ]);
    assert_eq!(out, expected);

    let mut out = Vec::new();
    encode_connect_response(
        &ConnectResponse {
            read_only: Some(true),
            ..response
        },
        &mut out,
    );
    assert_eq!(&out[..4], &37i32.to_be_bytes());
    assert_eq!(out.last(), Some(&1u8));
}

/// Goal: `create /a x` with world:anyone ALL, persistent, as a client writes it.
#[test]
fn create_request_bytes() {
    let request = Request::Create(CreateRequest {
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
    });
    let body = be(&[
        &[0, 0, 0, 1], // xid
        &[0, 0, 0, 1], // type = create
        &[0, 0, 0, 2],
        b"/a", // path
        &[0, 0, 0, 1],
        b"x",           // data
        &[0, 0, 0, 1],  // acl count
        &[0, 0, 0, 31], // perms
        &[0, 0, 0, 5],
        b"world",
        &[0, 0, 0, 6],
        b"anyone",
        &[0, 0, 0, 0], // flags
    ]);
    let mut out = Vec::new();
    encode_request(1, &request, &mut out);
    assert_eq!(&out[..4], &(body.len() as i32).to_be_bytes());
    assert_eq!(&out[4..], &body[..]);
    assert_eq!(
        decode_request(&body).unwrap(),
        (RequestHeader { xid: 1, op: 1 }, request)
    );
}

/// Goal: null data is written as length -1 and read back as `None`, distinct from empty.
#[test]
fn null_and_empty_data_differ() {
    let mut null = Vec::new();
    encode_request(
        2,
        &Request::SetData(SetDataRequest {
            path: "/".into(),
            data: None,
            version: -1,
        }),
        &mut null,
    );
    assert_eq!(
        &null[4..],
        &be(&[
            &[0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 1],
            b"/",
            &[0xff; 4],
            &[0xff; 4]
        ])[..]
    );
    let mut empty = Vec::new();
    encode_request(
        2,
        &Request::SetData(SetDataRequest {
            path: "/".into(),
            data: Some(vec![]),
            version: -1,
        }),
        &mut empty,
    );
    assert_ne!(null, empty);
    match decode_request(&null[4..]).unwrap().1 {
        Request::SetData(record) => assert_eq!(record.data, None),
        other => panic!("{other:?}"),
    }
}

/// Goal: ping and closeSession are header-only; a ping is exactly {-2, 11}.
#[test]
fn header_only_requests() {
    let mut out = Vec::new();
    encode_request(-2, &Request::Ping, &mut out);
    assert_eq!(
        out,
        be(&[&[0, 0, 0, 8], &[0xff, 0xff, 0xff, 0xfe], &[0, 0, 0, 11]])
    );
    let mut out = Vec::new();
    encode_request(9, &Request::CloseSession, &mut out);
    assert_eq!(
        out,
        be(&[&[0, 0, 0, 8], &[0, 0, 0, 9], &(-11i32).to_be_bytes()])
    );
    assert_eq!(decode_request(&out[4..]).unwrap().1, Request::CloseSession);
}

/// Goal: an error reply is the 16-byte header alone, even for ops whose success has a body.
#[test]
fn error_reply_is_header_only() {
    let mut out = Vec::new();
    encode_reply(5, 0x10, &Err(ErrorCode::NoNode), &mut out);
    let expected = be(&[
        &[0, 0, 0, 16],
        &[0, 0, 0, 5],
        &0x10i64.to_be_bytes(),
        &(-101i32).to_be_bytes(),
    ]);
    assert_eq!(out, expected);
    let (header, reply) = decode_reply(OpCode::GetData, &out[4..]).unwrap();
    assert_eq!(
        header,
        ReplyHeader {
            xid: 5,
            zxid: 0x10,
            err: -101
        }
    );
    assert_eq!(reply, Err(ErrorCode::NoNode));
}

/// Goal: an unknown error code in a reply header still decodes (as SystemError) and keeps the raw code.
#[test]
fn unknown_error_code_keeps_raw_value() {
    let body = be(&[&[0, 0, 0, 5], &0i64.to_be_bytes(), &(-999i32).to_be_bytes()]);
    let (header, reply) = decode_reply(OpCode::Create, &body).unwrap();
    assert_eq!(header.err, -999);
    assert_eq!(reply, Err(ErrorCode::SystemError));
}

/// Goal: an empty multi is the header and the terminator {-1, true, -1}.
#[test]
fn empty_multi_is_terminator() {
    let mut out = Vec::new();
    encode_request(3, &Request::Multi(vec![]), &mut out);
    let terminator: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(
        out,
        be(&[&[0, 0, 0, 17], &[0, 0, 0, 3], &[0, 0, 0, 14], terminator])
    );
    assert_eq!(decode_request(&out[4..]).unwrap().1, Request::Multi(vec![]));
}

/// Goal: a multi with one delete op and its reply, byte for byte, including the failed-multi
/// form (outer err 0, op header {-1, false, err} + ErrorResponse{err}).
#[test]
fn multi_bytes() {
    let terminator: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff];
    let request = Request::Multi(vec![Request::Delete(DeleteRequest {
        path: "/x".into(),
        version: 4,
    })]);
    let body = be(&[
        &[0, 0, 0, 8],
        &[0, 0, 0, 14],
        &[0, 0, 0, 2],
        &[0],
        &[0xff, 0xff, 0xff, 0xff], // MultiHeader{delete, false, -1}
        &[0, 0, 0, 2],
        b"/x",
        &[0, 0, 0, 4], // DeleteRequest
        terminator,
    ]);
    let mut out = Vec::new();
    encode_request(8, &request, &mut out);
    assert_eq!(&out[4..], &body[..]);
    assert_eq!(decode_request(&body).unwrap().1, request);

    let reply: Reply = Ok(Response::Multi(vec![
        MultiResult::Delete,
        MultiResult::Error { err: -101 },
    ]));
    let expected = be(&[
        &[0, 0, 0, 8],
        &7i64.to_be_bytes(),
        &[0, 0, 0, 0],
        &[0, 0, 0, 2],
        &[0],
        &[0, 0, 0, 0], // delete, ok
        &[0xff, 0xff, 0xff, 0xff],
        &[0],
        &(-101i32).to_be_bytes(), // error header
        &(-101i32).to_be_bytes(), // ErrorResponse
        terminator,
    ]);
    let mut out = Vec::new();
    encode_reply(8, 7, &reply, &mut out);
    assert_eq!(&out[4..], &expected[..]);
    assert_eq!(decode_reply(OpCode::Multi, &expected).unwrap().1, reply);
}

/// Goal: ops outside a multi's kind are refused with NotAllowedInMulti, and the header is kept.
#[test]
fn multi_rejects_foreign_ops() {
    let mut out = Vec::new();
    encode_request(
        4,
        &Request::Multi(vec![Request::GetData(PathWatchRequest {
            path: "/".into(),
            watch: false,
        })]),
        &mut out,
    );
    let (header, error) = decode_request(&out[4..]).unwrap_err();
    assert_eq!(header, Some(RequestHeader { xid: 4, op: 14 }));
    assert_eq!(
        error,
        DecodeError::NotAllowedInMulti {
            op: 4,
            within: "multi"
        }
    );

    let mut out = Vec::new();
    encode_request(
        4,
        &Request::MultiRead(vec![Request::Delete(DeleteRequest {
            path: "/".into(),
            version: 0,
        })]),
        &mut out,
    );
    let (_, error) = decode_request(&out[4..]).unwrap_err();
    assert_eq!(
        error,
        DecodeError::NotAllowedInMulti {
            op: 2,
            within: "multiRead"
        }
    );
}

/// Goal: an unknown opcode still yields the header (to answer Unimplemented with the right
/// xid); a truncated header yields none.
#[test]
fn unknown_opcode_and_truncated_header() {
    let body = be(&[&[0, 0, 0, 42], &[0, 0, 0, 99], b"whatever"]);
    assert_eq!(
        decode_request(&body).unwrap_err(),
        (
            Some(RequestHeader { xid: 42, op: 99 }),
            DecodeError::UnknownOpcode { op: 99 }
        )
    );
    // createSession is a txn type, never a client request.
    let body = be(&[&[0, 0, 0, 1], &(-10i32).to_be_bytes()]);
    assert_eq!(
        decode_request(&body).unwrap_err().1,
        DecodeError::UnknownOpcode { op: -10 }
    );
    assert_eq!(
        decode_request(&[0, 0, 0, 1, 0, 0]).unwrap_err(),
        (
            None,
            DecodeError::Truncated {
                offset: 4,
                needed: 2
            }
        )
    );
}

/// Goal: trailing bytes after a request record are ignored, as ZooKeeper does.
#[test]
fn trailing_bytes_are_ignored() {
    let mut out = Vec::new();
    let request = Request::Exists(PathWatchRequest {
        path: "/p".into(),
        watch: true,
    });
    encode_request(6, &request, &mut out);
    out.extend_from_slice(b"junk");
    assert_eq!(decode_request(&out[4..]).unwrap().1, request);
}

/// Goal: a notification is ReplyHeader{-1, zxid, 0} + WatcherEvent{type, state, path}.
#[test]
fn notification_bytes() {
    let event = WatcherEvent {
        event_type: EventType::NodeDataChanged.code(),
        state: KeeperState::SyncConnected.code(),
        path: "/n".into(),
    };
    let mut out = Vec::new();
    encode_notification(-1, &event, &mut out);
    let expected = be(&[
        &[0, 0, 0, 30],
        &[0xff, 0xff, 0xff, 0xff],
        &(-1i64).to_be_bytes(),
        &[0, 0, 0, 0],
        &[0, 0, 0, 3],
        &[0, 0, 0, 3],
        &[0, 0, 0, 2],
        b"/n",
    ]);
    assert_eq!(out, expected);
}

/// Goal: exists → Stat, 68 bytes in declaration order; addWatch → ErrorResponse{0}.
#[test]
fn stat_and_add_watch_replies() {
    let stat = Stat {
        czxid: 1,
        mzxid: 2,
        ctime: 3,
        mtime: 4,
        version: 5,
        cversion: 6,
        aversion: 7,
        ephemeral_owner: 8,
        data_length: 9,
        num_children: 10,
        pzxid: 11,
    };
    let mut out = Vec::new();
    encode_reply(1, 0, &Ok(Response::Stat(stat)), &mut out);
    let expected_stat = be(&[
        &1i64.to_be_bytes(),
        &2i64.to_be_bytes(),
        &3i64.to_be_bytes(),
        &4i64.to_be_bytes(),
        &5i32.to_be_bytes(),
        &6i32.to_be_bytes(),
        &7i32.to_be_bytes(),
        &8i64.to_be_bytes(),
        &9i32.to_be_bytes(),
        &10i32.to_be_bytes(),
        &11i64.to_be_bytes(),
    ]);
    assert_eq!(expected_stat.len(), 68);
    assert_eq!(&out[20..], &expected_stat[..]);

    let mut out = Vec::new();
    encode_reply(1, 0, &Ok(Response::ErrorBody { err: 0 }), &mut out);
    assert_eq!(out.len(), 4 + 16 + 4);
    assert_eq!(
        decode_reply(OpCode::AddWatch, &out[4..]).unwrap().1,
        Ok(Response::ErrorBody { err: 0 })
    );
}
