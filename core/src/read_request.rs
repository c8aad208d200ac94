//! Reads (ZooKeeper's FinalRequestProcessor for requests that change nothing): answered from
//! the local tree and this server's own connection state when they reach the front of their
//! connection's queue, registering the watches they ask for; setWatches after a reconnect.

use crate::server::ConnId;
use crate::watch::WatchKind;
use crate::zookeeper_server::ZooKeeperServer;
use ensemble_proto::proto::{ClientInfo, KeeperError, Reply, Request, Response};

/// A read's path as ZooKeeper's read ops take it: they check nothing but a NUL (BadArguments);
/// any other path that is not a valid znode path names no znode (NoNode), and "" names the
/// root (ZooKeeper's DataTree keeps the root under "" as well as "/"). The tree itself, like
/// the Java client, refuses such paths as BadArguments.
fn zk_read_path(path: &str) -> Result<&str, KeeperError> {
    if path.contains('\0') {
        return Err(KeeperError::BadArguments);
    }
    if path.is_empty() {
        return Ok(crate::path::ROOT);
    }
    crate::path::validate(path).map_err(|_| KeeperError::NoNode)?;
    assert!(path.starts_with('/'), "a valid path is absolute");
    Ok(path)
}

/// `request` with its paths taken as `zk_read_path` takes them (a multiRead's bad paths are
/// answered per op, after the tree has read it).
fn zk_read_paths(request: Request) -> Result<Request, KeeperError> {
    let fix = |path: String| -> Result<String, KeeperError> {
        zk_read_path(&path).map(|p| {
            if p == path {
                path.clone()
            } else {
                p.to_string()
            }
        })
    };
    Ok(match request {
        Request::Exists { path, watch } => Request::Exists {
            path: fix(path)?,
            watch,
        },
        Request::GetData { path, watch } => Request::GetData {
            path: fix(path)?,
            watch,
        },
        Request::GetChildren { path, watch } => Request::GetChildren {
            path: fix(path)?,
            watch,
        },
        Request::GetChildren2 { path, watch } => Request::GetChildren2 {
            path: fix(path)?,
            watch,
        },
        Request::GetAcl { path } => Request::GetAcl { path: fix(path)? },
        Request::GetAllChildrenNumber { path } => {
            Request::GetAllChildrenNumber { path: fix(path)? }
        }
        Request::MultiRead(ops) => Request::MultiRead(
            ops.into_iter()
                .map(|op| match op {
                    ensemble_proto::proto::ReadOp::GetData { path } if path.is_empty() => {
                        ensemble_proto::proto::ReadOp::GetData {
                            path: crate::path::ROOT.into(),
                        }
                    }
                    ensemble_proto::proto::ReadOp::GetChildren { path } if path.is_empty() => {
                        ensemble_proto::proto::ReadOp::GetChildren {
                            path: crate::path::ROOT.into(),
                        }
                    }
                    op => op,
                })
                .collect(),
        ),
        r => r,
    })
}

impl ZooKeeperServer {
    /// A request answered from the local tree and this server's own connection state.
    pub(crate) fn read(&mut self, conn: ConnId, request: Request, auth_len: usize) -> Reply {
        let Some(c) = self.clients.conns.get_mut(&conn) else {
            return Err(KeeperError::ConnectionLoss);
        };
        match request {
            Request::Ping => Ok(Response::Empty),
            // As ZooKeeper's digest provider names a user: without the password hash.
            Request::WhoAmI => Ok(Response::WhoAmI(
                c.auth[..auth_len.min(c.auth.len())]
                    .iter()
                    .map(|id| {
                        let user = match id.scheme.as_str() {
                            "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
                            _ => id.id.clone(),
                        };
                        ClientInfo {
                            auth_scheme: id.scheme.clone(),
                            user,
                        }
                    })
                    .collect(),
            )),
            Request::GetEphemerals { prefix } => Ok(Response::GetEphemerals {
                paths: self.tree.ephemerals(c.session, &prefix),
            }),
            r @ (Request::AddWatch { .. }
            | Request::CheckWatches { .. }
            | Request::RemoveWatches { .. }) => {
                let r = match r {
                    Request::CheckWatches { path, .. }
                        if self.plant(crate::plant::Plant::WatcherTypeIgnored) =>
                    {
                        Request::CheckWatches {
                            path,
                            kind: ensemble_proto::proto::WatcherType::Any,
                        }
                    }
                    r => r,
                };
                let answered = self.watches.answer(conn, &r);
                answered.unwrap_or(Err(KeeperError::Unimplemented))
            }
            Request::SetWatches {
                relative_zxid,
                data,
                exist,
                child,
                persistent,
                persistent_recursive,
                ..
            } => {
                self.set_watches(
                    conn,
                    relative_zxid,
                    data,
                    exist,
                    child,
                    persistent,
                    persistent_recursive,
                );
                Ok(Response::Empty)
            }
            r => {
                let auth = c.auth[..auth_len.min(c.auth.len())].to_vec();
                if self.plant(crate::plant::Plant::ReadPathValidated)
                    && let Request::GetData { path, .. }
                    | Request::Exists { path, .. }
                    | Request::GetChildren { path, .. }
                    | Request::GetChildren2 { path, .. } = &r
                    && crate::path::validate(path).is_err()
                {
                    return Err(KeeperError::BadArguments);
                }
                let r = zk_read_paths(r)?;
                let mut reply = self.tree.read(&r, &auth);
                if let (Request::MultiRead(ops), Ok(Response::MultiRead(results))) =
                    (&r, &mut reply)
                {
                    assert_eq!(ops.len(), results.len(), "one result per read");
                    for (op, result) in ops.iter().zip(results.iter_mut()) {
                        let (ensemble_proto::proto::ReadOp::GetData { path }
                        | ensemble_proto::proto::ReadOp::GetChildren { path }) = op;
                        if let Err(e) = zk_read_path(path)
                            && matches!(result, ensemble_proto::proto::ReadResult::Error(_))
                        {
                            *result = ensemble_proto::proto::ReadResult::Error(e);
                        }
                    }
                }
                self.register_read_watch(conn, &r, &reply);
                self.show_config_node(&r, &mut reply);
                reply
            }
        }
    }

