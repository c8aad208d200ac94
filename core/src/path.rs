//! Znode paths as ZooKeeper's `PathUtils` validates them, and the small helpers the data tree
//! and the watch manager share.
//!
//! ZooKeeper works on Java strings (UTF-16); a Rust `char` above U+FFFF is a surrogate pair
//! there, and surrogates are refused, so such a char is refused here too.

use ensemble_proto::proto::KeeperError;

/// The root znode.
pub const ROOT: &str = "/";
/// ZooKeeper's own subtree (`procZookeeper`).
pub const ZOOKEEPER: &str = "/zookeeper";
/// `Quotas.quotaZookeeper`.
pub const QUOTA: &str = "/zookeeper/quota";
/// `ZooDefs.CONFIG_NODE`: the dynamic configuration.
pub const CONFIG: &str = "/zookeeper/config";

/// `PathUtils.validatePath`: absolute, no empty, `.` or `..` components, no trailing `/`
/// (except the root), no NUL, no control or reserved characters.
pub fn validate(path: &str) -> Result<(), KeeperError> {
    if invalid_reason(path).is_some() {
        Err(KeeperError::BadArguments)
    } else {
        Ok(())
    }
}

/// `PathUtils.validatePath(path, isSequential)`: a sequential create is validated with a digit
/// appended, so `/queue/` (which becomes `/queue/0000000001`) is acceptable.
pub fn validate_create(path: &str, sequential: bool) -> Result<(), KeeperError> {
    if sequential {
        let mut p = String::with_capacity(path.len() + 1);
        p.push_str(path);
        p.push('1');
        validate(&p)
    } else {
        validate(path)
    }
}

/// Why `path` is invalid, as `PathUtils` words it, or `None` if it is valid.
pub fn invalid_reason(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("path length must be > 0");
    }
    if !path.starts_with('/') {
        return Some("path must start with / character");
    }
    if path.len() == 1 {
        return None;
    }
    if path.ends_with('/') {
        return Some("path must not end with / character");
    }
    if path.is_ascii() {
        invalid_ascii(path.as_bytes())
    } else {
        invalid_chars(path)
    }
}

/// The checks after the first character and the trailing `/`, on chars.
fn invalid_chars(path: &str) -> Option<&'static str> {
    let chars: Vec<char> = path.chars().collect();
    let mut last = '/';
    for i in 1..chars.len() {
        let c = chars[i];
        let ends_component = i + 1 == chars.len() || chars[i + 1] == '/';
        if c == '\0' {
            return Some("null character not allowed");
        } else if c == '/' && last == '/' {
            return Some("empty node name specified");
        } else if c == '.' && last == '.' {
            // `i >= 2` here: chars[0] is '/', so a '.' before this one sits at 1 or later.
            assert!(i >= 2, "a '.' after a '.' is past the leading '/'");
            if chars[i - 2] == '/' && ends_component {
                return Some("relative paths not allowed");
            }
        } else if c == '.' {
            if chars[i - 1] == '/' && ends_component {
                return Some("relative paths not allowed");
            }
        } else if is_refused_char(c) {
            return Some("invalid character");
        }
        last = c;
    }
    None
}

/// [`invalid_reason`]'s loop on an ASCII path (every path a benchmark or most clients send),
/// without collecting chars: the same checks in the same order.
fn invalid_ascii(b: &[u8]) -> Option<&'static str> {
    let mut last = b'/';
    for i in 1..b.len() {
        let c = b[i];
        let ends_component = i + 1 == b.len() || b[i + 1] == b'/';
        if c == 0 {
            return Some("null character not allowed");
        } else if c == b'/' && last == b'/' {
            return Some("empty node name specified");
        } else if c == b'.' && last == b'.' {
            assert!(i >= 2, "a '.' after a '.' is past the leading '/'");
            if b[i - 2] == b'/' && ends_component {
                return Some("relative paths not allowed");
            }
        } else if c == b'.' {
            if b[i - 1] == b'/' && ends_component {
                return Some("relative paths not allowed");
            }
        } else if is_refused_char(c as char) {
            return Some("invalid character");
        }
        last = c;
    }
    None
}

/// The characters `PathUtils` refuses (on UTF-16 code units; see the module doc).
fn is_refused_char(c: char) -> bool {
    let u = c as u32;
    (0x01..=0x1f).contains(&u)
        || (0x7f..=0x9f).contains(&u)
        || (0xd800..=0xf8ff).contains(&u)
        || (0xfff0..=0xffff).contains(&u)
        || u > 0xffff
}

