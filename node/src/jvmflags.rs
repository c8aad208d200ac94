//! ZooKeeper's other ways of passing settings: JVM `-Dname=value` flags, read the way its
//! scripts assemble them. `zkEnv.sh` sources `$ZOOCFGDIR/zookeeper-env.sh` and
//! `$ZOOCFGDIR/java.env` (ZOOCFGDIR from the environment, else the conf directory, which for us
//! is the directory of the zoo.cfg given), and `zkServer.sh` runs the JVM with
//! `$SERVER_JVMFLAGS $JVMFLAGS`, unquoted, so the shell splits them on whitespace.
//!
//! Only assignments to `SERVER_JVMFLAGS` and `JVMFLAGS` in those files are read (with shell
//! quoting and `$VAR` expansion); other lines (`export JAVA_HOME=...`) do not concern us. A line
//! that assigns one of them in a way this reader cannot follow (command substitution, a
//! conditional) is refused rather than guessed: it may carry a security setting.

use std::path::{Path, PathBuf};

/// The variables `zkServer.sh` puts on the JVM's command line, in that order.
const VARS: [&str; 2] = ["SERVER_JVMFLAGS", "JVMFLAGS"];

/// One word of the JVM command line and where it was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// `SERVER_JVMFLAGS in the environment` or `conf/java.env:3 (SERVER_JVMFLAGS)`.
    pub origin: String,
}

/// A `-Dname=value` flag (`-Dname` alone has the value "").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub value: String,
    pub origin: String,
}

/// What the JVM would have been given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JvmFlags {
    /// System properties in command-line order (a later one wins, as in the JVM).
    pub properties: Vec<Property>,
    /// Other words (`-Xmx1g`, `-XX:+UseG1GC`): JVM tuning with no meaning here.
    pub other: Vec<Word>,
}

/// A line of an env file that cannot be read safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl JvmFlags {
    /// Gather from `env` (the process environment in the server) and the env files of the
    /// conf directory of `cfg_path`.
    pub fn gather(
        cfg_path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<JvmFlags, EnvFileError> {
        let mut vars: Vec<(&str, Vec<Word>)> = VARS
            .iter()
            .map(|v| {
                let words = env(v)
                    .map(|text| split_words(&text, &format!("{v} in the environment")))
                    .unwrap_or_default();
                (*v, words)
            })
            .collect();
        let conf_dir = match env("ZOOCFGDIR").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => cfg_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        };
        for name in ["zookeeper-env.sh", "java.env"] {
            let path = conf_dir.join(name);
            // An absent file is the common case; an unreadable one is not sourced by the
            // shell either (it fails the `-f` test only when absent, so say so).
            match std::fs::read_to_string(&path) {
                Ok(text) => read_env_file(&path, &text, env, &mut vars)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(EnvFileError {
                        path,
                        line: 0,
                        message: format!("cannot read: {e}"),
                    });
                }
            }
        }
        let mut flags = JvmFlags::default();
        for (_, words) in vars {
            for w in words {
                match w.text.strip_prefix("-D") {
                    Some(rest) if !rest.is_empty() => {
                        let (name, value) = rest.split_once('=').unwrap_or((rest, ""));
                        flags.properties.push(Property {
                            name: name.to_string(),
                            value: value.to_string(),
                            origin: w.origin,
                        });
                    }
                    _ => flags.other.push(w),
                }
            }
        }
        Ok(flags)
    }
}

/// Split as the shell splits an unquoted `$VAR`: on whitespace, no quote removal.
fn split_words(text: &str, origin: &str) -> Vec<Word> {
    text.split_whitespace()
        .map(|w| Word {
            text: w.to_string(),
            origin: origin.to_string(),
        })
        .collect()
}

