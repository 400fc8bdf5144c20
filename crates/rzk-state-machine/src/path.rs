//! ZooKeeper path rules (`PathUtils.validatePath`) and parent/child splitting.

use rzk_proto::ErrorCode;

/// Validate a path the way `PathUtils.validatePath` does: absolute, no trailing `/` (except the
/// root), no empty, `.` or `..` components, none of the characters ZooKeeper forbids.
pub(crate) fn validate_path(path: &str) -> Result<(), ErrorCode> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(ErrorCode::BadArguments);
    };
    if rest.is_empty() {
        return Ok(());
    }
    if rest.ends_with('/') {
        return Err(ErrorCode::BadArguments);
    }
    rest.split('/').try_for_each(validate_name)
}

/// One component of a path: not empty, `.` or `..`, and none of the characters ZooKeeper
/// forbids (checked byte by byte for printable ASCII, the common case).
pub(crate) fn validate_name(name: &str) -> Result<(), ErrorCode> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(ErrorCode::BadArguments);
    }
    let printable_ascii = name.bytes().all(|byte| (0x20..0x7f).contains(&byte));
    if !printable_ascii && name.chars().any(is_forbidden_char) {
        return Err(ErrorCode::BadArguments);
    }
    Ok(())
}

/// Java checks UTF-16 code units, so every character outside the BMP (a surrogate pair, in the
/// `\ud800-\uf8ff` range) is forbidden too.
fn is_forbidden_char(c: char) -> bool {
    let unit = c as u32;
    unit == 0
        || (0x01..=0x1f).contains(&unit)
        || (0x7f..=0x9f).contains(&unit)
        || (0xd800..=0xf8ff).contains(&unit)
        || unit >= 0xfff0
}

/// Split at the last `/` like `path.substring(0, lastSlash)`: the parent of "/a" is "" which
/// ZooKeeper stores as a second name of the root, so it maps to "/" here.
pub(crate) fn split_parent(path: &str) -> Option<(&str, &str)> {
    let slash = path.rfind('/')?;
    let parent = if slash == 0 { "/" } else { &path[..slash] };
    Some((parent, &path[slash + 1..]))
}

/// The parent of an existing node's path (never called for the root).
pub(crate) fn parent_of(path: &str) -> &str {
    match split_parent(path) {
        Some((parent, _)) => parent,
        None => "/",
    }
}

/// Ancestors of `path`, nearest first, ending with "/" (the path itself excluded).
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut current = path;
    std::iter::from_fn(move || {
        if current == "/" {
            return None;
        }
        current = parent_of(current);
        Some(current)
    })
}

/// Paths ZooKeeper owns: they can never be deleted (`DataTree.isSpecialPath`).
pub(crate) fn is_special_path(path: &str) -> bool {
    matches!(
        path,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the validator agrees with PathUtils.validatePath on each rule it encodes.
    #[test]
    fn validate_path_rules() {
        for ok in [
            "/",
            "/a",
            "/a/b",
            "/a/...",
            "/a.b",
            "/zookeeper",
            "/a/.b",
            "/é",
        ] {
            assert_eq!(validate_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/a/.",
            "/a/..",
            "/./a",
            "/../a",
            "/a\0",
            "/a\u{1}",
            "/a\u{7f}",
            "/a\u{9f}",
            "/a\u{e000}",
            "/a\u{fff0}",
            "/a\u{1F600}",
        ] {
            assert_eq!(validate_path(bad), Err(ErrorCode::BadArguments), "{bad:?}");
        }
    }

    #[test]
    fn split_and_ancestors() {
        assert_eq!(split_parent("/a"), Some(("/", "a")));
        assert_eq!(split_parent("/a/b"), Some(("/a", "b")));
        assert_eq!(split_parent("/a/"), Some(("/a", "")));
        assert_eq!(split_parent("/"), Some(("/", "")));
        assert_eq!(split_parent("abc"), None);
        assert_eq!(
            ancestors("/a/b/c").collect::<Vec<_>>(),
            vec!["/a/b", "/a", "/"]
        );
        assert_eq!(ancestors("/").count(), 0);
    }
}
