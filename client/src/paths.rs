//! Client-side path checks and chroot mapping (ZooKeeper's `PathUtils.validatePath` and
//! `ZooKeeper.prependChroot`).

/// Checks a znode path as the Java client does before sending it; the error text is
/// ZooKeeper's, because `zkCli.sh` prints it verbatim.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("Path must not end with / character".into());
    }
    // Java indexes UTF-16 code units; for the characters that matter here (ASCII controls,
    // '/', '.') char indices over the BMP agree with it.
    let chars: Vec<char> = path.chars().collect();
    let mut reason = None;
    for i in 1..chars.len() {
        let c = chars[i];
        let lastc = chars[i - 1];
        let next_is_end_or_slash = i + 1 == chars.len() || chars[i + 1] == '/';
        if c == '\0' {
            reason = Some(format!("null character not allowed @{i}"));
        } else if c == '/' && lastc == '/' {
            reason = Some(format!("empty node name specified @{i}"));
        } else if c == '.' && lastc == '.' {
            if i >= 2 && chars[i - 2] == '/' && next_is_end_or_slash {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if c == '.' {
            if lastc == '/' && next_is_end_or_slash {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
            || u32::from(c) > 0xffff
        {
            // Java refuses surrogates (\ud800-\udfff); a non-BMP char is a surrogate pair there
            reason = Some(format!("invalid character @{i}"));
        }
        if reason.is_some() {
            break;
        }
    }
    match reason {
        Some(r) => Err(format!("Invalid path string \"{path}\" caused by {r}")),
        None => Ok(()),
    }
}

/// Client path to server path.
pub(crate) fn to_server(chroot: Option<&str>, path: &str) -> String {
    match chroot {
        None => path.to_string(),
        Some(root) if path == "/" => root.to_string(),
        Some(root) => format!("{root}{path}"),
    }
}

/// Server path to client path; a path outside the chroot is left as it is.
pub(crate) fn from_server(chroot: Option<&str>, path: &str) -> String {
    match chroot {
        None => path.to_string(),
        Some(root) => match path.strip_prefix(root) {
            Some("") => "/".to_string(),
            Some(rest) if rest.starts_with('/') => rest.to_string(),
            _ => path.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_messages() {
        assert!(validate_path("/").is_ok());
        assert!(validate_path("/a/b.c/..d").is_ok());
        assert_eq!(
            validate_path("a").unwrap_err(),
            "Path must start with / character"
        );
        assert_eq!(
            validate_path("/a/").unwrap_err(),
            "Path must not end with / character"
        );
        assert_eq!(validate_path("").unwrap_err(), "Path length must be > 0");
        assert_eq!(
            validate_path("/a//b").unwrap_err(),
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert_eq!(
            validate_path("/a/../b").unwrap_err(),
            "Invalid path string \"/a/../b\" caused by relative paths not allowed @4"
        );
        assert_eq!(
            validate_path("/a/.").unwrap_err(),
            "Invalid path string \"/a/.\" caused by relative paths not allowed @3"
        );
        assert_eq!(
            validate_path("/a\u{1}").unwrap_err(),
            "Invalid path string \"/a\u{1}\" caused by invalid character @2"
        );
    }

    #[test]
    fn chroot_mapping() {
        assert_eq!(to_server(Some("/app"), "/"), "/app");
        assert_eq!(to_server(Some("/app"), "/x"), "/app/x");
        assert_eq!(from_server(Some("/app"), "/app"), "/");
        assert_eq!(from_server(Some("/app"), "/app/x"), "/x");
        assert_eq!(from_server(Some("/app"), "/apple"), "/apple");
        assert_eq!(from_server(None, "/x"), "/x");
    }
}