fn read_env_file(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    vars: &mut [(&str, Vec<Word>)],
) -> Result<(), EnvFileError> {
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| EnvFileError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let body = raw.trim();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let mentions = VARS.iter().find(|v| body.contains(*v));
        let assignment = body.strip_prefix("export ").unwrap_or(body).trim_start();
        let target = VARS.iter().position(|v| {
            assignment
                .strip_prefix(v)
                .is_some_and(|rest| rest.starts_with('='))
        });
        let Some(target) = target else {
            // `export SERVER_JVMFLAGS` alone changes nothing; anything else naming the
            // variables (a conditional, an append through another variable) is not followed.
            if let Some(v) = mentions
                && assignment != *v
            {
                return Err(err(format!(
                    "{v} is set in a way this reader does not follow; write it as a plain \
                     assignment (export {v}=\"...\")"
                )));
            }
            continue;
        };
        let name = VARS[target];
        let value = &assignment[name.len() + 1..];
        let origin = format!("{}:{line} ({name})", path.display());
        let lookup = |v: &str| -> Vec<Word> {
            match vars.iter().find(|(n, _)| *n == v) {
                Some((_, words)) => words.clone(),
                None => split_words(&env(v).unwrap_or_default(), &origin),
            }
        };
        let expanded = shell_value(value, &lookup).map_err(|why| err(format!("{name}=: {why}")))?;
        // Words that came whole from an expanded variable keep where they were set.
        let mut words = Vec::new();
        for w in split_words(&expanded.text, &origin) {
            let kept = expanded
                .from_vars
                .iter()
                .find(|old| old.text == w.text)
                .cloned();
            words.push(kept.unwrap_or(w));
        }
        vars[target].1 = words;
    }
    Ok(())
}

struct Expanded {
    text: String,
    /// The words of every variable expanded into it.
    from_vars: Vec<Word>,
}

/// A shell assignment's value: quotes removed, `$VAR` and `${VAR}` expanded, up to the first
/// unquoted blank, `;` or `#` (a comment or a next command).
fn shell_value(value: &str, lookup: &dyn Fn(&str) -> Vec<Word>) -> Result<Expanded, String> {
    let mut out = Expanded {
        text: String::new(),
        from_vars: Vec::new(),
    };
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (None, ' ' | '\t' | ';') => break,
            (None, '#') if out.text.is_empty() => break,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (Some('\''), _) => out.text.push(c),
            (_, '`') => return Err("command substitution is not followed".into()),
            (_, '\\') => {
                i += 1;
                let Some(&next) = chars.get(i) else {
                    return Err("a line continuation is not followed".into());
                };
                // Inside double quotes a backslash escapes only these.
                if quote == Some('"') && !matches!(next, '$' | '`' | '"' | '\\') {
                    out.text.push('\\');
                }
                out.text.push(next);
            }
            (_, '$') => {
                let (name, used) = var_name(&chars[i + 1..])?;
                let words = lookup(&name);
                let text: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
                out.text.push_str(&text.join(" "));
                out.from_vars.extend(words);
                i += used;
            }
            _ => out.text.push(c),
        }
        i += 1;
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    Ok(out)
}

