//! The jute binary encoding (`BinaryInputArchive` / `BinaryOutputArchive`), record by record.
//!
//! - int = 4 bytes big-endian, long = 8 bytes big-endian, boolean = 1 byte;
//! - buffer and ustring = int length + bytes, length -1 = null;
//! - vector = int count + items, count -1 = null;
//! - a record is its fields in declaration order, with no tags and no padding.
//!
//! [`Reader`] never panics and never allocates from an unchecked length: a length is compared
//! with the bytes that are left before anything is reserved, so a hostile count of 2^31 items
//! fails at once instead of asking the allocator for gigabytes.

use crate::codec::DecodeError;
use crate::records::*;

/// Bytes of a `Stat` on the wire: 6 longs and 5 ints.
pub const STAT_BYTES: usize = 6 * 8 + 5 * 4;
/// Bytes of the smallest `ACL`: perms + two empty ustrings.
pub const ACL_MIN_BYTES: usize = 4 + 4 + 4;
/// Bytes of the smallest ustring or buffer: its length.
pub const LENGTH_BYTES: usize = 4;

/// A cursor over one frame body. Reads advance it; a failed read leaves it where the
/// failing field started, and the error names that offset.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, position: 0 }
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Strict end of record: error if bytes are left. Requests do not call this, because
    /// ZooKeeper ignores trailing bytes and some clients send them.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], DecodeError> {
        let truncated = DecodeError::Truncated {
            offset: self.position,
            needed: count.saturating_sub(self.remaining()),
        };
        let end = self.position.checked_add(count).ok_or(truncated.clone())?;
        let slice = self.bytes.get(self.position..end).ok_or(truncated)?;
        self.position = end;
        Ok(slice)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take_array()?))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.take_array()?))
    }

    /// Any non-zero byte is true, as with Java's `DataInput.readBoolean`.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        let [byte] = self.take_array()?;
        Ok(byte != 0)
    }

    /// A length or count: -1 is null, any other negative value is an error.
    fn read_length(&mut self) -> Result<Option<usize>, DecodeError> {
        let offset = self.position;
        let length = self.read_i32()?;
        match length {
            -1 => Ok(None),
            _ => usize::try_from(length)
                .map(Some)
                .map_err(|_| DecodeError::InvalidLength { offset, length }),
        }
    }

    /// An optional last field (the handshake's `readOnly`): `None` when no byte is left.
    pub fn read_trailing_bool(&mut self) -> Result<Option<bool>, DecodeError> {
        match self.is_empty() {
            true => Ok(None),
            false => self.read_bool().map(Some),
        }
    }

    /// A jute `buffer`; `None` for null.
    pub fn read_buffer(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.read_length()? {
            None => Ok(None),
            // `take` checks the length against the bytes left before the copy allocates.
            Some(length) => Ok(Some(self.take(length)?.to_vec())),
        }
    }

    /// A jute `buffer` where null and empty mean the same thing.
    pub fn read_buffer_or_empty(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self.read_buffer()?.unwrap_or_default())
    }

    /// A jute `ustring`; `None` for null. Invalid UTF-8 is an error, not replaced.
    pub fn read_ustring(&mut self) -> Result<Option<String>, DecodeError> {
        let Some(length) = self.read_length()? else {
            return Ok(None);
        };
        let offset = self.position;
        let bytes = self.take(length)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Some(text.to_owned())),
            Err(_) => Err(DecodeError::InvalidUtf8 { offset }),
        }
    }

    /// A jute `ustring` where null and empty mean the same thing (paths, schemes).
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        Ok(self.read_ustring()?.unwrap_or_default())
    }

    /// A jute `vector`; `None` for null. `item_bytes_min` is the smallest encoding of one item:
    /// the count is checked against it before anything is reserved.
    pub fn read_vector<T>(
        &mut self,
        item_bytes_min: usize,
        mut read_item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<Vec<T>>, DecodeError> {
        let Some(count) = self.read_length()? else {
            return Ok(None);
        };
        let bytes_min = count.saturating_mul(item_bytes_min.max(1));
        if bytes_min > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.position,
                needed: bytes_min - self.remaining(),
            });
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(read_item(self)?);
        }
        Ok(Some(items))
    }

    /// A jute `vector` where null and empty mean the same thing.
    pub fn read_vector_or_empty<T>(
        &mut self,
        item_bytes_min: usize,
        read_item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        Ok(self
            .read_vector(item_bytes_min, read_item)?
            .unwrap_or_default())
    }

    /// `vector<ustring>`, null as empty.
    pub fn read_string_list(&mut self) -> Result<Vec<String>, DecodeError> {
        self.read_vector_or_empty(LENGTH_BYTES, Reader::read_string)
    }

    /// `vector<ACL>`, null as empty.
    pub fn read_acl_list(&mut self) -> Result<Vec<Acl>, DecodeError> {
        self.read_vector_or_empty(ACL_MIN_BYTES, Acl::decode)
    }

    /// Decode any record.
    pub fn read<T: Decode>(&mut self) -> Result<T, DecodeError> {
        T::decode(self)
    }
}

