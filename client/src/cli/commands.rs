//! The commands of `org.apache.zookeeper.cli` (3.8), each with zkCli's options, checks and
//! messages.

use ensemble_proto::proto::{Acl, AddWatchMode, CreateMode, KeeperError, MultiOp, WatcherType};

use super::args::{Opt, Parsed, parse};
use super::format::{cli_error, id_string, keeper_message, parse_acl, perm_string, stat_lines};
use super::{CliError, Shell, usage_of};
use crate::{Client, ClientError, validate_path};

/// `CliWrapperException` / `MalformedPathException` for a client error on `path`.
fn wrap(e: ClientError, path: &str) -> CliError {
    CliError::new(match e {
        ClientError::Keeper(k) => cli_error(k, path),
        ClientError::BadPath(msg) => msg,
        ClientError::MultiFailed { error, .. } => cli_error(error, path),
        other => match other.keeper_code() {
            Some(code) => keeper_message(code, path),
            None => keeper_message(KeeperError::ConnectionLoss, path),
        },
    })
}

fn parse_or_err(opts: &[Opt], words: &[String]) -> Result<Parsed, CliError> {
    parse(opts, words).map_err(CliError::new)
}

/// `Integer.parseInt`, failing as zkCli's uncaught NumberFormatException reads.
fn parse_int(s: &str) -> Result<i32, CliError> {
    s.parse::<i32>().map_err(|_| {
        CliError::new(format!(
            "Exception in thread \"main\" java.lang.NumberFormatException: For input string: \"{s}\""
        ))
    })
}

/// `get path watch`, `ls path watch`, `stat path watch`: the old form, rewritten to `-w`.
fn retain_compatibility(
    sh: &mut Shell<'_>,
    opts: &[Opt],
    words: &mut [String],
    p: &mut Parsed,
    old: &str,
    new: &str,
) -> Result<(), CliError> {
    if p.args.len() > 2 {
        words[2] = "-w".to_string();
        sh.err(format!(
            "'{old}' has been deprecated. Please use '{new}' instead."
        ));
        *p = parse_or_err(opts, words)?;
    }
    Ok(())
}

fn print_stat(sh: &mut Shell<'_>, stat: &ensemble_proto::proto::Stat) {
    for l in stat_lines(stat) {
        sh.out(l);
    }
}

fn java_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

