//! The JSON the AdminServer answers with: objects keep their keys in the order they were put
//! (ZooKeeper's responses are `LinkedHashMap`s) and print as Jackson's default pretty printer
//! prints them (`"key" : value`, two-space indent, `[ ]` and `{ }` when empty), so an answer
//! reads like ZooKeeper's.

use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub fn object() -> Json {
        Json::Object(Vec::new())
    }

    /// Put `key` (replacing an earlier value, as a map would, in its place).
    pub fn put(&mut self, key: &str, value: impl Into<Json>) {
        let Json::Object(entries) = self else {
            panic!("put on a JSON value that is not an object");
        };
        let value = value.into();
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value,
            None => entries.push((key.to_string(), value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(e) => e.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::Float(f) if f.is_finite() => {
                // Java prints a double with at least one decimal.
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    let _ = write!(out, "{f:.1}");
                } else {
                    let _ = write!(out, "{f}");
                }
            }
            Json::Float(f) => {
                let _ = write!(out, "\"{f}\"");
            }
            Json::Str(s) => quote(s, out),
            Json::Array(items) if items.is_empty() => out.push_str("[ ]"),
            Json::Array(items) => {
                out.push_str("[ ");
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out, depth);
                }
                out.push_str(" ]");
            }
            Json::Object(e) if e.is_empty() => out.push_str("{ }"),
            Json::Object(e) => {
                out.push_str("{\n");
                for (i, (k, v)) in e.iter().enumerate() {
                    indent(out, depth + 1);
                    quote(k, out);
                    out.push_str(" : ");
                    v.write(out, depth + 1);
                    if i + 1 < e.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                indent(out, depth);
                out.push('}');
            }
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<bool> for Json {
    fn from(v: bool) -> Json {
        Json::Bool(v)
    }
}
impl From<i64> for Json {
    fn from(v: i64) -> Json {
        Json::Int(v)
    }
}
impl From<u64> for Json {
    fn from(v: u64) -> Json {
        Json::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<i32> for Json {
    fn from(v: i32) -> Json {
        Json::Int(v as i64)
    }
}
impl From<u32> for Json {
    fn from(v: u32) -> Json {
        Json::Int(v as i64)
    }
}
impl From<usize> for Json {
    fn from(v: usize) -> Json {
        Json::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for Json {
    fn from(v: f64) -> Json {
        Json::Float(v)
    }
}
impl From<&str> for Json {
    fn from(v: &str) -> Json {
        Json::Str(v.to_string())
    }
}
impl From<String> for Json {
    fn from(v: String) -> Json {
        Json::Str(v)
    }
}
impl<T: Into<Json>> From<Vec<T>> for Json {
    fn from(v: Vec<T>) -> Json {
        Json::Array(v.into_iter().map(Into::into).collect())
    }
}
impl<T: Into<Json>> From<Option<T>> for Json {
    fn from(v: Option<T>) -> Json {
        v.map_or(Json::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_jackson() {
        let mut o = Json::object();
        o.put("command", "ruok");
        o.put("list", Vec::<i64>::new());
        o.put("map", Json::object());
        o.put("avg", 0.0);
        o.put("xs", vec!["a:1", "b\"2"]);
        o.put("error", Json::Null);
        assert_eq!(
            o.pretty(),
            "{\n  \"command\" : \"ruok\",\n  \"list\" : [ ],\n  \"map\" : { },\n  \"avg\" : 0.0,\n  \
             \"xs\" : [ \"a:1\", \"b\\\"2\" ],\n  \"error\" : null\n}"
        );
        o.put("command", "x");
        assert_eq!(o.get("command"), Some(&Json::Str("x".into())));
    }
}