/// Appends jute values to a byte vector. Writing cannot fail.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

/// A length as a jute int. A value over `i32::MAX` bytes cannot be framed at all (every frame
/// is capped by `jute.maxbuffer`, and the frame prefix of such a packet already makes the peer
/// refuse it), so saturating here can never produce a frame that a peer accepts.
fn length_i32(length: usize) -> i32 {
    i32::try_from(length).unwrap_or(i32::MAX)
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Writer { out }
    }

    pub fn write_i32(&mut self, value: i32) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    pub fn write_i64(&mut self, value: i64) {
        self.out.extend_from_slice(&value.to_be_bytes());
    }

    pub fn write_bool(&mut self, value: bool) {
        self.out.push(u8::from(value));
    }

    /// An optional last field (the handshake's `readOnly`): nothing is written for `None`.
    pub fn write_trailing_bool(&mut self, value: Option<bool>) {
        if let Some(value) = value {
            self.write_bool(value);
        }
    }

    /// A jute `buffer`; `None` writes null (-1).
    pub fn write_buffer(&mut self, value: Option<&[u8]>) {
        match value {
            None => self.write_i32(-1),
            Some(bytes) => self.write_bytes(bytes),
        }
    }

    /// A non-null jute `buffer`.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.write_i32(length_i32(bytes.len()));
        self.out.extend_from_slice(bytes);
    }

    /// A jute `ustring`; `None` writes null (-1).
    pub fn write_ustring(&mut self, value: Option<&str>) {
        match value {
            None => self.write_i32(-1),
            Some(text) => self.write_str(text),
        }
    }

    /// A non-null jute `ustring`.
    pub fn write_str(&mut self, text: &str) {
        self.write_bytes(text.as_bytes());
    }

    /// A non-null jute `vector`.
    pub fn write_vector<T>(&mut self, items: &[T], mut write_item: impl FnMut(&mut Self, &T)) {
        self.write_i32(length_i32(items.len()));
        for item in items {
            write_item(self, item);
        }
    }

    /// `vector<ustring>`.
    pub fn write_string_list(&mut self, items: &[String]) {
        self.write_vector(items, |writer, item| writer.write_str(item));
    }

    /// `vector<ACL>`.
    pub fn write_acl_list(&mut self, items: &[Acl]) {
        self.write_vector(items, |writer, item| item.encode(writer));
    }

    /// Encode any record.
    pub fn write<T: Encode + ?Sized>(&mut self, record: &T) {
        record.encode(self);
    }
}

/// Append one frame: a 4-byte big-endian length, then whatever `write_body` writes.
pub fn write_frame(out: &mut Vec<u8>, write_body: impl FnOnce(&mut Writer<'_>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    write_body(&mut Writer::new(out));
    let length = length_i32(out.len() - start - 4);
    // The slot was reserved above, so this always finds it.
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&length.to_be_bytes());
    }
}

