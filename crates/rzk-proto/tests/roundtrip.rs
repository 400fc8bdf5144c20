//! Round-trip property tests: every record, every `Request` variant, every `Response` and
//! `MultiResult`, the handshake and notifications survive encode → decode unchanged (and a
//! reply's size estimate is never below its encoded size).
//! Method: proptest generates values, the encoder writes a frame, the test checks the length
//! prefix against the body and decodes the body.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::Union;
use rzk_proto::codec::*;
use rzk_proto::jute::{Decode, Encode, Reader, Writer};
use rzk_proto::*;

// ---------- strategies ----------

fn text() -> impl Strategy<Value = String> {
    // Any chars, multi-byte ones included, so byte and char lengths differ.
    ".{0,10}"
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..24)
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..4)
}

fn id() -> impl Strategy<Value = Id> {
    (text(), text()).prop_map(|(scheme, id)| Id { scheme, id })
}

fn acl() -> impl Strategy<Value = Acl> {
    (any::<i32>(), id()).prop_map(|(perms, id)| Acl { perms, id })
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(acl(), 0..4)
}

prop_compose! {
    fn stat()(
        zxids in any::<(i64, i64, i64)>(),
        times in any::<(i64, i64)>(),
        versions in any::<(i32, i32, i32)>(),
        ephemeral_owner in any::<i64>(),
        sizes in any::<(i32, i32)>(),
    ) -> Stat {
        Stat {
            czxid: zxids.0,
            mzxid: zxids.1,
            ctime: times.0,
            mtime: times.1,
            version: versions.0,
            cversion: versions.1,
            aversion: versions.2,
            ephemeral_owner,
            data_length: sizes.0,
            num_children: sizes.1,
            pzxid: zxids.2,
        }
    }
}

fn connect_request() -> impl Strategy<Value = ConnectRequest> {
    (
        any::<(i32, i64, i32, i64)>(),
        bytes(),
        option::of(any::<bool>()),
    )
        .prop_map(
            |((protocol_version, last_zxid_seen, timeout_ms, session_id), password, read_only)| {
                ConnectRequest {
                    protocol_version,
                    last_zxid_seen,
                    timeout_ms,
                    session_id,
                    password,
                    read_only,
                }
            },
        )
}

fn connect_response() -> impl Strategy<Value = ConnectResponse> {
    (any::<(i32, i32, i64)>(), bytes(), option::of(any::<bool>())).prop_map(
        |((protocol_version, timeout_ms, session_id), password, read_only)| ConnectResponse {
            protocol_version,
            timeout_ms,
            session_id,
            password,
            read_only,
        },
    )
}

fn watcher_event() -> impl Strategy<Value = WatcherEvent> {
    (any::<i32>(), any::<i32>(), text()).prop_map(|(event_type, state, path)| WatcherEvent {
        event_type,
        state,
        path,
    })
}

fn create_request() -> impl Strategy<Value = CreateRequest> {
    (text(), option::of(bytes()), acls(), any::<i32>()).prop_map(|(path, data, acl, flags)| {
        CreateRequest {
            path,
            data,
            acl,
            flags,
        }
    })
}

fn create_ttl_request() -> impl Strategy<Value = CreateTtlRequest> {
    (
        text(),
        option::of(bytes()),
        acls(),
        any::<i32>(),
        any::<i64>(),
    )
        .prop_map(|(path, data, acl, flags, ttl)| CreateTtlRequest {
            path,
            data,
            acl,
            flags,
            ttl,
        })
}

fn delete_request() -> impl Strategy<Value = DeleteRequest> {
    (text(), any::<i32>()).prop_map(|(path, version)| DeleteRequest { path, version })
}

fn path_watch() -> impl Strategy<Value = PathWatchRequest> {
    (text(), any::<bool>()).prop_map(|(path, watch)| PathWatchRequest { path, watch })
}

fn path() -> impl Strategy<Value = PathRequest> {
    text().prop_map(|path| PathRequest { path })
}

