//! JAAS login configuration files, as Java's `ConfigFile` reads them: named sections
//! (`Server`, `QuorumServer`, `Client`, ...) of login module entries, each
//! `<class> <flag> key=value ... ;`, the section closed by `};`. Comments are `//` and `/* */`.
//! ZooKeeper finds the file through `-Djava.security.auth.login.config`; its `Server` section
//! holds `DigestLoginModule`'s `user_NAME="password"` options or `Krb5LoginModule`'s
//! keytab and principal. Option values are secrets: `Debug` never shows them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// `org.apache.zookeeper.server.auth.DigestLoginModule`.
pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";
/// Java's Kerberos login module (`com.sun.security.auth.module.Krb5LoginModule`, or IBM's).
pub fn is_krb5_module(class: &str) -> bool {
    class.ends_with(".Krb5LoginModule")
}

/// One login module entry of a section.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginModule {
    pub class: String,
    /// required, requisite, sufficient or optional.
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for LoginModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // option names only: `user_NAME` values and the like are passwords
        f.debug_struct("LoginModule")
            .field("class", &self.class)
            .field("flag", &self.flag)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A parsed JAAS file: its sections by name, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JaasConfig {
    pub path: PathBuf,
    pub sections: BTreeMap<String, Vec<LoginModule>>,
}

