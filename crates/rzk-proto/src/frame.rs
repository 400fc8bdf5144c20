//! Length-prefixed framing and four-letter-word detection. No buffering here: callers own
//! their buffers and call [`next_frame`] until it returns `Ok(None)` ("incomplete" is not an error).

/// `jute.maxbuffer` default: 0xfffff bytes (1 MiB - 1).
pub const JUTE_MAXBUFFER_DEFAULT: u32 = 0xfffff;

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
pub fn next_frame(buffer: &[u8], max_length: u32) -> Result<Option<(std::ops::Range<usize>, usize)>, FrameError> {
    let _ = (buffer, max_length);
    todo!()
}

/// If the first 4 bytes of a fresh connection spell a known four-letter word, return it.
pub fn four_letter_word(first: [u8; 4]) -> Option<&'static str> {
    let _ = first;
    todo!()
}
