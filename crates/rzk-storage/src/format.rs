//! Byte layouts of every file this crate writes, as pure encode/decode functions.
//!
//! All integers are little-endian and explicitly sized. Every structure carries a CRC-32C
//! (Castagnoli, hardware accelerated by the `crc32c` crate), so damage is detected rather than
//! decoded. The grammars are documented in the crate root (`# On-disk formats`).

use std::path::{Path, PathBuf};

/// Format version written into every header. Readers refuse any other value.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Snapshot files whose payload is an LZ4 frame (the state bytes compressed). Snapshots of
/// [`FORMAT_VERSION`] hold the state bytes as they are and are still read.
pub(crate) const SNAPSHOT_VERSION_LZ4: u32 = 2;

pub(crate) const SEGMENT_MAGIC: [u8; 4] = *b"RZKL";
pub(crate) const SNAPSHOT_MAGIC: [u8; 4] = *b"RZKS";
pub(crate) const META_MAGIC: [u8; 4] = *b"RZKM";

/// `magic[4] version:u32 first_index:u64 header_crc:u32`.
pub(crate) const SEGMENT_HEADER_BYTES: u64 = 20;
/// `len:u32 crc:u32 index:u64`, followed by `len` payload bytes.
pub(crate) const FRAME_HEADER_BYTES: u64 = 16;
/// `magic[4] version:u32 index:u64 payload_len:u64 payload_crc:u32 header_crc:u32`.
pub(crate) const SNAPSHOT_HEADER_BYTES: u64 = 32;
/// `magic[4] version:u32 len:u32 crc:u32`, followed by `len` bytes.
pub(crate) const META_HEADER_BYTES: u64 = 16;

/// The largest payload one log record may carry. A length field above it is damage, which keeps
/// recovery from allocating whatever a flipped bit asks for.
pub const RECORD_PAYLOAD_BYTES_MAX: u32 = 64 << 20;
/// The largest value `save_meta` accepts: meta files hold a vote or a watermark, not data.
pub const META_BYTES_MAX: u32 = 1 << 20;

const _: () = assert!(FRAME_HEADER_BYTES == 4 + 4 + 8);
const _: () = assert!(SEGMENT_HEADER_BYTES == 4 + 4 + 8 + 4);
const _: () = assert!(SNAPSHOT_HEADER_BYTES == 4 + 4 + 8 + 8 + 4 + 4);
const _: () = assert!(META_HEADER_BYTES == 4 + 4 + 4 + 4);
const _: () = assert!((RECORD_PAYLOAD_BYTES_MAX as u64) + FRAME_HEADER_BYTES < u32::MAX as u64);

pub(crate) const LOG_PREFIX: &str = "log.";
pub(crate) const SNAPSHOT_PREFIX: &str = "snapshot.";
pub(crate) const META_PREFIX: &str = "meta.";
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// `log.<16 hex digits>` / `snapshot.<16 hex digits>`, like ZooKeeper's names but fixed-width
/// so that a directory listing sorts in log order.
pub(crate) fn numbered_name(prefix: &str, index: u64) -> String {
    format!("{prefix}{index:016x}")
}

