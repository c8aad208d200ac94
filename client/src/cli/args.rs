//! Command lines as zkCli.sh splits them (`MyCommandOptions.parseCommand`) and options as
//! Apache commons-cli's `DefaultParser` reads them.

use std::collections::BTreeMap;

/// Splits a line: whitespace-separated words, or '…' / "…" quoted strings (quotes removed).
/// An unmatched quote is dropped, as zkCli's regex skips it.
pub(crate) fn split_line(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let c = chars[i];
        if c == '"' || c == '\'' {
            match chars[i + 1..].iter().position(|&x| x == c) {
                Some(end) => {
                    out.push(chars[i + 1..i + 1 + end].iter().collect());
                    i += end + 2;
                }
                None => i += 1,
            }
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
    }
    out
}

/// One option a command takes: its letter and whether a value follows.
#[derive(Clone, Copy)]
pub(crate) struct Opt(pub char, pub bool);

#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub flags: BTreeMap<char, Option<String>>,
    /// the non-option words, the command name first
    pub args: Vec<String>,
}

impl Parsed {
    pub(crate) fn has(&self, c: char) -> bool {
        self.flags.contains_key(&c)
    }
    pub(crate) fn value(&self, c: char) -> Option<&str> {
        self.flags.get(&c).and_then(|v| v.as_deref())
    }
}

fn is_negative_number(s: &str) -> bool {
    s.len() > 1 && s.starts_with('-') && s[1..].parse::<f64>().is_ok()
}

/// commons-cli's `DefaultParser.parse(options, args)` for short options, with its messages
/// (as `ParseException.toString()` renders them). A word starting with '-' is an option (or
/// an error); it is a value only right after an option that takes one.
pub(crate) fn parse(opts: &[Opt], words: &[String]) -> Result<Parsed, String> {
    let find = |c: char| opts.iter().find(|o| o.0 == c).copied();
    // DefaultParser.isArgument: not an option, or a negative number
    let is_argument = |v: &str| {
        let is_option =
            v.len() > 1 && v.starts_with('-') && v[1..].chars().next().and_then(find).is_some();
        !is_option || is_negative_number(v)
    };
    let unrecognized = |t: &str| {
        format!("org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {t}")
    };
    let missing = |c: char| {
        format!("org.apache.commons.cli.MissingArgumentException: Missing argument for option: {c}")
    };
    let mut p = Parsed::default();
    let mut only_args = false;
    let mut i = 0;
    while i < words.len() {
        let t = &words[i];
        i += 1;
        if only_args || t == "-" || !t.starts_with('-') {
            p.args.push(t.clone());
            continue;
        }
        if t == "--" {
            only_args = true;
            continue;
        }
        if t.starts_with("--") {
            return Err(unrecognized(t));
        }
        // -S, -SV (value attached) or -S1S2 (concatenated flags)
        let body: Vec<char> = t[1..].chars().collect();
        let mut k = 0;
        while k < body.len() {
            match find(body[k]) {
                Some(Opt(c, false)) => {
                    p.flags.insert(c, None);
                    k += 1;
                }
                Some(Opt(c, true)) => {
                    let rest: String = body[k + 1..].iter().collect();
                    if !rest.is_empty() {
                        p.flags.insert(c, Some(rest));
                    } else {
                        match words.get(i) {
                            Some(v) if is_argument(v) => {
                                i += 1;
                                p.flags.insert(c, Some(v.clone()));
                            }
                            _ => return Err(missing(c)),
                        }
                    }
                    break;
                }
                None => return Err(unrecognized(t)),
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        split_line(s)
    }

    #[test]
    fn splits_like_zkcli() {
        assert_eq!(
            w("  create /a 'hello world'  \"x y\" z"),
            vec!["create", "/a", "hello world", "x y", "z"]
        );
        assert_eq!(w("set /a \"\""), vec!["set", "/a", ""]);
        assert_eq!(w("set /a \"oops"), vec!["set", "/a", "oops"]);
        assert_eq!(w("set /a b\"c"), vec!["set", "/a", "b\"c"]);
    }

    #[test]
    fn parses_like_commons_cli() {
        let opts = [Opt('s', false), Opt('w', false), Opt('v', true)];
        let p = parse(&opts, &w("get -s /x -w")).expect("ok");
        assert_eq!(p.args, vec!["get", "/x"]);
        assert!(p.has('s') && p.has('w'));
        let p = parse(&opts, &w("set -v 3 /x d")).expect("ok");
        assert_eq!(p.value('v'), Some("3"));
        let p = parse(&opts, &w("set -v3 /x d")).expect("ok");
        assert_eq!(p.value('v'), Some("3"));
        let p = parse(&opts, &w("set -v -1 /x d")).expect("ok");
        assert_eq!(p.value('v'), Some("-1"));
        let p = parse(&opts, &w("ls -sw /x")).expect("ok");
        assert!(p.has('s') && p.has('w'));
        assert_eq!(
            parse(&opts, &w("get -x /x")).unwrap_err(),
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x"
        );
        assert_eq!(
            parse(&opts, &w("set /x -v")).unwrap_err(),
            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: v"
        );
        assert_eq!(
            parse(&opts, &w("set /x -5")).unwrap_err(),
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -5"
        );
        assert!(
            parse(&opts, &w("ls -sx /"))
                .unwrap_err()
                .ends_with("option: -sx")
        );
        let p = parse(&opts, &w("set /x - -- -w")).expect("ok");
        assert_eq!(p.args, vec!["set", "/x", "-", "-w"]);
    }
}