pub(crate) async fn exec(
    sh: &mut Shell<'_>,
    cmd: &str,
    mut words: Vec<String>,
) -> Result<(), CliError> {
    let zk = sh.client()?.clone();
    match cmd {
        "ls" => ls(sh, &zk, &mut words).await,
        "create" => create(sh, &zk, &words).await,
        "get" => {
            let opts = [Opt('s', false), Opt('w', false)];
            let mut p = parse_or_err(&opts, &words)?;
            if p.args.len() < 2 {
                return Err(CliError::new(usage_of("get")));
            }
            retain_compatibility(
                sh,
                &opts,
                &mut words,
                &mut p,
                "get path [watch]",
                "get [-s] [-w] path",
            )?;
            let path = p.args[1].clone();
            let (data, stat) = zk
                .get_data_or_null(&path, p.has('w'))
                .await
                .map_err(|e| wrap(e, &path))?;
            // as zkCli: null data (a node created without data) prints "null"
            match data {
                None => sh.out("null"),
                Some(data) => sh.out(String::from_utf8_lossy(&data)),
            }
            if p.has('s') {
                print_stat(sh, &stat);
            }
            Ok(())
        }
        "set" => {
            let p = parse_or_err(&[Opt('s', false), Opt('v', true)], &words)?;
            if p.args.len() < 3 {
                return Err(CliError::new(usage_of("set")));
            }
            let path = p.args[1].clone();
            let version = p.value('v').map(parse_int).transpose()?;
            let stat = zk
                .set_data(&path, p.args[2].as_bytes(), version)
                .await
                .map_err(|e| wrap(e, &path))?;
            if p.has('s') {
                print_stat(sh, &stat);
            }
            Ok(())
        }
        "delete" => {
            let p = parse_or_err(&[Opt('v', true)], &words)?;
            if p.args.len() < 2 {
                return Err(CliError::new(usage_of("delete")));
            }
            if p.args.len() > 2 {
                sh.err(
                    "'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.",
                );
            }
            let path = p.args[1].clone();
            let version = p.value('v').map(parse_int).transpose()?;
            zk.delete(&path, version).await.map_err(|e| wrap(e, &path))
        }
        "deleteall" => deleteall(sh, &zk, &words).await,
        "stat" => {
            let opts = [Opt('w', false)];
            let mut p = parse_or_err(&opts, &words)?;
            if p.args.len() < 2 {
                return Err(CliError::new(usage_of("stat")));
            }
            retain_compatibility(
                sh,
                &opts,
                &mut words,
                &mut p,
                "stat path [watch]",
                "stat [-w] path",
            )?;
            let path = p.args[1].clone();
            match zk
                .exists(&path, p.has('w'))
                .await
                .map_err(|e| wrap(e, &path))?
            {
                Some(stat) => {
                    print_stat(sh, &stat);
                    Ok(())
                }
                None => Err(CliError::new(cli_error(KeeperError::NoNode, &path))),
            }
        }
        "sync" => {
            let p = parse_or_err(&[], &words)?;
            if p.args.len() < 2 {
                return Err(CliError::new(usage_of("sync")));
            }
            let path = p.args[1].clone();
            match zk.sync(&path).await {
                Ok(_) => sh.out("Sync is OK"),
                Err(ClientError::BadPath(msg)) => return Err(CliError::new(msg)),
                Err(e) => {
                    let rc = e.keeper_code().map(|k| k.code()).unwrap_or(-4);
                    sh.out(format!("Sync has failed. rc={rc}"));
                }
            }
            Ok(())
        }
        "getAcl" => {
            let p = parse_or_err(&[Opt('s', false)], &words)?;
            if p.args.len() < 2 {
                return Err(CliError::new(usage_of("getAcl")));
            }
            let path = p.args[1].clone();
            let (acl, stat) = zk.get_acl(&path).await.map_err(|e| wrap(e, &path))?;
            for a in &acl {
                sh.out(format!("{}: {}", id_string(&a.id), perm_string(a.perms)));
            }
            if p.has('s') {
                print_stat(sh, &stat);
            }
            Ok(())
        }
        "setAcl" => set_acl(sh, &zk, &words).await,
        "addauth" => {
            let p = parse_or_err(&[], &words)?;
            if p.args.len() < 2 {
                return Err(CliError::new(usage_of("addauth")));
            }
            let auth = p
                .args
                .get(2)
                .map(|s| s.as_bytes().to_vec())
                .unwrap_or_default();
            // zkCli fires and forgets: a refusal shows up as an AuthFailed event
            let _ = zk.add_auth(&p.args[1], &auth).await;
            Ok(())
        }
        "addWatch" => {
            let p = parse_or_err(&[Opt('m', true)], &words)?;
            if p.args.len() != 2 {
                return Err(CliError::new(usage_of("addWatch")));
            }
            let mode = match p.value('m').map(str::to_uppercase).as_deref() {
                None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
                Some("PERSISTENT") => AddWatchMode::Persistent,
                Some(_) => return Err(CliError::new(usage_of("addWatch"))),
            };
            let path = p.args[1].clone();
            zk.add_watch(&path, mode).await.map_err(|e| wrap(e, &path))
        }
        "removewatches" => {
            let p = parse_or_err(
                &[
                    Opt('c', false),
                    Opt('d', false),
                    Opt('a', false),
                    Opt('l', false),
                ],
                &words,
            )?;
            if p.args.len() < 2 {
                return Err(CliError::new(usage_of("removewatches")));
            }
            let kind = if p.has('c') {
                WatcherType::Children
            } else if p.has('d') {
                WatcherType::Data
            } else {
                WatcherType::Any
            };
            let path = p.args[1].clone();
            zk.remove_watches(&path, kind, p.has('l'))
                .await
                .map_err(|e| wrap(e, &path))
        }
        "getEphemerals" => {
            let p = parse_or_err(&[], &words)?;
            let path = p.args.get(1).cloned().unwrap_or_else(|| "/".to_string());
            let eph = zk.get_ephemerals(&path).await.map_err(|e| wrap(e, &path))?;
            sh.out(java_list(&eph));
            Ok(())
        }
        "getAllChildrenNumber" => {
            let p = parse_or_err(&[], &words)?;
            if p.args.len() < 2 {
                return Err(CliError::new(usage_of("getAllChildrenNumber")));
            }
            let path = p.args[1].clone();
            let n = zk
                .get_all_children_number(&path)
                .await
                .map_err(|e| wrap(e, &path))?;
            sh.out(n.to_string());
            Ok(())
        }
        "whoami" => {
            let infos = zk.who_am_i().await.map_err(|e| wrap(e, ""))?;
            sh.out("Auth scheme: User");
            for i in infos {
                sh.out(format!("{}: {}", i.auth_scheme, i.user));
            }
            Ok(())
        }
        "version" => {
            let p = parse_or_err(&[], &words)?;
            if p.args.len() > 1 {
                return Err(CliError::new(usage_of("version")));
            }
            sh.out(format!(
                "ZooKeeper CLI version: ensemble-{} (ZooKeeper 3.8 wire protocol)",
                env!("CARGO_PKG_VERSION")
            ));
            Ok(())
        }
        "close" => {
            let _ = zk.close().await;
            Ok(())
        }
        "config" => {
            let p = parse_or_err(&[Opt('c', false), Opt('w', false), Opt('s', false)], &words)?;
            let path = "/zookeeper/config";
            let (data, stat) = zk
                .get_data(path, p.has('w'))
                .await
                .map_err(|e| wrap(e, ""))?;
            let text = String::from_utf8_lossy(&data).into_owned();
            if p.has('c') {
                sh.out(client_config_str(&text));
            } else {
                sh.out(text);
            }
            if p.has('s') {
                print_stat(sh, &stat);
            }
            Ok(())
        }
        "reconfig" => reconfig(sh, &zk, &words).await,
        // handled by the shell itself
        "connect" | "history" | "redo" | "printwatches" | "quit" => Ok(()),
        other => Err(CliError::new(format!(
            "{other} is not supported by ensemble cli"
        ))),
    }
}