/// A record that can be written in jute form.
pub trait Encode {
    fn encode(&self, writer: &mut Writer<'_>);
}

/// A record that can be read from jute form.
pub trait Decode: Sized {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Write one field of a record, by its jute kind (see `jute_record!`).
macro_rules! write_field {
    (int, $writer:ident, $value:expr) => {
        $writer.write_i32(*$value)
    };
    (long, $writer:ident, $value:expr) => {
        $writer.write_i64(*$value)
    };
    (boolean, $writer:ident, $value:expr) => {
        $writer.write_bool(*$value)
    };
    (ustring, $writer:ident, $value:expr) => {
        $writer.write_str($value)
    };
    (nullable_ustring, $writer:ident, $value:expr) => {
        $writer.write_ustring($value.as_deref())
    };
    (buffer, $writer:ident, $value:expr) => {
        $writer.write_bytes($value)
    };
    (nullable_buffer, $writer:ident, $value:expr) => {
        $writer.write_buffer($value.as_deref())
    };
    (acl_list, $writer:ident, $value:expr) => {
        $writer.write_acl_list($value)
    };
    (record, $writer:ident, $value:expr) => {
        Encode::encode($value, $writer)
    };
}

/// Read one field of a record, by its jute kind (see `jute_record!`).
macro_rules! read_field {
    (int, $reader:ident) => {
        $reader.read_i32()?
    };
    (long, $reader:ident) => {
        $reader.read_i64()?
    };
    (boolean, $reader:ident) => {
        $reader.read_bool()?
    };
    (ustring, $reader:ident) => {
        $reader.read_string()?
    };
    (nullable_ustring, $reader:ident) => {
        $reader.read_ustring()?
    };
    (buffer, $reader:ident) => {
        $reader.read_buffer_or_empty()?
    };
    (nullable_buffer, $reader:ident) => {
        $reader.read_buffer()?
    };
    (acl_list, $reader:ident) => {
        $reader.read_acl_list()?
    };
    (record, $reader:ident) => {
        $reader.read()?
    };
}

/// `Encode` + `Decode` for a record whose fields are all present, from one field list in wire
/// order, so the two directions cannot disagree. Kinds follow `zookeeper.jute`; `ustring` and
/// `buffer` read null as empty, the `nullable_` kinds keep null as `None`.
macro_rules! jute_record {
    ($($name:ident { $($field:ident: $kind:ident),+ $(,)? })+) => {$(
        impl Encode for $name {
            fn encode(&self, writer: &mut Writer<'_>) {
                $(write_field!($kind, writer, &self.$field);)+
            }
        }

        impl Decode for $name {
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($name { $($field: read_field!($kind, reader),)+ })
            }
        }
    )+};
}

jute_record! {
    Id { scheme: ustring, id: ustring }
    Acl { perms: int, id: record }
    Stat {
        czxid: long,
        mzxid: long,
        ctime: long,
        mtime: long,
        version: int,
        cversion: int,
        aversion: int,
        ephemeral_owner: long,
        data_length: int,
        num_children: int,
        pzxid: long,
    }
    RequestHeader { xid: int, op: int }
    ReplyHeader { xid: int, zxid: long, err: int }
    MultiHeader { op: int, done: boolean, err: int }
    WatcherEvent { event_type: int, state: int, path: ustring }
    CreateRequest { path: ustring, data: nullable_buffer, acl: acl_list, flags: int }
    CreateTtlRequest { path: ustring, data: nullable_buffer, acl: acl_list, flags: int, ttl: long }
    DeleteRequest { path: ustring, version: int }
    PathWatchRequest { path: ustring, watch: boolean }
    PathRequest { path: ustring }
    SetDataRequest { path: ustring, data: nullable_buffer, version: int }
    SetAclRequest { path: ustring, acl: acl_list, version: int }
    CheckVersionRequest { path: ustring, version: int }
    ReconfigRequest {
        joining_servers: nullable_ustring,
        leaving_servers: nullable_ustring,
        new_members: nullable_ustring,
        cur_config_id: long,
    }
    RemoveWatchesRequest { path: ustring, watcher_type: int }
    AddWatchRequest { path: ustring, mode: int }
    AuthPacket { auth_type: int, scheme: ustring, auth: buffer }
    ClientInfo { auth_scheme: ustring, user: ustring }
}

impl Encode for ConnectRequest {
    fn encode(&self, writer: &mut Writer<'_>) {
        writer.write_i32(self.protocol_version);
        writer.write_i64(self.last_zxid_seen);
        writer.write_i32(self.timeout_ms);
        writer.write_i64(self.session_id);
        writer.write_bytes(&self.password);
        writer.write_trailing_bool(self.read_only);
    }
}

impl Decode for ConnectRequest {
    /// `readOnly` is read only if a byte is left: 3.3-era clients end the record at `passwd`.
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: reader.read_i32()?,
            last_zxid_seen: reader.read_i64()?,
            timeout_ms: reader.read_i32()?,
            session_id: reader.read_i64()?,
            password: reader.read_buffer_or_empty()?,
            read_only: reader.read_trailing_bool()?,
        })
    }
}

impl Encode for ConnectResponse {
    fn encode(&self, writer: &mut Writer<'_>) {
        writer.write_i32(self.protocol_version);
        writer.write_i32(self.timeout_ms);
        writer.write_i64(self.session_id);
        writer.write_bytes(&self.password);
        // Only echo `readOnly` to a client that sent it: an old client would take the
        // extra byte as the start of the next packet.
        writer.write_trailing_bool(self.read_only);
    }
}

impl Decode for ConnectResponse {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: reader.read_i32()?,
            timeout_ms: reader.read_i32()?,
            session_id: reader.read_i64()?,
            password: reader.read_buffer_or_empty()?,
            read_only: reader.read_trailing_bool()?,
        })
    }
}

impl SetWatches {
    /// `SetWatches` (opcode 101): the two persistent lists are not on the wire and are dropped.
    pub fn encode_v1(&self, writer: &mut Writer<'_>) {
        writer.write_i64(self.relative_zxid);
        writer.write_string_list(&self.data_watches);
        writer.write_string_list(&self.exist_watches);
        writer.write_string_list(&self.child_watches);
    }

    /// `SetWatches2` (opcode 105).
    pub fn encode_v2(&self, writer: &mut Writer<'_>) {
        self.encode_v1(writer);
        writer.write_string_list(&self.persistent_watches);
        writer.write_string_list(&self.persistent_recursive_watches);
    }

    /// `SetWatches` (opcode 101): the persistent lists come back empty.
    pub fn decode_v1(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SetWatches {
            relative_zxid: reader.read_i64()?,
            data_watches: reader.read_string_list()?,
            exist_watches: reader.read_string_list()?,
            child_watches: reader.read_string_list()?,
            persistent_watches: Vec::new(),
            persistent_recursive_watches: Vec::new(),
        })
    }

    /// `SetWatches2` (opcode 105).
    pub fn decode_v2(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut watches = SetWatches::decode_v1(reader)?;
        watches.persistent_watches = reader.read_string_list()?;
        watches.persistent_recursive_watches = reader.read_string_list()?;
        Ok(watches)
    }
}
