//! Snapshot files: `<dir>/version-2/snapshot.<16 hex index>`, each written atomically and sealed
//! with a checksum, so a reader either gets the exact bytes that were saved or skips the file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use crate::files::{create_dir_durable, remove_temp_files, sync_dir, temp_path, IoContext};
use crate::format::{
    decode_snapshot, list_numbered, numbered_name, sealed_snapshot_header, HeaderError,
    SnapshotError, SNAPSHOT_HEADER_BYTES, SNAPSHOT_PREFIX, SNAPSHOT_VERSION_LZ4,
};
use crate::{StorageError, VERSION_DIR};

/// One snapshot file as listed (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The log index the snapshot was taken at (its name).
    pub index: u64,
    pub path: PathBuf,
    /// File size, header included.
    pub file_bytes: u64,
}

/// Snapshot files in `<dir>/version-2/snapshot.<hex index>`.
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// Open (creating if needed) `<dir>/version-2/`, removing temp files of interrupted saves.
    pub fn open(dir: &Path) -> Result<SnapshotStore, StorageError> {
        let dir = dir.join(VERSION_DIR);
        create_dir_durable(&dir)?;
        remove_temp_files(&dir)?;
        Ok(SnapshotStore { dir })
    }

    /// Write a snapshot taken at log `index` atomically (temp file, fsync, rename, fsync dir).
    /// Saving the same index again replaces the file.
    pub fn save(&self, index: u64, bytes: &[u8]) -> Result<PathBuf, StorageError> {
        self.save_parts(index, &[bytes])
    }

    /// [`SnapshotStore::save`] of the concatenation of `parts`, without concatenating them in
    /// memory first (a snapshot is the whole state: one copy less of it).
    pub fn save_parts(&self, index: u64, parts: &[&[u8]]) -> Result<PathBuf, StorageError> {
        let path = self.save_streamed(index, |out| {
            parts.iter().try_for_each(|part| out.write_all(part))
        })?;
        // Pair assertion: what is on disk now verifies and holds the same bytes.
        debug_assert!(
            matches!(read_snapshot(&path, index), Ok(Some(ref read)) if *read == parts.concat())
        );
        Ok(path)
    }

    /// Save the snapshot taken at log `index` atomically (temp file, fsync, rename, fsync dir)
    /// as `write` produces its bytes, whose length need not be known in advance: they are
    /// compressed and checksummed on their way to the file, so the whole state is never in
    /// memory at once. An error from `write` (its own, or the file's, such as a full disk)
    /// fails the save and leaves no file behind.
    pub fn save_streamed(
        &self,
        index: u64,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<PathBuf, StorageError> {
        let path = self.dir.join(numbered_name(SNAPSHOT_PREFIX, index));
        let temp = temp_path(&path);
        let saved = write_snapshot_file(&temp, index, write).and_then(|len| {
            std::fs::rename(&temp, &path).at(&path)?;
            sync_dir(&self.dir)?;
            Ok(len)
        });
        match saved {
            Err(error) => {
                // Best effort: the temp file is garbage now, and open() removes leftovers anyway.
                let _ = std::fs::remove_file(&temp);
                Err(error)
            }
            Ok(len) => {
                // Pair assertion: what is on disk now verifies, names the same index and holds
                // as many bytes as were written. Cheap next to writing the snapshot, and it
                // catches a broken encoder before anyone relies on it.
                debug_assert!(
                    matches!(read_snapshot(&path, index), Ok(Some(ref read)) if read.len() as u64 == len)
                );
                Ok(path)
            }
        }
    }

    /// Every snapshot file, oldest first.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, StorageError> {
        list_snapshots(&self.dir)
    }

    /// The newest snapshot that reads back whole (checksum verified), with its index. Damaged
    /// snapshots are skipped with a warning. A snapshot in an unknown format version stops the
    /// search with `UnknownVersion`, because falling back past it would silently go back in time.
    pub fn load_latest(&self) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        for info in self.list()?.into_iter().rev() {
            if let Some(bytes) = read_snapshot(&info.path, info.index)? {
                return Ok(Some((info.index, bytes)));
            }
        }
        Ok(None)
    }

    /// The snapshot at exactly `index`, if present and whole.
    pub fn load(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.dir.join(numbered_name(SNAPSHOT_PREFIX, index));
        if !path.exists() {
            return Ok(None);
        }
        read_snapshot(&path, index)
    }

    /// Delete every snapshot older than the newest `keep` whole ones (damaged ones do not count
    /// towards `keep` and are deleted when older than the oldest kept). Returns the paths removed.
    pub fn purge_keep(&self, keep: usize) -> Result<Vec<PathBuf>, StorageError> {
        let kept = newest_valid_snapshots(&self.dir, keep)?;
        let Some(oldest_kept) = kept.first().map(|info| info.index) else {
            return Ok(Vec::new());
        };
        remove_snapshots_below(&self.dir, oldest_kept)
    }

    /// The directory holding the files (`<dir>/version-2`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