#[derive(Debug, thiserror::Error)]
pub enum JaasError {
    #[error("cannot read the JAAS file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}:{line}: {reason}")]
    Syntax {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl JaasConfig {
    pub fn load(path: &Path) -> Result<JaasConfig, JaasError> {
        let text = std::fs::read_to_string(path).map_err(|e| JaasError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        JaasConfig::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<JaasConfig, JaasError> {
        let tokens = tokenize(text).map_err(|(line, reason)| JaasError::Syntax {
            path: path.to_path_buf(),
            line,
            reason,
        })?;
        let err = |line: usize, reason: String| JaasError::Syntax {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut cfg = JaasConfig {
            path: path.to_path_buf(),
            sections: BTreeMap::new(),
        };
        let mut t = tokens.into_iter().peekable();
        while let Some((line, tok)) = t.next() {
            let Tok::Word(name) = tok else {
                return Err(err(line, format!("expected a section name, found {tok}")));
            };
            match t.next() {
                Some((_, Tok::Punct('{'))) => {}
                Some((l, other)) => {
                    return Err(err(l, format!("expected '{{' after {name}, found {other}")));
                }
                None => return Err(err(line, format!("section {name} has no '{{'"))),
            }
            let mut modules = Vec::new();
            let close_line;
            loop {
                let (line, tok) = t
                    .next()
                    .ok_or_else(|| err(line, format!("section {name} is not closed with '}};'")))?;
                let class = match tok {
                    Tok::Punct('}') => {
                        close_line = line;
                        break;
                    }
                    Tok::Word(w) => w,
                    other => {
                        return Err(err(
                            line,
                            format!("expected a login module class, found {other}"),
                        ));
                    }
                };
                let flag = match t.next() {
                    Some((_, Tok::Word(f)))
                        if matches!(
                            f.to_ascii_lowercase().as_str(),
                            "required" | "requisite" | "sufficient" | "optional"
                        ) =>
                    {
                        f
                    }
                    Some((l, other)) => {
                        return Err(err(
                            l,
                            format!(
                                "{class}: expected required, requisite, sufficient or optional, found {other}"
                            ),
                        ));
                    }
                    None => return Err(err(line, format!("{class}: no control flag"))),
                };
                let mut options = BTreeMap::new();
                loop {
                    match t.next() {
                        Some((_, Tok::Punct(';'))) => break,
                        Some((l, Tok::Word(key))) => {
                            match t.next() {
                                Some((_, Tok::Punct('='))) => {}
                                _ => {
                                    return Err(err(
                                        l,
                                        format!("{class}: option {key} has no '='"),
                                    ));
                                }
                            }
                            let value = match t.next() {
                                Some((_, Tok::Word(v) | Tok::Quoted(v))) => v,
                                _ => {
                                    return Err(err(
                                        l,
                                        format!("{class}: option {key} has no value"),
                                    ));
                                }
                            };
                            options.insert(key, value);
                        }
                        Some((l, other)) => {
                            return Err(err(
                                l,
                                format!("{class}: expected an option or ';', found {other}"),
                            ));
                        }
                        None => return Err(err(line, format!("{class}: not ended with ';'"))),
                    }
                }
                modules.push(LoginModule {
                    class,
                    flag,
                    options,
                });
            }
            // the closing brace is followed by ';'
            match t.next() {
                Some((_, Tok::Punct(';'))) => {}
                Some((l, other)) => {
                    return Err(err(
                        l,
                        format!("expected ';' after section {name}'s '}}', found {other}"),
                    ));
                }
                None => {
                    return Err(err(
                        close_line,
                        format!("expected ';' after section {name}'s '}}'"),
                    ));
                }
            }
            cfg.sections.entry(name).or_default().extend(modules);
        }
        Ok(cfg)
    }

    /// The section `name`, or an error naming it and the file (ZooKeeper: "No JAAS
    /// configuration section named 'Server' was found in '...'").
    pub fn section(&self, name: &str) -> Result<&[LoginModule], String> {
        self.sections.get(name).map(Vec::as_slice).ok_or_else(|| {
            format!(
                "No JAAS configuration section named '{name}' was found in '{}'",
                self.path.display()
            )
        })
    }
}

/// DigestLoginModule's credentials in a section: `user_NAME="password"` options.
pub fn digest_users(modules: &[LoginModule]) -> BTreeMap<String, String> {
    modules
        .iter()
        .filter(|m| m.class == DIGEST_LOGIN_MODULE)
        .flat_map(|m| m.options.iter())
        .filter_map(|(k, v)| k.strip_prefix("user_").map(|u| (u.to_string(), v.clone())))
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "'{w}'"),
            // a quoted value may be a password: never shown
            Tok::Quoted(_) => write!(f, "a quoted value"),
            Tok::Punct(c) => write!(f, "'{c}'"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, (usize, String)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let start = line;
                let mut prev = ' ';
                loop {
                    match chars.next() {
                        Some('/') if prev == '*' => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            prev = c;
                        }
                        None => return Err((start, "a comment is not closed".into())),
                    }
                }
            }
            '{' | '}' | ';' | '=' => out.push((line, Tok::Punct(c))),
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => s.push(c),
                            None => return Err((start, "a quoted value is not closed".into())),
                        },
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            s.push(c);
                        }
                        None => return Err((start, "a quoted value is not closed".into())),
                    }
                }
                out.push((start, Tok::Quoted(s)));
            }
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '=' | '"') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push((line, Tok::Word(s)));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KAZOO: &str = r#"
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};
/* Kerberos */
QuorumServer {
       com.sun.security.auth.module.Krb5LoginModule required
       useKeyTab=true
       keyTab="/tmp/server.keytab" // the server's
       storeKey=true
       principal="zookeeper/127.0.0.1@KAZOOTEST.ORG";
};
"#;

    #[test]
    fn reads_sections_modules_and_options() {
        let c = JaasConfig::parse(Path::new("jaas.conf"), KAZOO).expect("parses");
        let server = c.section("Server").expect("Server");
        assert_eq!(server.len(), 1);
        assert_eq!(server[0].class, DIGEST_LOGIN_MODULE);
        let users = digest_users(server);
        assert_eq!(users["super"], "super_secret");
        assert_eq!(users["jaasuser"], "jaas_password");
        let q = c.section("QuorumServer").expect("QuorumServer");
        assert!(is_krb5_module(&q[0].class));
        assert_eq!(q[0].options["keyTab"], "/tmp/server.keytab");
        assert_eq!(q[0].options["useKeyTab"], "true");
        assert_eq!(
            q[0].options["principal"],
            "zookeeper/127.0.0.1@KAZOOTEST.ORG"
        );
        let missing = c.section("Client").expect_err("no Client");
        assert!(
            missing.contains("'Client'") && missing.contains("jaas.conf"),
            "{missing}"
        );
    }

    #[test]
    fn errors_name_the_line_and_never_a_password() {
        for (text, line) in [
            ("Server {\n x.Y required user_a=\"secret\"\n};", 3),
            ("Server {\n x.Y mandatory;\n};", 2),
            ("Server {\n x.Y required a=\"pw\";\n}", 3),
            ("Server \n x.Y required;\n};", 2),
            ("Server {\n x.Y required a=\"pw", 2),
        ] {
            let e = JaasConfig::parse(Path::new("j.conf"), text).expect_err(text);
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("j.conf:{line}:")), "{shown}");
            assert!(
                !shown.contains("secret") && !shown.contains("pw"),
                "{shown}"
            );
        }
        let c = JaasConfig::parse(Path::new("j"), KAZOO).expect("parses");
        let debug = format!("{c:?}");
        assert!(!debug.contains("jaas_password"), "{debug}");
    }
}