async fn ls(sh: &mut Shell<'_>, zk: &Client, words: &mut [String]) -> Result<(), CliError> {
    let opts = [
        Opt('?', false),
        Opt('s', false),
        Opt('w', false),
        Opt('R', false),
    ];
    let mut p = parse_or_err(&opts, words)?;
    if p.has('?') {
        for l in [
            "usage: ls [options] path",
            " -?   help",
            " -R   recurse",
            " -s   stat",
            " -w   watch",
        ] {
            sh.out(l);
        }
    }
    retain_compatibility(sh, &opts, words, &mut p, "ls path [watch]", "ls [-w] path")?;
    if p.args.len() < 2 {
        return Err(CliError::new(usage_of("ls")));
    }
    let path = p.args[1].clone();
    let watch = p.has('w');
    if p.has('R') {
        // ZKUtil.visitSubTreeDFS: the node itself, then each level's children sorted
        validate_path(&path).map_err(CliError::new)?;
        zk.get_data(&path, watch)
            .await
            .map_err(|e| wrap(e, &path))?;
        sh.out(&path);
        visit_dfs(sh, zk, &path, watch, &mut |sh, p| {
            sh.out(p);
            async { Ok(()) }
        })
        .await
    } else {
        let (mut children, stat) = zk
            .get_children2(&path, watch)
            .await
            .map_err(|e| wrap(e, &path))?;
        children.sort();
        sh.out(java_list(&children));
        if p.has('s') {
            print_stat(sh, &stat);
        }
        Ok(())
    }
}

