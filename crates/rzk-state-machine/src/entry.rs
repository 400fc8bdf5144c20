//! The replicated log entry: what a member proposes and every member applies in log order.

use rzk_proto::codec::{decode_request_body, encode_request_body};
use rzk_proto::{jute, Id, Request};

use crate::jute::{Reader, Writer};
use crate::SessionId;

/// Bumped whenever the entry layout changes; decode reads this one and the ones before it
/// ([`ENTRY_FORMAT_VERSION_NO_ORIGIN`]) and refuses others.
const ENTRY_FORMAT_VERSION: u8 = 2;
/// Entries written before [`Entry::origin`] existed (decoded with origin 0).
const ENTRY_FORMAT_VERSION_NO_ORIGIN: u8 = 1;

/// Bits of [`Entry::origin`] that hold the connection id (the member id is above them).
const ORIGIN_CONNECTION_BITS: u32 = 48;
const ORIGIN_CONNECTION_MASK: u64 = (1 << ORIGIN_CONNECTION_BITS) - 1;

/// What [`Entry::encode`] reserves up front; larger entries grow past it.
const ENTRY_BYTES_TYPICAL: usize = 256;

const KIND_CREATE_SESSION: u8 = 0;
const KIND_CLOSE_SESSION: u8 = 1;
const KIND_WRITE: u8 = 2;
const KIND_SETTINGS: u8 = 3;
const KIND_ATTACH_SESSION: u8 = 4;

/// The flags byte of a Settings entry; a format-4 snapshot's settings byte uses the same bits.
pub(crate) const SETTINGS_SKIP_ACL: u8 = 1;
pub(crate) const SETTINGS_EXTENDED_TYPES: u8 = 2;

/// The settings as flags (bit 0 skipACL, bit 1 extendedTypesEnabled).
pub(crate) fn settings_flags(skip_acl: bool, extended_types_enabled: bool) -> u8 {
    (u8::from(skip_acl) * SETTINGS_SKIP_ACL)
        | (u8::from(extended_types_enabled) * SETTINGS_EXTENDED_TYPES)
}