/// The number in `log.<hex>` (1 to 16 hex digits, nothing after). Anything else is not ours.
pub(crate) fn parse_numbered_name(prefix: &str, name: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?;
    let well_formed = !digits.is_empty()
        && digits.len() <= 16
        && digits.bytes().all(|byte| byte.is_ascii_hexdigit());
    if !well_formed {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// Every `<prefix><hex>` file in `dir`, sorted by number.
pub(crate) fn list_numbered(dir: &Path, prefix: &str) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        if let Some(number) = entry
            .file_name()
            .to_str()
            .and_then(|name| parse_numbered_name(prefix, name))
        {
            found.push((number, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("slice of 4"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("slice of 8"))
}

/// Why a header did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Fewer bytes than a header: a file whose creation was cut short.
    Short,
    BadMagic,
    UnknownVersion(u32),
    BadChecksum,
}

impl HeaderError {
    pub(crate) fn describe(&self) -> String {
        match self {
            HeaderError::Short => "the file is shorter than its header".to_string(),
            HeaderError::BadMagic => {
                "the header does not start with the expected magic".to_string()
            }
            HeaderError::UnknownVersion(version) => format!("unknown format version {version}"),
            HeaderError::BadChecksum => "the header checksum does not match".to_string(),
        }
    }
}

fn check_magic_and_version(
    bytes: &[u8],
    magic: [u8; 4],
    header_bytes: u64,
    versions: &[u32],
) -> Result<u32, HeaderError> {
    if (bytes.len() as u64) < header_bytes {
        return Err(HeaderError::Short);
    }
    if bytes[0..4] != magic {
        return Err(HeaderError::BadMagic);
    }
    let version = u32_at(bytes, 4);
    if !versions.contains(&version) {
        return Err(HeaderError::UnknownVersion(version));
    }
    Ok(version)
}

pub(crate) fn encode_segment_header(first_index: u64) -> [u8; SEGMENT_HEADER_BYTES as usize] {
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    header[0..4].copy_from_slice(&SEGMENT_MAGIC);
    header[4..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[8..16].copy_from_slice(&first_index.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..16]);
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    header
}

/// The first index recorded in a segment header.
pub(crate) fn decode_segment_header(bytes: &[u8]) -> Result<u64, HeaderError> {
    check_magic_and_version(
        bytes,
        SEGMENT_MAGIC,
        SEGMENT_HEADER_BYTES,
        &[FORMAT_VERSION],
    )?;
    if crc32c::crc32c(&bytes[0..16]) != u32_at(bytes, 16) {
        return Err(HeaderError::BadChecksum);
    }
    Ok(u64_at(bytes, 8))
}

/// The frame checksum covers the length and the index as well as the payload, so a flipped bit
/// in any field of the frame is caught.
fn frame_crc(payload_len: u32, index: u64, payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&payload_len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, &index.to_le_bytes());
    crc32c::crc32c_append(crc, payload)
}

pub(crate) fn frame_bytes(payload_len: usize) -> u64 {
    FRAME_HEADER_BYTES + payload_len as u64
}

/// Append one frame to `buffer`.
pub(crate) fn encode_frame(buffer: &mut Vec<u8>, index: u64, payload: &[u8]) {
    assert!(
        payload.len() <= RECORD_PAYLOAD_BYTES_MAX as usize,
        "payload size is checked before encoding"
    );
    let payload_len = payload.len() as u32;
    buffer.extend_from_slice(&payload_len.to_le_bytes());
    buffer.extend_from_slice(&frame_crc(payload_len, index, payload).to_le_bytes());
    buffer.extend_from_slice(&index.to_le_bytes());
    buffer.extend_from_slice(payload);
}

/// A frame decoded in place.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub(crate) index: u64,
    pub(crate) payload: &'a [u8],
    /// Header plus payload.
    pub(crate) frame_bytes: u64,
}

/// Why the bytes at an offset are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The frame runs past the end of the bytes (a torn write).
    Truncated,
    /// The length field is above [`RECORD_PAYLOAD_BYTES_MAX`].
    TooLarge(u32),
    BadChecksum,
}

impl FrameError {
    pub(crate) fn describe(&self) -> String {
        match self {
            FrameError::Truncated => "the frame runs past the end of the file".to_string(),
            FrameError::TooLarge(len) => format!("the frame length {len} is above the limit"),
            FrameError::BadChecksum => "the frame checksum does not match".to_string(),
        }
    }
}

pub(crate) fn decode_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if (bytes.len() as u64) < FRAME_HEADER_BYTES {
        return Err(FrameError::Truncated);
    }
    let payload_len = u32_at(bytes, 0);
    if payload_len > RECORD_PAYLOAD_BYTES_MAX {
        return Err(FrameError::TooLarge(payload_len));
    }
    let total = frame_bytes(payload_len as usize);
    if (bytes.len() as u64) < total {
        return Err(FrameError::Truncated);
    }
    let index = u64_at(bytes, 8);
    let payload = &bytes[FRAME_HEADER_BYTES as usize..total as usize];
    if frame_crc(payload_len, index, payload) != u32_at(bytes, 4) {
        return Err(FrameError::BadChecksum);
    }
    Ok(Frame {
        index,
        payload,
        frame_bytes: total,
    })
}

/// The header of a snapshot file whose stored payload (after the header) is `payload`, in
/// format `version`.
#[cfg(test)]
pub(crate) fn encode_snapshot_header(
    index: u64,
    version: u32,
    payload: &[u8],
) -> [u8; SNAPSHOT_HEADER_BYTES as usize] {
    sealed_snapshot_header(
        index,
        version,
        payload.len() as u64,
        crc32c::crc32c(payload),
    )
}