pub(crate) fn list_snapshots(dir: &Path) -> Result<Vec<SnapshotInfo>, StorageError> {
    let mut infos = Vec::new();
    for (index, path) in list_numbered(dir, SNAPSHOT_PREFIX).at(dir)? {
        let file_bytes = std::fs::metadata(&path).at(&path)?.len();
        infos.push(SnapshotInfo {
            index,
            path,
            file_bytes,
        });
    }
    Ok(infos)
}

/// How much compressed output is gathered before a write to the file.
const FILE_BUFFER_BYTES: usize = 256 * 1024;

/// A snapshot file: the header, then the state compressed as one LZ4 frame. The state bytes of
/// a znode tree compress well (paths share prefixes, values repeat), and LZ4 decompresses at
/// memory speed, so restarts do not wait on it. The header, which seals the compressed bytes
/// with their length and checksum, is written last, over room left for it. Returns how many
/// state bytes `write` wrote.
fn write_snapshot_file(
    temp: &Path,
    index: u64,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<u64, StorageError> {
    let mut file = File::create(temp).at(temp)?;
    file.write_all(&[0; SNAPSHOT_HEADER_BYTES as usize])
        .at(temp)?;
    let mut sink = Sealing {
        file: BufWriter::with_capacity(FILE_BUFFER_BYTES, file),
        crc: 0,
        len: 0,
    };
    // The frame does not state the state's length (not known until the end); a reader sizes
    // its buffer from the frame's blocks instead (see `decompressed_len_hint`).
    let mut encoder = lz4_flex::frame::FrameEncoder::new(&mut sink);
    let mut counted = Counted {
        inner: &mut encoder,
        len: 0,
    };
    write(&mut counted).at(temp)?;
    let written = counted.len;
    encoder.finish().map_err(io::Error::from).at(temp)?;
    // The header seals what is on disk: the compressed bytes, not the state.
    let Sealing {
        file,
        crc: payload_crc,
        len: payload_len,
    } = sink;
    let file = file.into_inner().map_err(|e| e.into_error()).at(temp)?;
    let header = sealed_snapshot_header(index, SNAPSHOT_VERSION_LZ4, payload_len, payload_crc);
    file.write_all_at(&header, 0).at(temp)?;
    file.sync_all().at(temp)?;
    Ok(written)
}

/// Passes bytes to the file, keeping their length and checksum for the header.
struct Sealing {
    file: BufWriter<File>,
    crc: u32,
    len: u64,
}

impl Write for Sealing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.file.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..written]);
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Counts what a snapshot source writes (the length of the state in the file).
struct Counted<W> {
    inner: W,
    len: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The state bytes of a whole snapshot; `None` (with a warning) when it is damaged.
pub(crate) fn read_snapshot(path: &Path, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
    let mut bytes = std::fs::read(path).at(path)?;
    match decode_snapshot(&bytes) {
        Ok((header_index, SNAPSHOT_VERSION_LZ4, payload)) if header_index == index => {
            let mut state = Vec::with_capacity(decompressed_len_hint(payload));
            let mut decoder = lz4_flex::frame::FrameDecoder::new(payload);
            match std::io::Read::read_to_end(&mut decoder, &mut state) {
                Ok(_) => Ok(Some(state)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "damaged snapshot (its checksum matches but it does not decompress); skipping it");
                    Ok(None)
                }
            }
        }
        Ok((header_index, _, _)) if header_index == index => {
            bytes.drain(..SNAPSHOT_HEADER_BYTES as usize);
            Ok(Some(bytes))
        }
        Ok((header_index, _, _)) => {
            tracing::warn!(path = %path.display(), header_index, "snapshot header names another index; skipping it");
            Ok(None)
        }
        Err(SnapshotError::Header(HeaderError::UnknownVersion(version))) => {
            Err(StorageError::UnknownVersion {
                path: path.to_path_buf(),
                version,
            })
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), what = error.describe(), "damaged snapshot; skipping it");
            Ok(None)
        }
    }
}

