//! Framing tests: incomplete, exact, several, over-max, negative, and four-letter words.

use rzk_proto::frame::*;

fn prefixed(length: i32, body: &[u8]) -> Vec<u8> {
    let mut buffer = length.to_be_bytes().to_vec();
    buffer.extend_from_slice(body);
    buffer
}

/// Goal: fewer than 4 bytes, or a body not fully arrived, is "need more", not an error.
#[test]
fn incomplete_is_none() {
    for cut in 0..4 {
        assert_eq!(next_frame(&[0, 0, 0, 5][..cut], 100), Ok(None));
    }
    let buffer = prefixed(5, b"abcd");
    assert_eq!(next_frame(&buffer, 100), Ok(None));
}

/// Goal: an exactly complete frame gives the body range and the bytes consumed.
#[test]
fn exact_frame() {
    let buffer = prefixed(5, b"abcde");
    assert_eq!(next_frame(&buffer, 100), Ok(Some((4..9, 9))));
    assert_eq!(&buffer[4..9], b"abcde");
}

/// Goal: with bytes of a next frame behind, only the first frame is consumed.
#[test]
fn frame_followed_by_more() {
    let mut buffer = prefixed(2, b"ab");
    buffer.extend_from_slice(&prefixed(1, b"c"));
    assert_eq!(next_frame(&buffer, 100), Ok(Some((4..6, 6))));
    assert_eq!(next_frame(&buffer[6..], 100), Ok(Some((4..5, 5))));
}

/// Goal: a zero-length frame is complete with just its prefix.
#[test]
fn empty_frame() {
    assert_eq!(next_frame(&prefixed(0, b""), 100), Ok(Some((4..4, 4))));
}

/// Goal: a length over the cap fails from the prefix alone, before any body arrives; a
/// length equal to the cap is allowed (ZooKeeper rejects only len > maxbuffer).
#[test]
fn over_max_fails_early() {
    let buffer = prefixed(101, b"");
    assert_eq!(
        next_frame(&buffer, 100),
        Err(FrameError::TooLong {
            length: 101,
            max: 100
        })
    );
    assert_eq!(next_frame(&prefixed(100, b""), 100), Ok(None));
    let at_cap = prefixed(JUTE_MAXBUFFER_DEFAULT as i32, b"");
    assert_eq!(next_frame(&at_cap, JUTE_MAXBUFFER_DEFAULT), Ok(None));
    let over = prefixed(JUTE_MAXBUFFER_DEFAULT as i32 + 1, b"");
    assert!(matches!(
        next_frame(&over, JUTE_MAXBUFFER_DEFAULT),
        Err(FrameError::TooLong { .. })
    ));
}

/// Goal: negative lengths are errors, including -1 and i32::MIN.
#[test]
fn negative_length() {
    for length in [-1, -2, i32::MIN] {
        assert_eq!(
            next_frame(&prefixed(length, b"xyz"), u32::MAX),
            Err(FrameError::Negative { length })
        );
    }
}

/// Goal: every ZooKeeper 4lw is recognised, other words are not, and no 4lw can be mistaken
/// for a length under the default jute.maxbuffer.
#[test]
fn four_letter_words() {
    for word in [
        "ruok", "srvr", "stat", "conf", "cons", "crst", "srst", "dump", "envi", "gtmk", "stmk",
        "mntr", "isro", "wchs", "wchc", "wchp", "dirs", "hash",
    ] {
        let first: [u8; 4] = word.as_bytes().try_into().unwrap();
        assert_eq!(four_letter_word(first), Some(word));
        assert!(matches!(
            next_frame(&first, JUTE_MAXBUFFER_DEFAULT),
            Err(FrameError::TooLong { .. })
        ));
    }
    assert_eq!(FOUR_LETTER_WORDS.len(), 18);
    for word in FOUR_LETTER_WORDS {
        let value = i32::from_be_bytes(word.as_bytes().try_into().unwrap());
        assert!(value > JUTE_MAXBUFFER_DEFAULT as i32, "{word}");
    }
    assert_eq!(four_letter_word(*b"RUOK"), None);
    assert_eq!(four_letter_word(*b"abcd"), None);
    assert_eq!(four_letter_word([0, 0, 0, 45]), None);
}
