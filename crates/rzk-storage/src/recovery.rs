//! Opening a log directory: scan every segment, verify every frame (the read-side half of the
//! pair assertion), truncate a torn or corrupt tail, refuse damage before the tail.
//!
//! The rule that separates the two kinds of damage: a frame that does not verify is the *tail*
//! when nothing valid follows it (no frame with a good checksum and an index at or above the one
//! expected, in this segment or any later one). A crash mid-write can only leave that shape.
//! Anything else means records the log once acknowledged would be lost or skipped, so recovery
//! refuses to start and says where.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::files::{preallocate, sync_dir, IoContext};
use crate::format::{
    decode_frame, decode_segment_header, list_numbered, HeaderError, FRAME_HEADER_BYTES,
    LOG_PREFIX, SEGMENT_HEADER_BYTES,
};
use crate::{RecoveryReport, StorageError};

/// Where one record lives on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    /// The segment, named by its first index.
    pub(crate) segment: u64,
    pub(crate) offset: u64,
    /// Header plus payload.
    pub(crate) frame_bytes: u32,
}

/// One segment as recovery leaves it: verified up to `end_offset`, open for reading and writing.
pub(crate) struct RecoveredSegment {
    pub(crate) first_index: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    /// Just past the last valid frame.
    pub(crate) end_offset: u64,
    /// One past the index of the last frame (equals `first_index` when empty).
    pub(crate) next_index: u64,
}

pub(crate) struct Recovered {
    pub(crate) segments: Vec<RecoveredSegment>,
    /// Readable records (above the purge watermark), in index order, starting at `first_index`.
    pub(crate) locations: Vec<Location>,
    pub(crate) first_index: u64,
    /// The index the next append must carry (`None`: the log never held a record).
    pub(crate) next_index: Option<u64>,
    pub(crate) report: RecoveryReport,
}

/// What scanning one segment found.
struct Scan {
    locations: Vec<Location>,
    end_offset: u64,
    next_index: u64,
    /// Offset and description of the first frame that does not verify.
    damage: Option<(u64, String)>,
}

const WHAT_TO_DO: &str = "restore the data directory from a healthy replica or a backup (or move this file away if the records in it are not needed)";

pub(crate) fn recover(
    dir: &Path,
    purged_upto: Option<u64>,
    preallocate_bytes: u64,
) -> Result<Recovered, StorageError> {
    let listed = list_numbered(dir, LOG_PREFIX).at(dir)?;
    let mut report = RecoveryReport::default();
    let mut segments: Vec<RecoveredSegment> = Vec::new();
    let mut locations = Vec::new();
    for (position, (named_index, path)) in listed.iter().enumerate() {
        let bytes = std::fs::read(path).at(path)?;
        let is_last = position + 1 == listed.len();
        let first_index = match decode_segment_header(&bytes) {
            Ok(first_index) => first_index,
            Err(HeaderError::Short) if is_last => {
                // A segment's header is written before its name appears (temp + rename), so a
                // short last segment holds no record; drop it like any torn tail.
                tracing::warn!(path = %path.display(), offset = 0, "log segment shorter than its header: removing it");
                std::fs::remove_file(path).at(path)?;
                sync_dir(dir)?;
                report.truncated_tail = Some((path.clone(), 0));
                break;
            }
            Err(HeaderError::UnknownVersion(version)) => {
                return Err(StorageError::UnknownVersion {
                    path: path.clone(),
                    version,
                });
            }
            Err(error) => {
                return Err(corrupt(
                    path,
                    0,
                    &format!("segment header: {}", error.describe()),
                ))
            }
        };
        check_segment_chain(path, *named_index, first_index, segments.last())?;
        let scan = scan_segment(&bytes, first_index);
        locations.extend(scan.locations.iter().map(|location| Location {
            segment: first_index,
            ..*location
        }));
        if let Some((offset, what)) = &scan.damage {
            let later_paths: Vec<&PathBuf> = listed[position + 1..]
                .iter()
                .map(|(_, path)| path)
                .collect();
            if let Some(valid_at) = find_valid_frame(&bytes, offset + 1, scan.next_index) {
                let what = format!("{what}; a valid frame follows at offset {valid_at}");
                return Err(corrupt(path, *offset, &what));
            }
            if let Some(later) = first_later_segment_with_frames(&later_paths)? {
                let what = format!(
                    "{what}; the later segment {} holds records",
                    later.display()
                );
                return Err(corrupt(path, *offset, &what));
            }
            truncate_tail(dir, path, *offset, preallocate_bytes, what, &later_paths)?;
            report.truncated_tail = Some((path.clone(), *offset));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .at(path)?;
        segments.push(RecoveredSegment {
            first_index,
            path: path.clone(),
            file,
            end_offset: scan.end_offset,
            next_index: scan.next_index,
        });
        if scan.damage.is_some() {
            break;
        }
    }
    finish(dir, segments, locations, purged_upto, report)
}

fn corrupt(path: &Path, offset: u64, what: &str) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what: format!("{what}. To start: {WHAT_TO_DO}"),
    }
}

fn check_segment_chain(
    path: &Path,
    named_index: u64,
    first_index: u64,
    previous: Option<&RecoveredSegment>,
) -> Result<(), StorageError> {
    if named_index != first_index {
        let what = format!(
            "the file name says first index {named_index} but the header says {first_index}"
        );
        return Err(corrupt(path, 0, &what));
    }
    match previous {
        Some(previous) if previous.next_index != first_index => {
            let what = format!(
                "the segment starts at index {first_index} but the previous segment {} ends before index {}",
                previous.path.display(),
                previous.next_index
            );
            Err(corrupt(path, 0, &what))
        }
        _ => Ok(()),
    }
}