/// LZ4 never expands more than 255 to 1: a larger content size in a frame header is not trusted
/// for an allocation (the decoder then fails on it).
const LZ4_RATIO_MAX: usize = 255;

/// How many bytes an LZ4 frame decompresses to, for the buffer it is read into: the content
/// size its header states (frames written before rzk's snapshots were streamed), else the
/// frame's blocks times its block size (at most one block over: every block but the last is
/// full), else twice the frame (the buffer grows). Only a hint: never more than LZ4 can expand
/// the frame to, whatever its header claims.
fn decompressed_len_hint(frame: &[u8]) -> usize {
    const MAGIC: [u8; 4] = 0x184D_2204_u32.to_le_bytes();
    const FLG_CONTENT_SIZE: u8 = 0x08;
    const FLG_BLOCK_CHECKSUM: u8 = 0x10;
    const FLG_DICTIONARY: u8 = 0x01;
    const BLOCK_UNCOMPRESSED: u32 = 0x8000_0000;
    let limit = frame.len().saturating_mul(LZ4_RATIO_MAX);
    let estimate = frame.len().saturating_mul(2);
    let (Some(magic), Some(&flg), Some(&bd)) = (frame.get(..4), frame.get(4), frame.get(5)) else {
        return estimate;
    };
    if magic != MAGIC {
        return estimate;
    }
    if flg & FLG_CONTENT_SIZE != 0 {
        let Some(size) = frame.get(6..14) else {
            return estimate;
        };
        let size = u64::from_le_bytes(size.try_into().expect("8 bytes"));
        return match usize::try_from(size) {
            Ok(size) if size <= limit => size,
            _ => estimate,
        };
    }
    let block_max = match (bd >> 4) & 0x7 {
        4 => 64 << 10,
        5 => 256 << 10,
        6 => 1 << 20,
        7 => 4 << 20,
        _ => return estimate,
    };
    let checksum = if flg & FLG_BLOCK_CHECKSUM != 0 { 4 } else { 0 };
    // Magic, FLG, BD, the dictionary id if any, and the header checksum.
    let mut at = 4 + 2 + if flg & FLG_DICTIONARY != 0 { 4 } else { 0 } + 1;
    let mut blocks = 0usize;
    while let Some(size) = frame.get(at..at + 4) {
        let size = u32::from_le_bytes(size.try_into().expect("4 bytes")) & !BLOCK_UNCOMPRESSED;
        if size == 0 {
            return blocks.saturating_mul(block_max).min(limit);
        }
        blocks += 1;
        at = at.saturating_add(4 + size as usize + checksum);
    }
    estimate
}

/// The newest `keep` snapshots that verify, oldest first (fewer if fewer verify).
pub(crate) fn newest_valid_snapshots(
    dir: &Path,
    keep: usize,
) -> Result<Vec<SnapshotInfo>, StorageError> {
    let mut kept = Vec::new();
    for info in list_snapshots(dir)?.into_iter().rev() {
        if kept.len() == keep {
            break;
        }
        if read_snapshot(&info.path, info.index)?.is_some() {
            kept.push(info);
        }
    }
    kept.reverse();
    Ok(kept)
}