/// The header of a snapshot file whose stored payload is `payload_len` bytes with CRC32C
/// `payload_crc`, in format `version`.
pub(crate) fn sealed_snapshot_header(
    index: u64,
    version: u32,
    payload_len: u64,
    payload_crc: u32,
) -> [u8; SNAPSHOT_HEADER_BYTES as usize] {
    let mut header = [0u8; SNAPSHOT_HEADER_BYTES as usize];
    header[0..4].copy_from_slice(&SNAPSHOT_MAGIC);
    header[4..8].copy_from_slice(&version.to_le_bytes());
    header[8..16].copy_from_slice(&index.to_le_bytes());
    header[16..24].copy_from_slice(&payload_len.to_le_bytes());
    header[24..28].copy_from_slice(&payload_crc.to_le_bytes());
    let crc = crc32c::crc32c(&header[0..28]);
    header[28..32].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Why a snapshot file does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SnapshotError {
    Header(HeaderError),
    LengthMismatch { header: u64, actual: u64 },
    PayloadChecksum,
}

impl SnapshotError {
    pub(crate) fn describe(&self) -> String {
        match self {
            SnapshotError::Header(error) => error.describe(),
            SnapshotError::LengthMismatch { header, actual } => {
                format!("the header promises {header} payload bytes but the file holds {actual}")
            }
            SnapshotError::PayloadChecksum => "the payload checksum does not match".to_string(),
        }
    }
}

/// `(index, payload)` of a whole snapshot file, checked end to end.
/// A verified snapshot file: its index, format version and stored payload.
pub(crate) fn decode_snapshot(bytes: &[u8]) -> Result<(u64, u32, &[u8]), SnapshotError> {
    let version = check_magic_and_version(
        bytes,
        SNAPSHOT_MAGIC,
        SNAPSHOT_HEADER_BYTES,
        &[FORMAT_VERSION, SNAPSHOT_VERSION_LZ4],
    )
    .map_err(SnapshotError::Header)?;
    if crc32c::crc32c(&bytes[0..28]) != u32_at(bytes, 28) {
        return Err(SnapshotError::Header(HeaderError::BadChecksum));
    }
    let payload = &bytes[SNAPSHOT_HEADER_BYTES as usize..];
    let promised = u64_at(bytes, 16);
    if promised != payload.len() as u64 {
        return Err(SnapshotError::LengthMismatch {
            header: promised,
            actual: payload.len() as u64,
        });
    }
    if crc32c::crc32c(payload) != u32_at(bytes, 24) {
        return Err(SnapshotError::PayloadChecksum);
    }
    Ok((u64_at(bytes, 8), version, payload))
}

pub(crate) fn encode_meta(value: &[u8]) -> Vec<u8> {
    assert!(
        value.len() <= META_BYTES_MAX as usize,
        "meta size is checked before encoding"
    );
    let len = value.len() as u32;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), value);
    let mut bytes = Vec::with_capacity(META_HEADER_BYTES as usize + value.len());
    bytes.extend_from_slice(&META_MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes.extend_from_slice(value);
    bytes
}

/// Why a meta file does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetaError {
    Header(HeaderError),
    Damaged,
}

pub(crate) fn decode_meta(bytes: &[u8]) -> Result<&[u8], MetaError> {
    check_magic_and_version(bytes, META_MAGIC, META_HEADER_BYTES, &[FORMAT_VERSION])
        .map_err(MetaError::Header)?;
    let len = u32_at(bytes, 8);
    let value = &bytes[META_HEADER_BYTES as usize..];
    if value.len() as u64 != len as u64 {
        return Err(MetaError::Damaged);
    }
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), value);
    if crc != u32_at(bytes, 12) {
        return Err(MetaError::Damaged);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: a frame round-trips, and every single-bit flip anywhere in it is rejected.
    /// Method: encode one frame, flip each bit in turn, decode.
    #[test]
    fn frame_round_trip_and_every_bit_flip_is_caught() {
        let mut buffer = Vec::new();
        encode_frame(&mut buffer, 42, b"hello");
        let frame = decode_frame(&buffer).unwrap();
        assert_eq!(
            (frame.index, frame.payload, frame.frame_bytes),
            (42, &b"hello"[..], 21)
        );
        for bit in 0..buffer.len() * 8 {
            let mut damaged = buffer.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_frame(&damaged).is_err(),
                "flip of bit {bit} went unnoticed"
            );
        }
    }

    /// Goal: a header of all zeroes (a preallocated tail) is never a valid frame, whatever the
    /// index, which recovery relies on to skip zero runs quickly.
    #[test]
    fn all_zero_frame_header_is_invalid() {
        assert!(decode_frame(&[0u8; 64]).is_err());
    }

    /// Goal: names parse back to their number and foreign names are ignored.
    #[test]
    fn numbered_names() {
        assert_eq!(numbered_name(LOG_PREFIX, 255), "log.00000000000000ff");
        assert_eq!(
            parse_numbered_name(LOG_PREFIX, "log.00000000000000ff"),
            Some(255)
        );
        assert_eq!(parse_numbered_name(LOG_PREFIX, "log.1a"), Some(26));
        assert_eq!(parse_numbered_name(LOG_PREFIX, "log.1a.tmp"), None);
        assert_eq!(parse_numbered_name(LOG_PREFIX, "log."), None);
        assert_eq!(parse_numbered_name(LOG_PREFIX, "snapshot.1"), None);
    }

    /// Goal: snapshot and meta encodings verify, and damage is reported.
    #[test]
    fn snapshot_and_meta_round_trip() {
        let mut file = encode_snapshot_header(7, FORMAT_VERSION, b"state").to_vec();
        file.extend_from_slice(b"state");
        assert_eq!(
            decode_snapshot(&file),
            Ok((7, FORMAT_VERSION, &b"state"[..]))
        );
        file[34] ^= 1;
        assert_eq!(decode_snapshot(&file), Err(SnapshotError::PayloadChecksum));
        let meta = encode_meta(b"vote");
        assert_eq!(decode_meta(&meta), Ok(&b"vote"[..]));
        assert_eq!(
            decode_meta(&meta[..meta.len() - 1]),
            Err(MetaError::Damaged)
        );
    }
}