fn set_data_request() -> impl Strategy<Value = SetDataRequest> {
    (text(), option::of(bytes()), any::<i32>()).prop_map(|(path, data, version)| SetDataRequest {
        path,
        data,
        version,
    })
}

fn set_acl_request() -> impl Strategy<Value = SetAclRequest> {
    (text(), acls(), any::<i32>()).prop_map(|(path, acl, version)| SetAclRequest {
        path,
        acl,
        version,
    })
}

fn check_request() -> impl Strategy<Value = CheckVersionRequest> {
    (text(), any::<i32>()).prop_map(|(path, version)| CheckVersionRequest { path, version })
}

fn reconfig_request() -> impl Strategy<Value = ReconfigRequest> {
    (
        option::of(text()),
        option::of(text()),
        option::of(text()),
        any::<i64>(),
    )
        .prop_map(
            |(joining_servers, leaving_servers, new_members, cur_config_id)| ReconfigRequest {
                joining_servers,
                leaving_servers,
                new_members,
                cur_config_id,
            },
        )
}

fn remove_watches_request() -> impl Strategy<Value = RemoveWatchesRequest> {
    (text(), any::<i32>())
        .prop_map(|(path, watcher_type)| RemoveWatchesRequest { path, watcher_type })
}

fn add_watch_request() -> impl Strategy<Value = AddWatchRequest> {
    (text(), any::<i32>()).prop_map(|(path, mode)| AddWatchRequest { path, mode })
}

fn auth_packet() -> impl Strategy<Value = AuthPacket> {
    (any::<i32>(), text(), bytes()).prop_map(|(auth_type, scheme, auth)| AuthPacket {
        auth_type,
        scheme,
        auth,
    })
}

/// `persistent` false: the two persistent lists stay empty, as setWatches (101) cannot carry them.
fn set_watches(persistent: bool) -> impl Strategy<Value = SetWatches> {
    let lists = if persistent { 0..4usize } else { 0..1usize };
    (
        any::<i64>(),
        strings(),
        strings(),
        strings(),
        vec(text(), lists.clone()),
        vec(text(), lists),
    )
        .prop_map(
            |(
                relative_zxid,
                data_watches,
                exist_watches,
                child_watches,
                persistent_watches,
                persistent_recursive_watches,
            )| {
                SetWatches {
                    relative_zxid,
                    data_watches,
                    exist_watches,
                    child_watches,
                    persistent_watches,
                    persistent_recursive_watches,
                }
            },
        )
}

fn client_info() -> impl Strategy<Value = ClientInfo> {
    (text(), text()).prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
}

/// Ops a multi (14) may carry.
fn multi_write_op() -> impl Strategy<Value = Request> {
    Union::new(vec![
        create_request().prop_map(Request::Create).boxed(),
        create_request().prop_map(Request::Create2).boxed(),
        create_request().prop_map(Request::CreateContainer).boxed(),
        create_ttl_request().prop_map(Request::CreateTtl).boxed(),
        delete_request().prop_map(Request::Delete).boxed(),
        set_data_request().prop_map(Request::SetData).boxed(),
        check_request().prop_map(Request::Check).boxed(),
    ])
}

/// Ops a multiRead (22) may carry.
fn multi_read_op() -> impl Strategy<Value = Request> {
    prop_oneof![
        path_watch().prop_map(Request::GetChildren),
        path_watch().prop_map(Request::GetData)
    ]
}

