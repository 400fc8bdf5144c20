//! Length-prefixed framing and four-letter-word detection. No buffering here: callers own
//! their buffers and call [`next_frame`] until it returns `Ok(None)` ("incomplete" is not an error).

/// `jute.maxbuffer` default: 0xfffff bytes (1 MiB - 1).
pub const JUTE_MAXBUFFER_DEFAULT: u32 = 0xfffff;

/// Bytes of the length prefix in front of every frame.
pub const LENGTH_PREFIX_BYTES: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("packet length {length} is over jute.maxbuffer ({max} bytes); raise jute.maxbuffer on server and client to send larger packets")]
    TooLong { length: u32, max: u32 },
    #[error("negative packet length {length}")]
    Negative { length: i32 },
}

/// Look for one frame at the start of `buffer`. Returns the frame body's range and the total
/// bytes consumed, `Ok(None)` if more bytes are needed, or an error before buffering a length
/// over `max_length`.
pub fn next_frame(
    buffer: &[u8],
    max_length: u32,
) -> Result<Option<(std::ops::Range<usize>, usize)>, FrameError> {
    let Some(prefix) = buffer.first_chunk::<LENGTH_PREFIX_BYTES>() else {
        return Ok(None);
    };
    let length = i32::from_be_bytes(*prefix);
    // A negative length is an error, not "wait for more": ZooKeeper closes with "Len error".
    let Ok(length_bytes) = u32::try_from(length) else {
        return Err(FrameError::Negative { length });
    };
    // Checked on the prefix alone, so a peer cannot make us buffer an oversized body.
    if length_bytes > max_length {
        return Err(FrameError::TooLong {
            length: length_bytes,
            max: max_length,
        });
    }
    // `length_bytes` is below 2^31, so this fits in usize on every supported target.
    let end = LENGTH_PREFIX_BYTES + length_bytes as usize;
    if buffer.len() < end {
        return Ok(None);
    }
    Ok(Some((LENGTH_PREFIX_BYTES..end, end)))
}

/// ZooKeeper's four-letter words (`FourLetterCommands.java`, 3.8/3.9). As big-endian ints all
/// are above 0x60000000, far over any sane `jute.maxbuffer`, so they never look like a length.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// If the first 4 bytes of a fresh connection spell a known four-letter word, return it.
pub fn four_letter_word(first: [u8; 4]) -> Option<&'static str> {
    FOUR_LETTER_WORDS
        .iter()
        .copied()
        .find(|word| word.as_bytes() == first)
}
