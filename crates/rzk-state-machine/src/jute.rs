//! A small jute-style writer/reader (big-endian ints, `-1` length for null) for the framing of
//! log entries and snapshots. The requests inside entries use rzk-proto's own jute codec.
//!
//! The reader never panics: every read checks the remaining length first and every length
//! is checked against what is left before anything is allocated.

use rzk_proto::{Acl, Id};

#[derive(Default)]
pub(crate) struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
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
    /// LEB128: seven bits a byte, low bits first, the top bit set on every byte but the last.
    pub fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }
    /// A signed value as a [`Writer::varint`], small magnitudes short (zigzag: 0, -1, 1, -2...).
    pub fn zigzag(&mut self, value: i64) {
        self.varint(((value << 1) ^ (value >> 63)) as u64);
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
    /// See [`Writer::varint`]; at most 10 bytes, and no bits past 64.
    pub fn varint(&mut self) -> Result<u64, ReadError> {
        let offset = self.offset;
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("invalid varint at offset {offset}"))
    }
    /// See [`Writer::zigzag`].
    pub fn zigzag(&mut self) -> Result<i64, ReadError> {
        let value = self.varint()?;
        Ok((value >> 1) as i64 ^ -((value & 1) as i64))
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
        self.str().map(str::to_string)
    }
    /// A string borrowed from the bytes (no allocation).
    pub fn str(&mut self) -> Result<&'a str, ReadError> {
        let offset = self.offset;
        let bytes = self.buffer()?.unwrap_or_default();
        std::str::from_utf8(bytes).map_err(|_| format!("invalid UTF-8 at offset {offset}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: varints and zigzags round-trip at every bit width and at the extremes, take the
    // advertised number of bytes, and a reader refuses overlong or overflowing input.
    #[test]
    fn varints_round_trip_and_refuse_overflow() {
        let mut values: Vec<u64> = (0..64).map(|bit| 1u64 << bit).collect();
        values.extend(values.clone().iter().map(|v| v - 1));
        values.push(u64::MAX);
        for value in values {
            let mut writer = Writer::default();
            writer.varint(value);
            let expected_len = (64 - value.leading_zeros()).div_ceil(7).max(1) as usize;
            assert_eq!(writer.bytes.len(), expected_len, "{value}");
            assert_eq!(Reader::new(&writer.bytes).varint(), Ok(value));
            let signed = value as i64;
            let mut writer = Writer::default();
            writer.zigzag(signed);
            assert_eq!(Reader::new(&writer.bytes).zigzag(), Ok(signed));
        }
        for (value, len) in [
            (0i64, 1),
            (-1, 1),
            (63, 1),
            (-64, 1),
            (64, 2),
            (i64::MIN, 10),
        ] {
            let mut writer = Writer::default();
            writer.zigzag(value);
            assert_eq!(writer.bytes.len(), len, "{value}");
        }
        // 11 continuation bytes, a 10th byte with more than the 64th bit, and a cut-off one.
        assert!(Reader::new(&[0x80; 11]).varint().is_err());
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert!(Reader::new(&too_big).varint().is_err());
        assert!(Reader::new(&[0x80]).varint().is_err());
    }
}
