//! Property tests of recovery: damage a written log at random, reopen, and check the outcome
//! against an oracle that reads the file layout independently of the crate's own scanner.

mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rzk_storage::{Record, StorageError, Wal, WalOptions};

const SEGMENT_HEADER_BYTES: u64 = 20;
const FRAME_HEADER_BYTES: u64 = 16;

#[derive(Debug, Clone)]
enum Damage {
    /// Cut the last segment at `fraction` of its length.
    TruncateLast { fraction: f64 },
    /// Flip one bit in segment `file % count`, at `fraction` of its length.
    FlipBit { file: usize, fraction: f64, bit: u8 },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0.0..=1.0f64).prop_map(|fraction| Damage::TruncateLast { fraction }),
        (any::<usize>(), 0.0..1.0f64, 0u8..8).prop_map(|(file, fraction, bit)| Damage::FlipBit {
            file,
            fraction,
            bit
        }),
    ]
}

/// One segment as the oracle sees it: path, length, and the `[start, end)` of each frame.
struct Layout {
    path: PathBuf,
    len: u64,
    frames: Vec<(u64, u64)>,
}

fn layouts(dir: &Path, records: &[Record]) -> Vec<Layout> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir.join("version-2"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("log.")
        })
        .collect();
    paths.sort();
    let mut next = 0usize;
    paths
        .into_iter()
        .map(|path| {
            let first: u64 =
                u64::from_str_radix(&path.file_name().unwrap().to_string_lossy()[4..], 16).unwrap();
            let len = std::fs::metadata(&path).unwrap().len();
            let mut frames = Vec::new();
            let mut offset = SEGMENT_HEADER_BYTES;
            while next < records.len() && records[next].index >= first {
                let end = offset + FRAME_HEADER_BYTES + records[next].payload.len() as u64;
                if end > len || (frames.len() as u64 + first) != records[next].index {
                    break;
                }
                frames.push((offset, end));
                offset = end;
                next += 1;
            }
            Layout { path, len, frames }
        })
        .collect()
}

/// What reopening must give.
#[derive(Debug, PartialEq)]
enum Expected {
    /// Exactly these many records, and whether a truncated tail is reported.
    Records { count: usize, tail_reported: bool },
    /// Refusal naming this file.
    Refused { path: PathBuf },
}

fn expected(layouts: &[Layout], damage: &Damage) -> (PathBuf, u64, Option<u8>, Expected) {
    let total: usize = layouts.iter().map(|layout| layout.frames.len()).sum();
    let last = layouts.last().unwrap();
    let before_last = total - last.frames.len();
    match damage {
        Damage::TruncateLast { fraction } => {
            let cut = (last.len as f64 * fraction) as u64;
            let outcome = if cut < SEGMENT_HEADER_BYTES {
                Expected::Records {
                    count: before_last,
                    tail_reported: true,
                }
            } else {
                let whole = last.frames.iter().filter(|(_, end)| *end <= cut).count();
                // A cut inside a frame is reported, unless the bytes it leaves of that frame
                // are all zero: those look exactly like a preallocated tail (no data is lost
                // either way, since the frame is dropped).
                let bytes = std::fs::read(&last.path).unwrap();
                let inside = last.frames.iter().any(|(start, end)| {
                    let torn = *start < cut && cut < *end;
                    torn && bytes[*start as usize..cut as usize]
                        .iter()
                        .any(|byte| *byte != 0)
                });
                Expected::Records {
                    count: before_last + whole,
                    tail_reported: inside,
                }
            };
            (last.path.clone(), cut, None, outcome)
        }
        Damage::FlipBit {
            file,
            fraction,
            bit,
        } => {
            let position = file % layouts.len();
            let layout = &layouts[position];
            let offset = ((layout.len as f64 * fraction) as u64).min(layout.len - 1);
            let is_last_file = position + 1 == layouts.len();
            let frame = layout
                .frames
                .iter()
                .position(|(start, end)| *start <= offset && offset < *end);
            let outcome = match frame {
                _ if offset < SEGMENT_HEADER_BYTES => Expected::Refused {
                    path: layout.path.clone(),
                },
                Some(frame) if is_last_file && frame + 1 == layout.frames.len() => {
                    Expected::Records {
                        count: total - 1,
                        tail_reported: true,
                    }
                }
                Some(_) => Expected::Refused {
                    path: layout.path.clone(),
                },
                // Past the last frame: the preallocated tail of the last segment.
                None => Expected::Records {
                    count: total,
                    tail_reported: true,
                },
            };
            (layout.path.clone(), offset, Some(*bit), outcome)
        }
    }
}

fn apply(path: &Path, offset: u64, bit: Option<u8>) {
    match bit {
        None => std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(offset)
            .unwrap(),
        Some(bit) => {
            let mut bytes = std::fs::read(path).unwrap();
            bytes[offset as usize] ^= 1 << bit;
            std::fs::write(path, bytes).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Goal: recovery never panics and never returns wrong data: it gives all records, a
    /// prefix with a truncated-tail report (damage in the last frame), or a refusal (damage
    /// before the tail), exactly as the oracle predicts.
    /// Method: write N records (random sizes, small segments, with or without preallocation),
    /// close, apply one random damage, reopen, compare with the oracle; then reopen again to
    /// check the repaired log is stable.
    #[test]
    fn recovery_after_random_damage(
        sizes in prop::collection::vec(0usize..120, 1..60),
        first_index in 0u64..3,
        segment_bytes_max in 150u64..1500,
        preallocate in any::<bool>(),
        damage in damage(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let options = WalOptions { force_sync: false, segment_bytes_max, preallocate_bytes: if preallocate { 700 } else { 0 } };
        let records: Vec<Record> = sizes
            .iter()
            .enumerate()
            .map(|(position, size)| {
                let index = first_index + position as u64;
                Record { index, payload: (0..*size).map(|byte| (byte as u64 * 13 + index) as u8).collect() }
            })
            .collect();
        {
            let (wal, _) = Wal::open(dir.path(), options.clone()).unwrap();
            for batch in records.chunks(7) {
                common::append_durable(&wal, batch.to_vec()).unwrap();
            }
        }
        let layouts = layouts(dir.path(), &records);
        prop_assert_eq!(layouts.iter().map(|layout| layout.frames.len()).sum::<usize>(), records.len());
        let (path, offset, bit, outcome) = expected(&layouts, &damage);
        apply(&path, offset, bit);
        match (Wal::open(dir.path(), options.clone()), outcome) {
            (Ok((wal, report)), Expected::Records { count, tail_reported }) => {
                prop_assert_eq!(wal.read(0, u64::MAX).unwrap(), records[..count].to_vec());
                prop_assert_eq!(report.truncated_tail.is_some(), tail_reported, "report {:?}", report);
                drop(wal);
                let (wal, report) = Wal::open(dir.path(), options).unwrap();
                prop_assert_eq!(report.truncated_tail, None, "the repair is durable");
                prop_assert_eq!(wal.read(0, u64::MAX).unwrap(), records[..count].to_vec());
            }
            (Err(StorageError::Corrupt { path: reported, .. }), Expected::Refused { path })
            | (Err(StorageError::UnknownVersion { path: reported, .. }), Expected::Refused { path }) => {
                prop_assert_eq!(reported, path);
            }
            (Ok((wal, report)), outcome) => {
                let read = wal.read(0, u64::MAX).unwrap();
                prop_assert!(false, "expected {:?}, got {} records, report {:?}", outcome, read.len(), report);
            }
            (Err(error), outcome) => prop_assert!(false, "expected {:?}, got error {}", outcome, error),
        }
    }
}