/// One replicated change. Time and the requesting session travel with it, so applying it
/// needs no clock. The zxid is not in the entry: the state machine gives `last_zxid + 1`
/// (Settings and AttachSession entries take none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub session_id: SessionId,
    /// The client's xid, so the member holding the connection can route the reply.
    pub xid: i32,
    /// Which connection proposed it: `member id << ORIGIN_CONNECTION_BITS | connection id`
    /// ([`Entry::origin_of`]), so that the reply goes to that connection and to no other
    /// (after a session moves to a new connection, both may use the same xids). 0: not
    /// proposed by a client connection, or written by an rzk from before the field.
    pub origin: u64,
    /// Wall-clock ms stamped by the proposer; becomes ctime/mtime.
    pub time_ms: i64,
    pub op: EntryOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOp {
    /// A new session with its negotiated timeout.
    CreateSession { timeout_ms: i32 },
    /// closeSession from the client, or expiry decided by the leader: deletes its ephemerals.
    CloseSession,
    /// A write request (`Request::is_write`), checked against the session's auth ids.
    Write { auth: Vec<Id>, request: Request },
    /// The settings that change apply results, as the leader's zoo.cfg has them (`skipACL`,
    /// `extendedTypesEnabled`): from this entry on every member applies with them, whatever
    /// its own zoo.cfg says, so a replay gives what the clients saw. Takes no zxid (ZooKeeper
    /// has no such transaction; a zxid would show up in clients' Stats). See
    /// [`crate::StateMachine::settings_entry`].
    Settings {
        skip_acl: bool,
        extended_types_enabled: bool,
    },
    /// A client reattached the session on the proposing connection ([`Entry::origin`]): from
    /// this entry on, writes of any other connection of the session are refused with
    /// SessionMoved (ZooKeeper's session owner). The member serving the reattach answers the
    /// client only once this entry is applied there, so everything the older connection got
    /// into the log before is applied first, and nothing it gets in later is. Takes no zxid.
    AttachSession,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryDecodeError {
    #[error("log entry is corrupt: {0}")]
    Corrupt(String),
}

impl Entry {
    /// The [`Entry::origin`] of a connection on a member.
    pub fn origin_of(member_id: u64, connection_id: u64) -> u64 {
        debug_assert!(
            connection_id <= ORIGIN_CONNECTION_MASK,
            "connection id too large"
        );
        member_id << ORIGIN_CONNECTION_BITS | connection_id & ORIGIN_CONNECTION_MASK
    }

    /// The member and connection that proposed this entry ([`Entry::origin`]); `None` when
    /// no client connection did.
    pub fn proposer(&self) -> Option<(u64, u64)> {
        (self.origin != 0).then_some((
            self.origin >> ORIGIN_CONNECTION_BITS,
            self.origin & ORIGIN_CONNECTION_MASK,
        ))
    }

    /// Deterministic bytes for the log (jute-encoded request inside):
    /// `u8 version, i64 session_id, i32 xid, u64 origin, i64 time_ms, u8 kind` then, by kind,
    /// `i32 timeout_ms` | nothing | `vector<Id> auth, i32 op, record` | `u8 flags` | nothing
    /// (kinds 0 CreateSession, 1 CloseSession, 2 Write, 3 Settings, 4 AttachSession) where the
    /// record is the request's jute body exactly as a client sends it (rzk-proto's codec), and
    /// the Settings flags are bit 0 skip_acl, bit 1 extended_types_enabled, the rest zero.
    pub fn encode(&self) -> Vec<u8> {
        // Sized for a typical write (header, an `ip` auth id, path, ACL, ~100 B of data) so the
        // buffer is allocated once instead of growing through six reallocations.
        let mut writer = Writer {
            bytes: Vec::with_capacity(ENTRY_BYTES_TYPICAL),
        };
        writer.u8(ENTRY_FORMAT_VERSION);
        writer.i64(self.session_id);
        writer.i32(self.xid);
        writer.i64(self.origin as i64);
        writer.i64(self.time_ms);
        match &self.op {
            EntryOp::CreateSession { timeout_ms } => {
                writer.u8(KIND_CREATE_SESSION);
                writer.i32(*timeout_ms);
            }
            EntryOp::CloseSession => writer.u8(KIND_CLOSE_SESSION),
            EntryOp::AttachSession => writer.u8(KIND_ATTACH_SESSION),
            EntryOp::Write { auth, request } => encode_write(&mut writer, auth, request),
            EntryOp::Settings {
                skip_acl,
                extended_types_enabled,
            } => {
                writer.u8(KIND_SETTINGS);
                writer.u8(settings_flags(*skip_acl, *extended_types_enabled));
            }
        }
        writer.bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryDecodeError> {
        let mut reader = Reader::new(bytes);
        let entry = decode_fields(&mut reader).map_err(EntryDecodeError::Corrupt)?;
        if reader.remaining() != 0 {
            return Err(EntryDecodeError::Corrupt(format!(
                "{} unexpected bytes after the entry",
                reader.remaining()
            )));
        }
        Ok(entry)
    }
}

fn encode_write(writer: &mut Writer, auth: &[Id], request: &Request) {
    writer.u8(KIND_WRITE);
    writer.i32(i32::try_from(auth.len()).expect("more than i32::MAX auth ids"));
    for id in auth {
        writer.id(id);
    }
    writer.i32(request.op().code());
    encode_request_body(request, &mut jute::Writer::new(&mut writer.bytes));
}

/// The rest of the entry is one request body; all of it must be used.
fn decode_request(reader: &mut Reader<'_>) -> Result<Request, String> {
    let op = reader.i32()?;
    let rest = reader.take(reader.remaining())?;
    let mut body = jute::Reader::new(rest);
    let request = decode_request_body(op, &mut body).map_err(|error| error.to_string())?;
    body.finish().map_err(|error| error.to_string())?;
    Ok(request)
}

fn decode_fields(reader: &mut Reader<'_>) -> Result<Entry, String> {
    let version = reader.u8()?;
    if version != ENTRY_FORMAT_VERSION && version != ENTRY_FORMAT_VERSION_NO_ORIGIN {
        return Err(format!("entry format version {version} is not supported"));
    }
    let session_id = reader.i64()?;
    let xid = reader.i32()?;
    let origin = if version == ENTRY_FORMAT_VERSION {
        reader.i64()? as u64
    } else {
        0
    };
    let time_ms = reader.i64()?;
    let op = match reader.u8()? {
        KIND_CREATE_SESSION => EntryOp::CreateSession {
            timeout_ms: reader.i32()?,
        },
        KIND_CLOSE_SESSION => EntryOp::CloseSession,
        KIND_ATTACH_SESSION => EntryOp::AttachSession,
        KIND_WRITE => {
            let count = reader.count(8)?;
            let mut auth = Vec::with_capacity(count);
            for _ in 0..count {
                auth.push(reader.id()?);
            }
            EntryOp::Write {
                auth,
                request: decode_request(reader)?,
            }
        }
        KIND_SETTINGS => {
            let flags = reader.u8()?;
            if flags & !(SETTINGS_SKIP_ACL | SETTINGS_EXTENDED_TYPES) != 0 {
                return Err(format!("unknown settings flags {flags:#04x}"));
            }
            EntryOp::Settings {
                skip_acl: flags & SETTINGS_SKIP_ACL != 0,
                extended_types_enabled: flags & SETTINGS_EXTENDED_TYPES != 0,
            }
        }
        kind => return Err(format!("unknown entry kind {kind}")),
    };
    Ok(Entry {
        session_id,
        xid,
        origin,
        time_ms,
        op,
    })
}
