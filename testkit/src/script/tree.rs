//! `tree id=N`: server N's data tree, depth first, children in name order, with each node's
//! data (`down` when it is crashed).

use super::{World, num};
use ensemble_proto::proto::{Request, Response};
use std::fmt::Write as _;

pub fn tree(w: &World, args: &[&str]) -> String {
    let id = num(args, "id");
    let Some(s) = w.server(id) else {
        return "down\n".into();
    };
    let mut out = String::new();
    let mut stack = vec!["/".to_string()];
    while let Some(p) = stack.pop() {
        let get = Request::GetData {
            path: p.clone(),
            watch: false,
        };
        if let Ok(Response::GetData { data, .. }) = s.tree().read(&get, &[]) {
            let _ = writeln!(out, "{p} = {:?}", String::from_utf8_lossy(&data));
        }
        let children = Request::GetChildren {
            path: p.clone(),
            watch: false,
        };
        if let Ok(Response::GetChildren { mut children }) = s.tree().read(&children, &[]) {
            children.sort();
            for c in children.into_iter().rev() {
                stack.push(if p == "/" {
                    format!("/{c}")
                } else {
                    format!("{p}/{c}")
                });
            }
        }
    }
    out
}