/// Verify frames from the header on, stopping at the clean end (end of file or an all-zero
/// preallocated tail) or at the first frame that does not verify.
fn scan_segment(bytes: &[u8], first_index: u64) -> Scan {
    let mut scan = Scan {
        locations: Vec::new(),
        end_offset: SEGMENT_HEADER_BYTES,
        next_index: first_index,
        damage: None,
    };
    let mut offset = SEGMENT_HEADER_BYTES as usize;
    while offset < bytes.len() {
        let what = match decode_frame(&bytes[offset..]) {
            Ok(frame) if frame.index == scan.next_index => {
                scan.locations.push(Location {
                    segment: first_index,
                    offset: offset as u64,
                    frame_bytes: frame.frame_bytes as u32,
                });
                offset += frame.frame_bytes as usize;
                scan.end_offset = offset as u64;
                scan.next_index += 1;
                continue;
            }
            Ok(frame) => format!(
                "the frame holds index {} where {} was expected",
                frame.index, scan.next_index
            ),
            Err(error) => error.describe(),
        };
        if bytes[offset..].iter().any(|byte| *byte != 0) {
            scan.damage = Some((offset as u64, what));
        }
        break;
    }
    scan
}

/// The offset of a frame at or after `from` that verifies and carries an index of at least
/// `index_min`: proof that damage before it is not a torn tail. Runs of zeroes are skipped
/// quickly because a frame header of sixteen zero bytes never verifies.
fn find_valid_frame(bytes: &[u8], from: u64, index_min: u64) -> Option<u64> {
    let header_bytes = FRAME_HEADER_BYTES as usize;
    let mut offset = from as usize;
    while offset + header_bytes <= bytes.len() {
        // A frame header of sixteen zero bytes never verifies, but a valid one may start with
        // zero bytes (an empty payload has length 0): skip only whole zero headers.
        if bytes[offset..offset + header_bytes]
            .iter()
            .all(|byte| *byte == 0)
        {
            let next_nonzero = bytes[offset..].iter().position(|byte| *byte != 0)? + offset;
            // A valid header has a nonzero byte among its 16, so it starts at most 15 before.
            offset = next_nonzero
                .saturating_sub(header_bytes - 1)
                .max(offset + 1);
            continue;
        }
        if let Ok(frame) = decode_frame(&bytes[offset..]) {
            if frame.index >= index_min {
                return Some(offset as u64);
            }
        }
        offset += 1;
    }
    None
}

fn first_later_segment_with_frames<'a>(
    later: &[&'a PathBuf],
) -> Result<Option<&'a PathBuf>, StorageError> {
    for path in later {
        let bytes = std::fs::read(path).at(path)?;
        if bytes.len() as u64 > SEGMENT_HEADER_BYTES
            && find_valid_frame(&bytes, SEGMENT_HEADER_BYTES, 0).is_some()
        {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Cut a torn tail off durably, and drop later segments that hold no record.
fn truncate_tail(
    dir: &Path,
    path: &Path,
    offset: u64,
    preallocate_bytes: u64,
    what: &str,
    later: &[&PathBuf],
) -> Result<(), StorageError> {
    tracing::warn!(path = %path.display(), offset, what, "torn or corrupt last record in the log: truncating the log there");
    let file = OpenOptions::new().write(true).open(path).at(path)?;
    file.set_len(offset).at(path)?;
    if preallocate_bytes > offset && !preallocate(&file, offset, preallocate_bytes - offset) {
        tracing::warn!(path = %path.display(), "could not preallocate the log segment again; continuing without");
    }
    file.sync_all().at(path)?;
    for later_path in later {
        tracing::warn!(path = %later_path.display(), "removing a log segment after the torn tail; it holds no record");
        std::fs::remove_file(later_path).at(later_path)?;
    }
    if !later.is_empty() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Apply the purge watermark (finishing a purge a crash interrupted) and derive the indexes.
fn finish(
    dir: &Path,
    mut segments: Vec<RecoveredSegment>,
    mut locations: Vec<Location>,
    purged_upto: Option<u64>,
    mut report: RecoveryReport,
) -> Result<Recovered, StorageError> {
    let mut first_index = segments.first().map_or(0, |segment| segment.first_index);
    if let Some(purged) = purged_upto {
        let purged_count = purged
            .saturating_add(1)
            .saturating_sub(first_index)
            .min(locations.len() as u64);
        locations.drain(..purged_count as usize);
        first_index = first_index.max(purged.saturating_add(1));
        let removable = segments
            .iter()
            .take_while(|segment| segment.next_index <= purged.saturating_add(1))
            .count();
        for segment in segments.drain(..removable) {
            tracing::info!(path = %segment.path.display(), "removing a log segment below the purge point");
            std::fs::remove_file(&segment.path).at(&segment.path)?;
        }
        if removable > 0 {
            sync_dir(dir)?;
        }
    }
    let next_index = match (segments.last(), purged_upto) {
        (Some(last), _) => Some(last.next_index),
        (None, Some(purged)) => Some(purged.saturating_add(1)),
        (None, None) => None,
    };
    if !locations.is_empty() {
        report.first_index = Some(first_index);
        report.last_index = Some(first_index + locations.len() as u64 - 1);
        assert_eq!(
            report.last_index.map(|last| last + 1),
            next_index,
            "recovered records end where appends resume"
        );
    }
    Ok(Recovered {
        segments,
        locations,
        first_index,
        next_index,
        report,
    })
}