/// `ZKUtil.visitSubTreeDFSHelper`: children of `path` sorted, visited, then recursed into;
/// a node that vanished meanwhile is skipped.
async fn visit_dfs<F, Fut>(
    sh: &mut Shell<'_>,
    zk: &Client,
    path: &str,
    watch: bool,
    visit: &mut F,
) -> Result<(), CliError>
where
    F: FnMut(&mut Shell<'_>, &str) -> Fut,
    Fut: std::future::Future<Output = Result<(), CliError>>,
{
    let mut stack = vec![path.to_string()];
    // an explicit stack keeps the recursion's order: children of a node are all visited
    // before any grandchild, depth first over the sorted children
    while let Some(node) = stack.pop() {
        let mut children = match zk.get_children2(&node, watch).await {
            Ok((c, _)) => c,
            Err(ClientError::Keeper(KeeperError::NoNode)) => continue,
            Err(e) => return Err(wrap(e, &node)),
        };
        children.sort();
        let paths: Vec<String> = children
            .iter()
            .map(|c| {
                if node == "/" {
                    format!("/{c}")
                } else {
                    format!("{node}/{c}")
                }
            })
            .collect();
        for p in &paths {
            visit(sh, p).await?;
        }
        for p in paths.into_iter().rev() {
            stack.push(p);
        }
    }
    Ok(())
}

async fn create(sh: &mut Shell<'_>, zk: &Client, words: &[String]) -> Result<(), CliError> {
    let p = parse_or_err(
        &[
            Opt('e', false),
            Opt('s', false),
            Opt('c', false),
            Opt('t', true),
        ],
        words,
    )?;
    if p.args.len() < 2 {
        return Err(CliError::new(usage_of("create")));
    }
    let (e, s, c, t) = (p.has('e'), p.has('s'), p.has('c'), p.has('t'));
    if c && (e || s) {
        return Err(CliError::new(
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
        ));
    }
    let ttl = match p.value('t') {
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| CliError::new("-t argument must be a long value"))?,
        ),
        None => None,
    };
    if t && e {
        return Err(CliError::new("TTLs cannot be used with Ephemeral znodes"));
    }
    if t && c {
        return Err(CliError::new("TTLs cannot be used with Container znodes"));
    }
    let mode = match (e, s, c, t) {
        (true, true, _, _) => CreateMode::EphemeralSequential,
        (true, false, _, _) => CreateMode::Ephemeral,
        (false, true, _, true) => CreateMode::PersistentSequentialWithTtl,
        (false, true, _, false) => CreateMode::PersistentSequential,
        (false, false, true, _) => CreateMode::Container,
        (false, false, false, true) => CreateMode::PersistentWithTtl,
        (false, false, false, false) => CreateMode::Persistent,
    };
    // EphemeralType.TTL.toEphemeralOwner's bounds
    const MAX_TTL: i64 = 0xFF_FFFF_FFFF;
    if let Some(ttl) = ttl
        && (ttl <= 0 || ttl > MAX_TTL)
    {
        return Err(CliError::new(format!(
            "ttl must be positive and cannot be larger than: {MAX_TTL}"
        )));
    }
    let path = p.args[1].clone();
    // as zkCli: no data argument sends null data
    let data = p.args.get(2).map(|d| d.as_bytes().to_vec());
    let acl = match p.args.get(3) {
        Some(a) => parse_acl_reporting(sh, a),
        None => Acl::open_unsafe(),
    };
    if acl.is_empty() {
        // the Java client refuses an empty ACL before sending (no path in that exception)
        sh.err(keeper_message(KeeperError::InvalidAcl, ""));
        return Err(CliError::new(cli_error(KeeperError::InvalidAcl, "null")));
    }
    let result = zk.create_with(&path, data.as_deref(), acl, mode, ttl).await;
    match result {
        Ok(created) => {
            sh.err(format!("Created {created}"));
            Ok(())
        }
        Err(ClientError::Keeper(KeeperError::EphemeralOnLocalSession)) => {
            sh.err("Unable to create ephemeral node on a local session");
            Err(CliError::new(cli_error(
                KeeperError::EphemeralOnLocalSession,
                &path,
            )))
        }
        Err(ClientError::Keeper(KeeperError::InvalidAcl)) => {
            sh.err(keeper_message(KeeperError::InvalidAcl, &path));
            Err(CliError::new(cli_error(KeeperError::InvalidAcl, &path)))
        }
        Err(e) => Err(wrap(e, &path)),
    }
}