    /// `/zookeeper/config` reads as the configuration this server has in force whenever its
    /// tree holds an older one: the first configuration (ZooKeeper writes the node from each
    /// server's own config at start-up, dataVersion -1, and again when the first leader
    /// versions it), or a committed one the tree has not applied yet (the dynamic file's at
    /// start, one a peer told us while LOOKING: ZooKeeper's initConfigInZKDatabase writes its
    /// QuorumVerifier, version and all, at start and at processReconfig). A server given no
    /// text of its configuration leaves the node's stored data.
    fn show_config_node(&self, r: &Request, reply: &mut Reply) {
        let config = |path: &str| path == crate::path::CONFIG;
        let reads_config = match r {
            Request::GetData { path, .. } | Request::Exists { path, .. } => config(path),
            Request::MultiRead(ops) => ops.iter().any(
                |op| matches!(op, ensemble_proto::proto::ReadOp::GetData { path } if config(path)),
            ),
            _ => false,
        };
        if !reads_config || self.cfg.config_node.is_empty() {
            return;
        }
        let stored = self.tree.committed_membership().map_or(0, |m| m.version);
        if stored >= self.membership.version && stored != 0 {
            return;
        }
        let text = &self.membership.to_text().into_bytes();
        assert!(!text.is_empty(), "a configuration has at least its version");
        let patch = |data: &mut Vec<u8>, stat: &mut ensemble_proto::proto::Stat| {
            *data = text.clone();
            stat.data_length = text.len() as i32;
            stat.version = -1;
        };
        match (r, reply) {
            (Request::GetData { path, .. }, Ok(Response::GetData { data, stat }))
                if path == crate::path::CONFIG =>
            {
                patch(data, stat)
            }
            (Request::Exists { path, .. }, Ok(Response::Stat(stat)))
                if path == crate::path::CONFIG =>
            {
                patch(&mut Vec::new(), stat)
            }
            (Request::MultiRead(ops), Ok(Response::MultiRead(results))) => {
                for (op, result) in ops.iter().zip(results.iter_mut()) {
                    if let (
                        ensemble_proto::proto::ReadOp::GetData { path },
                        ensemble_proto::proto::ReadResult::GetData { data, stat },
                    ) = (op, result)
                        && path == crate::path::CONFIG
                    {
                        patch(data, stat)
                    }
                }
            }
            _ => {}
        }
    }

    /// One-shot watches from reads, registered as ZooKeeper does: exists watches even a missing
    /// node; getData/getChildren only an existing one.
    fn register_read_watch(&mut self, conn: ConnId, r: &Request, reply: &Reply) {
        match r {
            Request::Exists { path, watch: true } => {
                if matches!(reply, Ok(_) | Err(KeeperError::NoNode)) {
                    self.watches.add(path, conn, WatchKind::Data);
                }
            }
            Request::GetData { path, watch: true } if reply.is_ok() => {
                assert!(self.tree.exists(path), "{path} read, so it exists");
                self.watches.add(path, conn, WatchKind::Data)
            }
            Request::GetChildren { path, watch: true }
            | Request::GetChildren2 { path, watch: true }
                if reply.is_ok() =>
            {
                assert!(self.tree.exists(path), "{path} listed, so it exists");
                self.watches.add(path, conn, WatchKind::Child)
            }
            _ => {}
        }
    }

    /// setWatches after a reconnect: fire at once what changed since the client's zxid.
    #[allow(clippy::too_many_arguments)]
    fn set_watches(
        &mut self,
        conn: ConnId,
        relative_zxid: i64,
        data: Vec<String>,
        exist: Vec<String>,
        child: Vec<String>,
        persistent: Vec<String>,
        persistent_recursive: Vec<String>,
    ) {
        let tree = &self.tree;
        let fire = self.watches.set_watches(
            conn,
            relative_zxid,
            data,
            exist,
            child,
            persistent,
            persistent_recursive,
            |path| tree.stat(path).map(|s| (s.mzxid, s.pzxid)),
        );
        if !fire.is_empty() {
            crate::probe!("watch.fired-on-reconnect");
        }
        self.clients
            .deferred_watches
            .extend(fire.into_iter().map(|e| (conn, e)));
    }
}