/// The variable name after a `$`: `NAME` or `{NAME}`; returns it and the characters used.
fn var_name(rest: &[char]) -> Result<(String, usize), String> {
    let is_name = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
    if rest.first() == Some(&'{') {
        let end = rest
            .iter()
            .position(|c| *c == '}')
            .ok_or("unterminated ${")?;
        let name: String = rest[1..end].iter().collect();
        if name.is_empty() || !name.chars().all(|c| is_name(&c)) {
            return Err(format!("${{{name}}} is not followed"));
        }
        return Ok((name, end + 1));
    }
    if rest.first() == Some(&'(') {
        return Err("command substitution is not followed".into());
    }
    let name: String = rest.iter().take_while(|c| is_name(c)).collect();
    if name.is_empty() {
        return Err("a lone $ is not followed".into());
    }
    let n = name.chars().count();
    Ok((name, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ens-jvmflags-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("tmp");
        d
    }

    fn props(f: &JvmFlags) -> Vec<(String, String)> {
        f.properties
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect()
    }

    #[test]
    fn environment_server_flags_come_first() {
        let d = tmp("env");
        let env = env_of(&[
            ("SERVER_JVMFLAGS", "-Xmx1g  -Dreadonlymode.enabled=false"),
            ("JVMFLAGS", "-Djute.maxbuffer=8192 -Dflag"),
        ]);
        let f = JvmFlags::gather(&d.join("zoo.cfg"), &env).expect("flags");
        assert_eq!(
            props(&f),
            [
                ("readonlymode.enabled".into(), "false".into()),
                ("jute.maxbuffer".into(), "8192".into()),
                ("flag".into(), String::new()),
            ]
        );
        assert_eq!(f.other.len(), 1);
        assert_eq!(f.other[0].text, "-Xmx1g");
        assert_eq!(f.properties[1].origin, "JVMFLAGS in the environment");
    }

    #[test]
    fn java_env_next_to_the_config_with_quotes_and_expansion() {
        let d = tmp("javaenv");
        std::fs::write(
            d.join("java.env"),
            "# comment\nexport JAVA_HOME=/opt/jdk\n\
             SERVER_JVMFLAGS=\"-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\"\n\
             export SERVER_JVMFLAGS=\"$SERVER_JVMFLAGS -Dzookeeper.snapCount=500\" # more\n\
             JVMFLAGS='-Da=$b' ; echo hi\n",
        )
        .expect("write");
        let env = env_of(&[("JVMFLAGS", "-Dignored=1")]);
        let f = JvmFlags::gather(&d.join("zoo.cfg"), &env).expect("flags");
        assert_eq!(
            props(&f),
            [
                (
                    "zookeeper.DigestAuthenticationProvider.superDigest".into(),
                    "super:D/InIHSb7yEEbrWz8b9l71RjZJU=".into()
                ),
                ("zookeeper.snapCount".into(), "500".into()),
                ("a".into(), "$b".into()),
            ]
        );
        let java_env = d.join("java.env");
        assert_eq!(
            f.properties[0].origin,
            format!("{}:3 (SERVER_JVMFLAGS)", java_env.display())
        );
        assert_eq!(
            f.properties[1].origin,
            format!("{}:4 (SERVER_JVMFLAGS)", java_env.display())
        );
    }

    #[test]
    fn zoocfgdir_wins_over_the_config_directory() {
        let d = tmp("cfgdir");
        let conf = d.join("conf");
        std::fs::create_dir_all(&conf).expect("conf");
        std::fs::write(conf.join("zookeeper-env.sh"), "JVMFLAGS=-Dx=1\n").expect("write");
        std::fs::write(d.join("java.env"), "JVMFLAGS=-Dy=2\n").expect("write");
        let dir = conf.display().to_string();
        let env = env_of(&[("ZOOCFGDIR", dir.as_str())]);
        let f = JvmFlags::gather(&d.join("zoo.cfg"), &env).expect("flags");
        assert_eq!(props(&f), [("x".into(), "1".into())]);
    }

    #[test]
    fn what_cannot_be_followed_is_refused() {
        for (text, why) in [
            ("SERVER_JVMFLAGS=$(cat flags)\n", "command substitution"),
            ("SERVER_JVMFLAGS=\"-Dx=1\n", "unterminated quote"),
            (
                "[ -n \"$X\" ] && SERVER_JVMFLAGS=-Dx=1\n",
                "does not follow",
            ),
            ("JVMFLAGS=`cat f`\n", "command substitution"),
        ] {
            let d = tmp("refuse");
            std::fs::write(d.join("java.env"), text).expect("write");
            let e = JvmFlags::gather(&d.join("zoo.cfg"), &env_of(&[])).expect_err(text);
            assert!(e.message.contains(why), "{text}: {}", e.message);
            assert_eq!(e.line, 1);
        }
    }
}