fn parse_acl_reporting(sh: &mut Shell<'_>, s: &str) -> Vec<Acl> {
    let mut complaints = Vec::new();
    let acl = parse_acl(s, &mut complaints);
    for c in complaints {
        sh.err(c);
    }
    acl
}

async fn set_acl(sh: &mut Shell<'_>, zk: &Client, words: &[String]) -> Result<(), CliError> {
    let p = parse_or_err(&[Opt('s', false), Opt('v', true), Opt('R', false)], words)?;
    if p.args.len() < 3 {
        return Err(CliError::new(usage_of("setAcl")));
    }
    let path = p.args[1].clone();
    let acl = parse_acl_reporting(sh, &p.args[2]);
    let version = p.value('v').map(parse_int).transpose()?;
    if acl.is_empty() {
        return Err(CliError::new(cli_error(KeeperError::InvalidAcl, "null")));
    }
    if p.has('R') {
        validate_path(&path).map_err(CliError::new)?;
        zk.get_data(&path, false)
            .await
            .map_err(|e| wrap(e, &path))?;
        let mut targets = vec![path.clone()];
        visit_dfs(sh, zk, &path, false, &mut |_, p| {
            targets.push(p.to_string());
            async { Ok(()) }
        })
        .await?;
        for t in targets {
            if let Err(e) = zk.set_acl(&t, acl.clone(), version).await {
                // zkCli prints these without a newline and carries on
                let msg = match e.keeper_code() {
                    Some(k) => keeper_message(k, &t),
                    None => e.to_string(),
                };
                sh.out_raw(msg);
            }
        }
        Ok(())
    } else {
        let stat = zk
            .set_acl(&path, acl, version)
            .await
            .map_err(|e| wrap(e, &path))?;
        if p.has('s') {
            print_stat(sh, &stat);
        }
        Ok(())
    }
}

/// `deleteall`: `ZKUtil.deleteRecursive` — list the subtree breadth first with getChildren,
/// then delete it leaves first in multis of `-b` deletes.
async fn deleteall(sh: &mut Shell<'_>, zk: &Client, words: &[String]) -> Result<(), CliError> {
    let p = parse_or_err(&[Opt('b', true)], words)?;
    if p.args.len() < 2 {
        return Err(CliError::new(usage_of("deleteall")));
    }
    let batch = match p.value('b') {
        Some(v) => v
            .parse::<i32>()
            .map_err(|_| CliError::new("-b argument must be an int value"))?,
        None => 1000,
    };
    let batch = usize::try_from(batch).unwrap_or(0).max(1);
    let root = p.args[1].clone();
    let mut tree = vec![root.clone()];
    let mut i = 0;
    while i < tree.len() {
        let node = tree[i].clone();
        let children = zk
            .get_children(&node, false)
            .await
            .map_err(|e| wrap(e, &node))?;
        for c in children {
            tree.push(if node == "/" {
                format!("/{c}")
            } else {
                format!("{node}/{c}")
            });
        }
        i += 1;
    }
    let mut ok = true;
    let ops: Vec<MultiOp> = tree
        .iter()
        .rev()
        .map(|p| MultiOp::Delete {
            path: p.clone(),
            version: -1,
        })
        .collect();
    for chunk in ops.chunks(batch) {
        match zk.multi(chunk.to_vec()).await {
            Ok(_) => {}
            Err(ClientError::BadPath(msg)) => return Err(CliError::new(msg)),
            Err(_) => {
                ok = false;
                break;
            }
        }
    }
    if !ok {
        sh.err("Failed to delete some node(s) in the subtree!");
    }
    Ok(())
}