/// The parent of a valid path: `/a/b` → `/a`, `/a` → `/`, `/` → `None`.
pub fn parent(path: &str) -> Option<&str> {
    if path == ROOT {
        return None;
    }
    let slash = path.rfind('/')?;
    let p = if slash == 0 { ROOT } else { &path[..slash] };
    assert!(p.len() < path.len(), "a parent is shorter than its child");
    Some(p)
}

/// The last component: `/a/b` → `b`, `/` → ``.
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(slash) => &path[slash + 1..],
        None => path,
    }
}

/// `DataTree.isSpecialPath`: the znodes ZooKeeper owns and never lets a client delete.
pub fn is_special(path: &str) -> bool {
    matches!(path, ROOT | ZOOKEEPER | QUOTA | CONFIG)
}

/// The proper ancestors of a valid path, nearest first, ending with `/`.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = Some(path);
    std::iter::from_fn(move || {
        let p = parent(cur?);
        cur = p;
        p
    })
}

/// `String.length()` in Java: UTF-16 code units (ZooKeeper's approximate data size uses it).
pub fn java_len(s: &str) -> u64 {
    if s.is_ascii() {
        s.len() as u64
    } else {
        s.chars().map(|c| c.len_utf16() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> bool {
        validate(p).is_ok()
    }

    /// The ASCII fast path says exactly what the char loop says.
    #[test]
    fn ascii_path_checks_agree_with_the_char_loop() {
        let alphabet = [b'/', b'.', b'a', b'0', b'\0', b'\x01', b'\x7f', b'~', b' '];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let len = 2 + (rng % 9) as usize;
            let mut p = vec![b'/'];
            let mut r = rng;
            for _ in 1..len {
                p.push(alphabet[(r % alphabet.len() as u64) as usize]);
                r /= alphabet.len() as u64;
            }
            if p.ends_with(b"/") {
                continue;
            }
            let s = std::str::from_utf8(&p).expect("ascii");
            assert_eq!(invalid_ascii(&p), invalid_chars(s), "{s:?}");
        }
    }

    #[test]
    fn valid_paths() {
        for p in [
            "/", "/a", "/a/b", "/a.b", "/.a", "/a.", "/..a", "/a..", "/...", "/a/.../b", "/é",
            "/日本",
        ] {
            assert!(ok(p), "{p:?} should be valid");
        }
    }

    #[test]
    fn invalid_paths_as_path_utils() {
        for p in [
            "",
            "a",
            "a/b",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/.",
            "/a/..",
            "/./a",
            "/../a",
            "/a\0b",
            "/a\u{1}",
            "/a\u{1f}",
            "/a\u{7f}",
            "/a\u{9f}",
            "/a\u{e000}",
            "/a\u{f8ff}",
            "/a\u{fff0}",
            "/a\u{ffff}",
            "/a\u{1f600}",
        ] {
            assert_eq!(
                validate(p),
                Err(KeeperError::BadArguments),
                "{p:?} should be invalid"
            );
        }
        // The character boundaries just outside the refused ranges are fine.
        for p in [
            "/a\u{20}",
            "/a\u{7e}",
            "/a\u{a0}",
            "/a\u{d7ff}",
            "/a\u{f900}",
            "/a\u{ffef}",
        ] {
            assert!(ok(p), "{p:?} should be valid");
        }
    }

    #[test]
    fn sequential_validation_appends_a_digit() {
        assert!(validate_create("/q/", true).is_ok());
        assert!(validate_create("/q/", false).is_err());
        assert!(validate_create("/q/.", true).is_ok());
        assert!(validate_create("//", true).is_err());
    }

    #[test]
    fn parents_names_and_ancestors() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b/c"), Some("/a/b"));
        assert_eq!(name("/a/b"), "b");
        assert_eq!(name("/"), "");
        assert_eq!(
            ancestors("/a/b/c").collect::<Vec<_>>(),
            vec!["/a/b", "/a", "/"]
        );
        assert_eq!(ancestors("/").count(), 0);
        assert!(is_special("/zookeeper/config") && is_special("/") && !is_special("/zookeeper/x"));
        assert_eq!(java_len("/a"), 2);
        assert_eq!(java_len("/é"), 2);
        assert_eq!(java_len("/\u{10000}"), 3);
    }
}
