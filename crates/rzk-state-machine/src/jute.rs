//! A small jute-style writer/reader (big-endian ints, `-1` length for null) for log entries
//! and snapshots, plus the jute records of the write requests a log entry carries.
//!
//! The reader never panics: every read checks the remaining length first and every length
//! is checked against what is left before anything is allocated.

use rzk_proto::{
    Acl, CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, Id, OpCode,
    PathRequest, Request, SetAclRequest, SetDataRequest,
};

#[derive(Default)]
pub(crate) struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }
    pub fn bool(&mut self, value: bool) {
        self.bytes.push(u8::from(value));
    }
    pub fn i32(&mut self, value: i32) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
    pub fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
    pub fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }
    /// Lengths are `i32` on the jute wire; anything larger cannot come from a client.
    fn length(&mut self, length: usize) {
        let length = i32::try_from(length).expect("record field longer than i32::MAX bytes");
        self.i32(length);
    }
    pub fn buffer(&mut self, value: Option<&[u8]>) {
        match value {
            None => self.i32(-1),
            Some(bytes) => {
                self.length(bytes.len());
                self.bytes.extend_from_slice(bytes);
            }
        }
    }
    pub fn string(&mut self, value: &str) {
        self.buffer(Some(value.as_bytes()));
    }
    pub fn id(&mut self, id: &Id) {
        self.string(&id.scheme);
        self.string(&id.id);
    }
    pub fn acl_list(&mut self, acl: &[Acl]) {
        self.length(acl.len());
        for entry in acl {
            self.i32(entry.perms);
            self.id(&entry.id);
        }
    }
}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

/// Why bytes could not be read; the callers wrap it in their own error type.
pub(crate) type ReadError = String;

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, offset: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }
    pub fn take(&mut self, count: usize) -> Result<&'a [u8], ReadError> {
        if count > self.remaining() {
            return Err(format!(
                "truncated: needed {count} bytes at offset {}",
                self.offset
            ));
        }
        let slice = &self.bytes[self.offset..self.offset + count];
        self.offset += count;
        Ok(slice)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn bool(&mut self) -> Result<bool, ReadError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!(
                "invalid boolean {other} at offset {}",
                self.offset - 1
            )),
        }
    }
    pub fn i32(&mut self) -> Result<i32, ReadError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, ReadError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, ReadError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub fn buffer(&mut self) -> Result<Option<&'a [u8]>, ReadError> {
        let length = self.i32()?;
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length)
            .map_err(|_| format!("invalid length {length} at offset {}", self.offset))?;
        self.take(length).map(Some)
    }
    pub fn string(&mut self) -> Result<String, ReadError> {
        let offset = self.offset;
        let bytes = self.buffer()?.unwrap_or_default();
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| format!("invalid UTF-8 at offset {offset}"))
    }
    pub fn id(&mut self) -> Result<Id, ReadError> {
        Ok(Id {
            scheme: self.string()?,
            id: self.string()?,
        })
    }
    /// A count of elements that each take at least `element_bytes_min` bytes: checked against
    /// the bytes left so a corrupt count cannot trigger a huge allocation.
    pub fn count(&mut self, element_bytes_min: usize) -> Result<usize, ReadError> {
        let offset = self.offset;
        let count = self.i32()?;
        let count = usize::try_from(count)
            .map_err(|_| format!("invalid count {count} at offset {offset}"))?;
        if count.saturating_mul(element_bytes_min) > self.remaining() {
            return Err(format!(
                "count {count} at offset {offset} exceeds the bytes left"
            ));
        }
        Ok(count)
    }
    pub fn acl_list(&mut self) -> Result<Vec<Acl>, ReadError> {
        let count = self.count(12)?;
        let mut acl = Vec::with_capacity(count);
        for _ in 0..count {
            let perms = self.i32()?;
            acl.push(Acl {
                perms,
                id: self.id()?,
            });
        }
        Ok(acl)
    }
}

/// Write `request` as `int op` + its jute record (multi: MultiHeader-framed ops).
/// Returns false for requests that never travel in a log entry (reads, session ops).
pub(crate) fn write_request(writer: &mut Writer, request: &Request) -> bool {
    writer.i32(request.op().code());
    write_request_body(writer, request)
}