/// Every `Request` variant.
fn request() -> impl Strategy<Value = Request> {
    Union::new(vec![
        multi_write_op().boxed(),
        path_watch().prop_map(Request::Exists).boxed(),
        path_watch().prop_map(Request::GetData).boxed(),
        path().prop_map(Request::GetAcl).boxed(),
        set_acl_request().prop_map(Request::SetAcl).boxed(),
        path_watch().prop_map(Request::GetChildren).boxed(),
        path().prop_map(Request::Sync).boxed(),
        Just(Request::Ping).boxed(),
        path_watch().prop_map(Request::GetChildren2).boxed(),
        vec(multi_write_op(), 0..5).prop_map(Request::Multi).boxed(),
        reconfig_request().prop_map(Request::Reconfig).boxed(),
        remove_watches_request()
            .prop_map(Request::CheckWatches)
            .boxed(),
        remove_watches_request()
            .prop_map(Request::RemoveWatches)
            .boxed(),
        path().prop_map(Request::DeleteContainer).boxed(),
        vec(multi_read_op(), 0..5)
            .prop_map(Request::MultiRead)
            .boxed(),
        auth_packet().prop_map(Request::Auth).boxed(),
        set_watches(false).prop_map(Request::SetWatches).boxed(),
        bytes().prop_map(Request::Sasl).boxed(),
        path().prop_map(Request::GetEphemerals).boxed(),
        path().prop_map(Request::GetAllChildrenNumber).boxed(),
        set_watches(true).prop_map(Request::SetWatches2).boxed(),
        add_watch_request().prop_map(Request::AddWatch).boxed(),
        Just(Request::WhoAmI).boxed(),
        Just(Request::CloseSession).boxed(),
    ])
}

fn multi_result() -> impl Strategy<Value = MultiResult> {
    Union::new(vec![
        text().prop_map(|path| MultiResult::Create { path }).boxed(),
        (text(), stat())
            .prop_map(|(path, stat)| MultiResult::Create2 { path, stat })
            .boxed(),
        Just(MultiResult::Delete).boxed(),
        stat()
            .prop_map(|stat| MultiResult::SetData { stat })
            .boxed(),
        Just(MultiResult::Check).boxed(),
        strings()
            .prop_map(|children| MultiResult::GetChildren { children })
            .boxed(),
        (option::of(bytes()), stat())
            .prop_map(|(data, stat)| MultiResult::GetData { data, stat })
            .boxed(),
        any::<i32>()
            .prop_map(|err| MultiResult::Error { err })
            .boxed(),
    ])
}

/// A successful response together with every opcode whose reply carries that body.
fn response_with_ops() -> impl Strategy<Value = (Response, Vec<OpCode>)> {
    use OpCode::*;
    Union::new(vec![
        Just((
            Response::Empty,
            vec![
                Delete,
                Ping,
                CheckWatches,
                RemoveWatches,
                DeleteContainer,
                Auth,
                SetWatches,
                Sasl,
                SetWatches2,
                CloseSession,
            ],
        ))
        .boxed(),
        text()
            .prop_map(|path| (Response::Create { path }, vec![Create]))
            .boxed(),
        (text(), stat())
            .prop_map(|(path, stat)| {
                (
                    Response::Create2 { path, stat },
                    vec![Create2, CreateContainer, CreateTtl],
                )
            })
            .boxed(),
        stat()
            .prop_map(|stat| (Response::Stat(stat), vec![Exists, SetData, SetAcl, Check]))
            .boxed(),
        (option::of(bytes()), stat())
            .prop_map(|(data, stat)| (Response::GetData { data, stat }, vec![GetData, Reconfig]))
            .boxed(),
        (acls(), stat())
            .prop_map(|(acl, stat)| (Response::GetAcl { acl, stat }, vec![GetAcl]))
            .boxed(),
        strings()
            .prop_map(|children| (Response::GetChildren { children }, vec![GetChildren]))
            .boxed(),
        (strings(), stat())
            .prop_map(|(children, stat)| {
                (
                    Response::GetChildren2 { children, stat },
                    vec![GetChildren2],
                )
            })
            .boxed(),
        text()
            .prop_map(|path| (Response::Sync { path }, vec![Sync]))
            .boxed(),
        vec(multi_result(), 0..6)
            .prop_map(|results| (Response::Multi(results), vec![Multi, MultiRead]))
            .boxed(),
        strings()
            .prop_map(|ephemerals| (Response::GetEphemerals { ephemerals }, vec![GetEphemerals]))
            .boxed(),
        any::<i32>()
            .prop_map(|total| {
                (
                    Response::AllChildrenNumber { total },
                    vec![GetAllChildrenNumber],
                )
            })
            .boxed(),
        any::<i32>()
            .prop_map(|err| (Response::ErrorBody { err }, vec![AddWatch]))
            .boxed(),
        vec(client_info(), 0..4)
            .prop_map(|clients| (Response::WhoAmI { clients }, vec![WhoAmI]))
            .boxed(),
    ])
}

