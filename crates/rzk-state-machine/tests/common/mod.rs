//! Shared helpers: a state machine driven by entries the way replication drives it.
#![allow(dead_code)]

use rzk_proto::*;
use rzk_state_machine::*;

pub const S1: SessionId = 0x100;
pub const S2: SessionId = 0x200;
pub const T0: i64 = 1_700_000_000_000;

pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: codes::perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

pub struct Harness {
    pub sm: StateMachine,
    pub time_ms: i64,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(Options::default())
    }

    pub fn with(options: Options) -> Self {
        let mut harness = Harness {
            sm: StateMachine::new(options),
            time_ms: T0,
        };
        harness.session(S1);
        harness.session(S2);
        harness
    }

    pub fn session(&mut self, id: SessionId) -> Applied {
        self.entry(id, EntryOp::CreateSession { timeout_ms: 30_000 })
    }

    pub fn entry(&mut self, session_id: SessionId, op: EntryOp) -> Applied {
        self.entry_from(session_id, 0, op)
    }

    /// [`Harness::entry`] proposed by the connection `origin` ([`Entry::origin_of`]).
    pub fn entry_from(&mut self, session_id: SessionId, origin: u64, op: EntryOp) -> Applied {
        self.time_ms += 1;
        let entry = Entry {
            session_id,
            xid: 1,
            origin,
            time_ms: self.time_ms,
            op,
        };
        // Every entry also round-trips through its log encoding.
        assert_eq!(Entry::decode(&entry.encode()).as_ref(), Ok(&entry));
        let applied = self.sm.apply(&entry);
        self.sm.check_invariants();
        applied
    }

    pub fn write_as(&mut self, session: SessionId, auth: &[Id], request: Request) -> Applied {
        self.entry(
            session,
            EntryOp::Write {
                auth: auth.to_vec(),
                request,
            },
        )
    }

    pub fn write(&mut self, request: Request) -> Applied {
        self.write_as(S1, &[], request)
    }

    pub fn create_with(&mut self, path: &str, data: Option<&[u8]>, flags: i32) -> Reply {
        self.write(create_request(path, data, flags)).reply
    }

    pub fn create(&mut self, path: &str) -> Reply {
        self.create_with(path, Some(b"x"), 0)
    }

    /// Create a persistent node that must succeed.
    pub fn mk(&mut self, path: &str) {
        assert_eq!(self.create(path), created(path));
    }

    /// Delete a node that must succeed.
    pub fn rm(&mut self, path: &str) {
        assert_eq!(self.delete(path), Ok(Response::Empty));
    }

    pub fn delete(&mut self, path: &str) -> Reply {
        self.write(Request::Delete(DeleteRequest {
            path: path.into(),
            version: -1,
        }))
        .reply
    }

    pub fn set(&mut self, path: &str, data: &[u8], version: i32) -> Reply {
        self.write(Request::SetData(SetDataRequest {
            path: path.into(),
            data: Some(data.to_vec()),
            version,
        }))
        .reply
    }

    pub fn read_as(
        &mut self,
        session: SessionId,
        auth: &[Id],
        request: Request,
    ) -> (Reply, Vec<Notification>) {
        let mut notifications = Vec::new();
        let reply = self
            .sm
            .read(session, auth, &request, &mut notifications)
            .expect("a reply within REPLY_BYTES_MAX");
        self.sm.check_invariants();
        (reply, notifications)
    }

    pub fn read(&mut self, request: Request) -> Reply {
        self.read_as(S1, &[], request).0
    }

    pub fn stat(&mut self, path: &str) -> Stat {
        match self.read(Request::Exists(PathWatchRequest {
            path: path.into(),
            watch: false,
        })) {
            Ok(Response::Stat(stat)) => stat,
            other => panic!("exists {path}: {other:?}"),
        }
    }

    pub fn get(&mut self, path: &str) -> Option<Vec<u8>> {
        match self.read(Request::GetData(PathWatchRequest {
            path: path.into(),
            watch: false,
        })) {
            Ok(Response::GetData { data, .. }) => data,
            other => panic!("get {path}: {other:?}"),
        }
    }

    pub fn children(&mut self, path: &str) -> Vec<String> {
        match self.read(Request::GetChildren(PathWatchRequest {
            path: path.into(),
            watch: false,
        })) {
            Ok(Response::GetChildren { children }) => children,
            other => panic!("ls {path}: {other:?}"),
        }
    }

    pub fn watch_data(&mut self, session: SessionId, path: &str) -> Reply {
        self.read_as(
            session,
            &[],
            Request::GetData(PathWatchRequest {
                path: path.into(),
                watch: true,
            }),
        )
        .0
    }

    pub fn watch_exists(&mut self, session: SessionId, path: &str) -> Reply {
        self.read_as(
            session,
            &[],
            Request::Exists(PathWatchRequest {
                path: path.into(),
                watch: true,
            }),
        )
        .0
    }

    pub fn watch_children(&mut self, session: SessionId, path: &str) -> Reply {
        self.read_as(
            session,
            &[],
            Request::GetChildren(PathWatchRequest {
                path: path.into(),
                watch: true,
            }),
        )
        .0
    }

    pub fn add_watch(&mut self, session: SessionId, path: &str, mode: AddWatchMode) -> Reply {
        let request = Request::AddWatch(AddWatchRequest {
            path: path.into(),
            mode: mode.code(),
        });
        self.read_as(session, &[], request).0
    }
}

/// A TTL node "/ttl" (100 ms, no data) and a container "/box" (data [1, 2]), created by S1;
/// the harness needs extended types on.
pub fn create_ttl_and_container(h: &mut Harness) {
    let ttl = CreateTtlRequest {
        path: "/ttl".into(),
        data: None,
        acl: open_acl(),
        flags: 5,
        ttl: 100,
    };
    assert!(h.write(Request::CreateTtl(ttl)).reply.is_ok());
    let container = CreateRequest {
        path: "/box".into(),
        data: Some(vec![1, 2]),
        acl: open_acl(),
        flags: 4,
    };
    assert!(h.write(Request::CreateContainer(container)).reply.is_ok());
}

pub fn create_request(path: &str, data: Option<&[u8]>, flags: i32) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: data.map(<[u8]>::to_vec),
        acl: open_acl(),
        flags,
    })
}

pub fn created(path: &str) -> Reply {
    Ok(Response::Create { path: path.into() })
}

/// (session, event type, path) of each notification, in order.
pub fn events(notifications: &[Notification]) -> Vec<(SessionId, EventType, String)> {
    notifications
        .iter()
        .map(|n| {
            assert_eq!(n.event.state, KeeperState::SyncConnected.code());
            (
                n.session_id,
                EventType::from_i32(n.event.event_type).unwrap(),
                n.event.path.clone(),
            )
        })
        .collect()
}