pub(crate) fn remove_snapshots_below(dir: &Path, index: u64) -> Result<Vec<PathBuf>, StorageError> {
    let mut removed = Vec::new();
    for info in list_snapshots(dir)? {
        if info.index < index {
            std::fs::remove_file(&info.path).at(&info.path)?;
            removed.push(info.path);
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_snapshot_header, FORMAT_VERSION};

    fn state() -> Vec<u8> {
        // Like a tree's encoding: repeated path prefixes and values.
        (0..20_000u32)
            .flat_map(|i| format!("/app/config/node-{i:08}=value-value-value;").into_bytes())
            .collect()
    }

    #[test]
    fn snapshots_are_stored_compressed_and_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        let state = state();
        let path = store.save(42, &state).unwrap();
        let file_bytes = std::fs::metadata(&path).unwrap().len();
        assert!(
            file_bytes * 3 < state.len() as u64,
            "{file_bytes} bytes on disk for {} bytes of state",
            state.len()
        );
        assert_eq!(store.load(42).unwrap(), Some(state.clone()));
        assert_eq!(store.load_latest().unwrap(), Some((42, state)));
    }

    // Goal: a snapshot streamed in pieces reads back exactly; a source that fails leaves no file
    // (nor temp file) and the previous snapshot stays the newest.
    #[test]
    fn streamed_snapshots_read_back_and_failed_ones_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        let state = state();
        store
            .save_streamed(10, |out| {
                state
                    .chunks(1000)
                    .try_for_each(|piece| out.write_all(piece))
            })
            .unwrap();
        assert_eq!(store.load(10).unwrap(), Some(state.clone()));

        let failed = store.save_streamed(11, |out| {
            out.write_all(&state[..5000])?;
            Err(io::Error::other("source gave up (test)"))
        });
        let error = failed.unwrap_err().to_string();
        assert!(error.contains("source gave up (test)"), "{error}");
        let names: Vec<String> = std::fs::read_dir(store.dir())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [numbered_name(SNAPSHOT_PREFIX, 10)]);
        assert_eq!(store.load_latest().unwrap(), Some((10, state)));
    }

    #[test]
    fn uncompressed_snapshots_of_format_1_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        let state = state();
        let mut file = encode_snapshot_header(7, FORMAT_VERSION, &state).to_vec();
        file.extend_from_slice(&state);
        std::fs::write(store.dir().join(numbered_name(SNAPSHOT_PREFIX, 7)), file).unwrap();
        assert_eq!(store.load_latest().unwrap(), Some((7, state)));
    }

    // Goal: a reader sizes its buffer within one block of the state from a saved frame's blocks
    // (the frame cannot state a length it does not know when it starts), from the content size
    // of frames saved before snapshots were streamed, and never from a length LZ4 could not
    // produce; every such frame reads back.
    #[test]
    fn readers_size_their_buffer_from_the_frame() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        // Several 64 KiB blocks, not all compressible.
        let state: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | (i % 7 == 0) as u8)
            .collect();
        let path = store
            .save_parts(5, &[&state[..100], &state[100..]])
            .unwrap();
        let file = std::fs::read(path).unwrap();
        let frame = &file[SNAPSHOT_HEADER_BYTES as usize..];
        let hint = decompressed_len_hint(frame);
        assert!(
            (state.len()..state.len() + (64 << 10)).contains(&hint),
            "hint {hint} for {} bytes",
            state.len()
        );
        assert_eq!(store.load(5).unwrap(), Some(state.clone()));
        // Cut short, the blocks do not add up: the plain estimate.
        assert_eq!(decompressed_len_hint(&frame[..1000]), 2000);

        let frames = [
            lz4_flex::frame::FrameInfo::new().content_size(Some(state.len() as u64)),
            lz4_flex::frame::FrameInfo::new()
                .block_checksums(true)
                .block_size(lz4_flex::frame::BlockSize::Max256KB),
        ];
        for (index, info) in (6..).zip(frames) {
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            encoder.write_all(&state).unwrap();
            let frame = encoder.finish().unwrap();
            let hint = decompressed_len_hint(&frame);
            assert!(
                (state.len()..state.len() + (256 << 10)).contains(&hint),
                "hint {hint}"
            );
            let mut file = encode_snapshot_header(index, SNAPSHOT_VERSION_LZ4, &frame).to_vec();
            file.extend_from_slice(&frame);
            std::fs::write(
                store.dir().join(numbered_name(SNAPSHOT_PREFIX, index)),
                file,
            )
            .unwrap();
            assert_eq!(store.load(index).unwrap(), Some(state.clone()));
            if index == 6 {
                assert_eq!(hint, state.len());
                // A stated length beyond what LZ4 can expand to is not allocated.
                let mut lying = frame.clone();
                lying[6..14].copy_from_slice(&u64::MAX.to_le_bytes());
                assert_eq!(decompressed_len_hint(&lying), lying.len() * 2);
            }
        }
    }

    #[test]
    fn a_payload_that_does_not_decompress_is_skipped_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(dir.path()).unwrap();
        store.save(3, b"older state").unwrap();
        // A checksummed payload that is not an LZ4 frame (an encoder bug, not disk damage).
        let garbage = vec![0xA5u8; 64];
        let mut file = encode_snapshot_header(9, SNAPSHOT_VERSION_LZ4, &garbage).to_vec();
        file.extend_from_slice(&garbage);
        std::fs::write(store.dir().join(numbered_name(SNAPSHOT_PREFIX, 9)), file).unwrap();
        assert_eq!(store.load(9).unwrap(), None);
        assert_eq!(
            store.load_latest().unwrap(),
            Some((3, b"older state".to_vec()))
        );
    }
}