// ---------- helpers ----------

/// Split a frame into its body after checking the prefix matches the body's length.
fn frame_body(frame: &[u8]) -> &[u8] {
    let (prefix, body) = frame.split_at(4);
    let length = i32::from_be_bytes(prefix.try_into().unwrap());
    assert_eq!(
        length as usize,
        body.len(),
        "length prefix disagrees with the body"
    );
    body
}

/// Encode a record, decode it back, and check nothing is left over.
fn record_roundtrip<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: &T) {
    let mut out = Vec::new();
    value.encode(&mut Writer::new(&mut out));
    let mut reader = Reader::new(&out);
    let decoded = T::decode(&mut reader).unwrap();
    assert_eq!(&decoded, value);
    reader.finish().unwrap();
}

// ---------- properties ----------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Every jute record on its own.
    #[test]
    fn records_roundtrip(
        id in id(),
        acl in acl(),
        stat in stat(),
        event in watcher_event(),
        create in create_request(),
        create_ttl in create_ttl_request(),
        delete in delete_request(),
        path_watch in path_watch(),
        path in path(),
        set_data in set_data_request(),
        set_acl in set_acl_request(),
        check in check_request(),
        reconfig in reconfig_request(),
        remove_watches in remove_watches_request(),
        add_watch in add_watch_request(),
        auth in auth_packet(),
        client in client_info(),
        headers in any::<(i32, i32, i64, i32, bool)>(),
    ) {
        record_roundtrip(&id);
        record_roundtrip(&acl);
        record_roundtrip(&stat);
        record_roundtrip(&event);
        record_roundtrip(&create);
        record_roundtrip(&create_ttl);
        record_roundtrip(&delete);
        record_roundtrip(&path_watch);
        record_roundtrip(&path);
        record_roundtrip(&set_data);
        record_roundtrip(&set_acl);
        record_roundtrip(&check);
        record_roundtrip(&reconfig);
        record_roundtrip(&remove_watches);
        record_roundtrip(&add_watch);
        record_roundtrip(&auth);
        record_roundtrip(&client);
        let (xid, op, zxid, err, done) = headers;
        record_roundtrip(&RequestHeader { xid, op });
        record_roundtrip(&ReplyHeader { xid, zxid, err });
        record_roundtrip(&MultiHeader { op, done, err });
    }

    /// setWatches and setWatches2 records, each in its own wire form.
    #[test]
    fn set_watches_roundtrip(v1 in set_watches(false), v2 in set_watches(true)) {
        let mut out = Vec::new();
        v1.encode_v1(&mut Writer::new(&mut out));
        let mut reader = Reader::new(&out);
        prop_assert_eq!(SetWatches::decode_v1(&mut reader).unwrap(), v1);
        reader.finish().unwrap();

        let mut out = Vec::new();
        v2.encode_v2(&mut Writer::new(&mut out));
        let mut reader = Reader::new(&out);
        prop_assert_eq!(SetWatches::decode_v2(&mut reader).unwrap(), v2);
        reader.finish().unwrap();
    }

    /// Every request variant: encode_request → strip prefix → decode_request.
    #[test]
    fn request_roundtrip(xid in any::<i32>(), request in request()) {
        let mut frame = Vec::new();
        encode_request(xid, &request, &mut frame);
        let (header, decoded) = decode_request(frame_body(&frame)).unwrap();
        prop_assert_eq!(header, RequestHeader { xid, op: request.op().code() });
        prop_assert_eq!(decoded, request);
    }

    /// Every successful response, decoded as the reply to each op that carries it.
    #[test]
    fn reply_roundtrip(xid in any::<i32>(), zxid in any::<i64>(), (response, ops) in response_with_ops()) {
        let reply: Reply = Ok(response);
        let mut frame = Vec::new();
        encode_reply(xid, zxid, &reply, &mut frame);
        for op in ops {
            let (header, decoded) = decode_reply(op, frame_body(&frame)).unwrap();
            prop_assert_eq!(header, ReplyHeader { xid, zxid, err: 0 });
            prop_assert_eq!(&decoded, &reply);
        }
    }

    /// The estimate that bounds a read's reply and a connection's queue
    /// (`Response::bytes_estimate`) is never less than the frame the reply takes, length
    /// prefix included, so a bound checked with it holds for the bytes sent.
    #[test]
    fn reply_estimate_covers_the_frame((response, _) in response_with_ops()) {
        let estimate = response.bytes_estimate();
        let reply: Reply = Ok(response);
        let mut frame = Vec::new();
        encode_reply(0, 0, &reply, &mut frame);
        prop_assert!(frame.len() <= estimate, "{} > {estimate}: {reply:?}", frame.len());
    }

    /// Error replies are header-only and decode to the same code whatever the op.
    #[test]
    fn error_reply_roundtrip(
        xid in any::<i32>(),
        zxid in any::<i64>(),
        code in proptest::sample::select(ErrorCode::ALL),
        op in proptest::sample::select(OpCode::ALL),
    ) {
        let reply: Reply = Err(code);
        let mut frame = Vec::new();
        encode_reply(xid, zxid, &reply, &mut frame);
        prop_assert_eq!(frame.len(), 4 + 16);
        let (header, decoded) = decode_reply(op, frame_body(&frame)).unwrap();
        prop_assert_eq!(header, ReplyHeader { xid, zxid, err: code.code() });
        prop_assert_eq!(decoded, reply);
    }

    /// The handshake in both directions, with and without the readOnly byte.
    #[test]
    fn connect_roundtrip(request in connect_request(), response in connect_response()) {
        let mut frame = Vec::new();
        encode_connect_request(&request, &mut frame);
        prop_assert_eq!(decode_connect_request(frame_body(&frame)).unwrap(), request);

        let mut frame = Vec::new();
        encode_connect_response(&response, &mut frame);
        prop_assert_eq!(decode_connect_response(frame_body(&frame)).unwrap(), response);
    }

    /// Watch notifications: xid -1, err 0, the event as sent.
    #[test]
    fn notification_roundtrip(zxid in any::<i64>(), event in watcher_event()) {
        let mut frame = Vec::new();
        encode_notification(zxid, &event, &mut frame);
        let body = frame_body(&frame);
        prop_assert_eq!(decode_reply_header(body).unwrap(), ReplyHeader { xid: -1, zxid, err: 0 });
        let (header, decoded) = decode_notification(body).unwrap();
        prop_assert_eq!(header, ReplyHeader { xid: -1, zxid, err: 0 });
        prop_assert_eq!(decoded, event);
    }

    /// Several frames appended to one buffer come back one by one through next_frame.
    #[test]
    fn frames_split_back(requests in vec((any::<i32>(), request()), 0..6)) {
        let mut buffer = Vec::new();
        for (xid, request) in &requests {
            encode_request(*xid, request, &mut buffer);
        }
        let mut rest = &buffer[..];
        for (xid, request) in &requests {
            let (range, consumed) = frame::next_frame(rest, frame::JUTE_MAXBUFFER_DEFAULT).unwrap().unwrap();
            let (header, decoded) = decode_request(&rest[range]).unwrap();
            prop_assert_eq!(header.xid, *xid);
            prop_assert_eq!(&decoded, request);
            rest = &rest[consumed..];
        }
        prop_assert!(rest.is_empty());
        prop_assert_eq!(frame::next_frame(rest, frame::JUTE_MAXBUFFER_DEFAULT).unwrap(), None);
    }
}
