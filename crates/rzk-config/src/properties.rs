//! The `java.util.Properties` text format, as `Properties.load` reads it.
//!
//! ZooKeeper hands zoo.cfg to `Properties.load`, so an unmodified zoo.cfg may use any of its rules:
//! - natural lines end in `\n`, `\r\n` or `\r`;
//! - a line whose first non-blank character is `#` or `!` is a comment, and a comment is never continued;
//! - a line ending in an odd number of backslashes continues on the next line, whose leading blanks are dropped;
//! - the key ends at the first unescaped `=`, `:` or blank; blanks around one `=`/`:` separator are skipped,
//!   so `key=value`, `key: value` and `key value` are the same;
//! - escapes `\t \n \r \f \uXXXX` are decoded, and any other `\c` stands for `c` (so `C:\zk` reads as `C:zk`,
//!   exactly as on ZooKeeper).
//!
//! Unlike `Properties`, every entry is kept in file order with its line number, so the caller can report
//! repeated keys and name the line of a bad value. ZooKeeper then trims keys and values; so do we.

/// One `key=value` entry, after escapes are decoded and both sides are trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based number of the natural line where the entry starts.
    pub line: usize,
}

/// A `\uXXXX` escape that is not followed by four hex digits; `Properties.load` rejects the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MalformedEscape {
    pub line: usize,
    pub text: String,
}

/// Blank characters of the properties format (`Character` ' ', '\t', '\f').
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, MalformedEscape> {
    let mut entries = Vec::new();
    let mut logical = String::new();
    let mut logical_start_line = 0;
    let mut continuing = false;

    for (index, natural) in natural_lines(text).enumerate() {
        let line_number = index + 1;
        let stripped = natural.trim_start_matches(is_blank);
        if !continuing {
            if stripped.is_empty() || stripped.starts_with('#') || stripped.starts_with('!') {
                continue;
            }
            logical.clear();
            logical_start_line = line_number;
        }
        let trailing_backslashes = stripped.chars().rev().take_while(|&c| c == '\\').count();
        continuing = trailing_backslashes % 2 == 1;
        if continuing {
            logical.push_str(&stripped[..stripped.len() - 1]);
        } else {
            logical.push_str(stripped);
            entries.push(split_entry(&logical, logical_start_line)?);
        }
    }
    // A file that ends inside a continuation still yields its last entry, as Properties.load does.
    if continuing {
        entries.push(split_entry(&logical, logical_start_line)?);
    }
    Ok(entries)
}

/// Splits text into natural lines on `\n`, `\r\n` and lone `\r`.
fn natural_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find(['\n', '\r']) {
            None => {
                let line = rest;
                rest = "";
                Some(line)
            }
            Some(end) => {
                let line = &rest[..end];
                let terminator = if rest[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = &rest[end + terminator..];
                Some(line)
            }
        }
    })
}

/// Splits one logical line (escapes still raw) into a decoded, trimmed key and value.
fn split_entry(logical: &str, line: usize) -> Result<Entry, MalformedEscape> {
    let mut key_end = logical.len();
    let mut value_start = logical.len();
    let mut escaped = false;
    for (position, c) in logical.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        if c == '=' || c == ':' || is_blank(c) {
            key_end = position;
            let after_key = &logical[position..];
            let mut rest = after_key.trim_start_matches(is_blank);
            // One separator is allowed after the blanks, or as the key terminator itself.
            if let Some(stripped) = rest.strip_prefix(['=', ':']) {
                rest = stripped.trim_start_matches(is_blank);
            }
            value_start = logical.len() - rest.len();
            break;
        }
    }
    let malformed = || MalformedEscape {
        line,
        text: logical.to_string(),
    };
    let key = unescape(&logical[..key_end]).ok_or_else(malformed)?;
    let value = unescape(&logical[value_start..]).ok_or_else(malformed)?;
    Ok(Entry {
        key: java_trim(&key).to_string(),
        value: java_trim(&value).to_string(),
        line,
    })
}

/// `String.trim()` in Java removes every char up to and including U+0020.
fn java_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c <= ' ')
}

fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // A lone trailing backslash (only possible at end of file) stands for nothing.
            None => {}
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                if hex.len() != 4 {
                    return None;
                }
                let code = u32::from_str_radix(&hex, 16).ok()?;
                // Surrogate halves cannot be a Rust char; keep the replacement character like a lossy decode.
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            Some(other) => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_string(), value.to_string())
    }

    #[test]
    fn separators_equal_colon_and_blank_are_equivalent() {
        assert_eq!(
            pairs("a=1\nb: 2\nc 3\n  d  =  4  \ne\t:\t5\nf=\ng\n"),
            vec![
                pair("a", "1"),
                pair("b", "2"),
                pair("c", "3"),
                pair("d", "4"),
                pair("e", "5"),
                pair("f", ""),
                pair("g", "")
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_but_never_continued() {
        assert_eq!(pairs("# c \\\n! also\n\n   \na=1\n"), vec![pair("a", "1")]);
    }

    #[test]
    fn continuation_joins_lines_and_drops_leading_blanks() {
        assert_eq!(
            pairs("a=one \\\n    two\\\n# not a comment\nb=x\\\\\nc=y"),
            vec![
                pair("a", "one two# not a comment"),
                pair("b", "x\\"),
                pair("c", "y")
            ]
        );
    }

    #[test]
    fn crlf_and_lone_cr_end_lines_and_line_numbers_are_kept() {
        let entries = parse("a=1\r\nb=2\rc=3").unwrap();
        let lines: Vec<usize> = entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 3]);
    }

    #[test]
    fn escapes_decode_like_java() {
        assert_eq!(
            pairs("dataDir=C:\\zk\\data\nk\\=ey=v\\u0041\\t|\nsp\\ ace=1"),
            vec![
                pair("dataDir", "C:zkdata"),
                pair("k=ey", "vA\t|"),
                pair("sp ace", "1")
            ]
        );
    }

    #[test]
    fn malformed_unicode_escape_is_an_error() {
        let error = parse("\n\nkey=\\u12").unwrap_err();
        assert_eq!(error.line, 3);
    }

    #[test]
    fn file_ending_inside_a_continuation_keeps_the_entry() {
        assert_eq!(pairs("a=1\\"), vec![pair("a", "1")]);
    }
}