/// The jute record of one write request, without its op code.
fn write_request_body(writer: &mut Writer, request: &Request) -> bool {
    match request {
        Request::Create(record) | Request::Create2(record) | Request::CreateContainer(record) => {
            write_create(writer, record);
        }
        Request::CreateTtl(record) => write_create_ttl(writer, record),
        Request::Delete(record) => {
            writer.string(&record.path);
            writer.i32(record.version);
        }
        Request::SetData(record) => {
            writer.string(&record.path);
            writer.buffer(record.data.as_deref());
            writer.i32(record.version);
        }
        Request::SetAcl(record) => {
            writer.string(&record.path);
            writer.acl_list(&record.acl);
            writer.i32(record.version);
        }
        Request::Check(record) => {
            writer.string(&record.path);
            writer.i32(record.version);
        }
        Request::DeleteContainer(record) => writer.string(&record.path),
        Request::Multi(ops) => return write_multi(writer, ops),
        _ => return false,
    }
    true
}

fn write_create(writer: &mut Writer, record: &CreateRequest) {
    writer.string(&record.path);
    writer.buffer(record.data.as_deref());
    writer.acl_list(&record.acl);
    writer.i32(record.flags);
}

fn write_create_ttl(writer: &mut Writer, record: &CreateTtlRequest) {
    writer.string(&record.path);
    writer.buffer(record.data.as_deref());
    writer.acl_list(&record.acl);
    writer.i32(record.flags);
    writer.i64(record.ttl);
}

/// Each op: `MultiHeader{type, done=false, err=-1}` + record; then `{-1, true, -1}`.
/// The op code is inside the header, so the record is written without its leading op.
fn write_multi(writer: &mut Writer, ops: &[Request]) -> bool {
    for op in ops {
        if matches!(op, Request::Multi(_)) {
            return false;
        }
        writer.i32(op.op().code());
        writer.bool(false);
        writer.i32(-1);
        if !write_request_body(writer, op) {
            return false;
        }
    }
    writer.i32(-1);
    writer.bool(true);
    writer.i32(-1);
    true
}

pub(crate) fn read_request(reader: &mut Reader<'_>) -> Result<Request, ReadError> {
    let op = reader.i32()?;
    read_request_body(reader, op, true)
}

fn read_request_body(
    reader: &mut Reader<'_>,
    op: i32,
    multi_allowed: bool,
) -> Result<Request, ReadError> {
    let code = OpCode::from_i32(op).ok_or_else(|| format!("unknown opcode {op}"))?;
    let request = match code {
        OpCode::Create => Request::Create(read_create(reader)?),
        OpCode::Create2 => Request::Create2(read_create(reader)?),
        OpCode::CreateContainer => Request::CreateContainer(read_create(reader)?),
        OpCode::CreateTtl => Request::CreateTtl(read_create_ttl(reader)?),
        OpCode::Delete => Request::Delete(DeleteRequest {
            path: reader.string()?,
            version: reader.i32()?,
        }),
        OpCode::SetData => Request::SetData(SetDataRequest {
            path: reader.string()?,
            data: reader.buffer()?.map(<[u8]>::to_vec),
            version: reader.i32()?,
        }),
        OpCode::SetAcl => Request::SetAcl(SetAclRequest {
            path: reader.string()?,
            acl: reader.acl_list()?,
            version: reader.i32()?,
        }),
        OpCode::Check => Request::Check(CheckVersionRequest {
            path: reader.string()?,
            version: reader.i32()?,
        }),
        OpCode::DeleteContainer => Request::DeleteContainer(PathRequest {
            path: reader.string()?,
        }),
        OpCode::Multi if multi_allowed => Request::Multi(read_multi(reader)?),
        other => return Err(format!("opcode {other:?} is not a logged write")),
    };
    Ok(request)
}

fn read_create(reader: &mut Reader<'_>) -> Result<CreateRequest, ReadError> {
    Ok(CreateRequest {
        path: reader.string()?,
        data: reader.buffer()?.map(<[u8]>::to_vec),
        acl: reader.acl_list()?,
        flags: reader.i32()?,
    })
}

fn read_create_ttl(reader: &mut Reader<'_>) -> Result<CreateTtlRequest, ReadError> {
    Ok(CreateTtlRequest {
        path: reader.string()?,
        data: reader.buffer()?.map(<[u8]>::to_vec),
        acl: reader.acl_list()?,
        flags: reader.i32()?,
        ttl: reader.i64()?,
    })
}

fn read_multi(reader: &mut Reader<'_>) -> Result<Vec<Request>, ReadError> {
    let mut ops = Vec::new();
    loop {
        let op = reader.i32()?;
        let done = reader.bool()?;
        let _err = reader.i32()?;
        if done {
            return Ok(ops);
        }
        ops.push(read_request_body(reader, op, false)?);
    }
}