/// `ConfigUtils.getClientConfigStr`: the config version and the client addresses.
fn client_config_str(config: &str) -> String {
    let mut version = "";
    let mut addrs = Vec::new();
    for line in config.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k == "version" {
            version = v;
        }
        if k.starts_with("server.")
            && let Some((_, client)) = v.split_once(';')
        {
            let client = client.trim();
            // [clientAddr:]clientPort; a bare port listens on every address
            if client.contains(':') {
                addrs.push(client.to_string());
            } else {
                addrs.push(format!("0.0.0.0:{client}"));
            }
        }
    }
    format!("{version} {}", addrs.join(","))
}

/// zkCli's ReconfigCommand: `-add`, `-remove` (incremental), `-members` or `-file`
/// (a whole new member list), `-v` the hex version it applies to, `-s` the Stat; prints
/// "Committed new configuration:" and the new configuration.
async fn reconfig(sh: &mut Shell<'_>, zk: &Client, words: &[String]) -> Result<(), CliError> {
    let mut opts: std::collections::BTreeMap<&str, Option<String>> = Default::default();
    let mut it = words.iter().skip(1);
    while let Some(w) = it.next() {
        let name = match w.as_str() {
            "-s" => {
                opts.insert("s", None);
                continue;
            }
            "-v" => "v",
            "-file" => "file",
            "-members" => "members",
            "-add" => "add",
            "-remove" => "remove",
            other if other.starts_with('-') => {
                return Err(CliError::new(format!("Unrecognized option: {other}")));
            }
            // commons-cli keeps stray arguments; ReconfigCommand ignores them
            _ => continue,
        };
        let Some(v) = it.next() else {
            return Err(CliError::new(format!(
                "Missing argument for option: {name}"
            )));
        };
        opts.insert(name, Some(v.clone()));
    }
    let has = |k: &str| opts.contains_key(k);
    let value = |k: &str| opts.get(k).cloned().flatten().unwrap_or_default();
    if !has("file") && !has("members") && !has("add") && !has("remove") {
        return Err(CliError::new(usage_of("reconfig")));
    }
    let version =
        match opts.get("v") {
            Some(Some(v)) => Some(i64::from_str_radix(v, 16).map_err(|_| {
                CliError::new("-v must be followed by a long (configuration version)")
            })?),
            _ => None,
        };
    if (has("file") || has("members")) && (has("add") || has("remove")) {
        return Err(CliError::new(
            "Can't use -file or -members together with -add or -remove (mixing incremental and \
             non-incremental modes is not allowed)",
        ));
    }
    if has("file") && has("members") {
        return Err(CliError::new(
            "Can't use -file and -members together (conflicting non-incremental modes)",
        ));
    }
    let joining = value("add").to_lowercase();
    let leaving = value("remove").to_lowercase();
    let mut members = value("members").to_lowercase();
    if has("file") {
        let file = value("file");
        members = members_of_file(&file)
            .map_err(|why| CliError::new(format!("Error processing {file}{why}")))?;
    }
    let (data, stat) = zk
        .reconfig(&joining, &leaving, &members, version)
        .await
        .map_err(|e| wrap(e, ""))?;
    sh.out(format!(
        "Committed new configuration:\n{}",
        String::from_utf8_lossy(&data)
    ));
    if has("s") {
        print_stat(sh, &stat);
    }
    Ok(())
}

/// A dynamic config file as `-file` takes it: its `server.N` lines and `version`, one per
/// line (what the server parses as a new member list); anything else is refused.
fn members_of_file(file: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!(" ({e})"))?;
    let mut lines = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            return Err(format!("Unrecognised parameter: {line}"));
        };
        let key = key.trim();
        if !key.starts_with("server.") && key != "version" {
            return Err(format!("Unrecognised parameter: {key}"));
        }
        lines.push(format!("{key}={}", value.trim()));
    }
    if !lines.iter().any(|l| l.starts_with("server.")) {
        return Err(": no server.N line".to_string());
    }
    Ok(lines.join("\n"))
}
