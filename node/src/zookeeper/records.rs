//! ZooKeeper's persisted records (`zookeeper.jute`, module `org.apache.zookeeper.txn` and
//! `data`): the txn header, every txn body a log carries, `StatPersisted`, ACL lists, the
//! 3.6+ `TxnDigest`. Decoding only what the files hold; the quorum packets (DIFF, PROPOSAL)
//! carry the same header + txn bytes, so [`decode_txn_entry`] serves them too.

use super::jute::{InputArchive, JuteError, OutputArchive};
use ensemble_proto::proto::{Acl, Id};

/// `ZooDefs.OpCode` values that appear in txns.
pub mod op {
    pub const ERROR: i32 = -1;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const SET_DATA: i32 = 5;
    pub const SET_ACL: i32 = 7;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const SET_MAX_CHILDREN: i32 = 23;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
}

/// `TxnHeader`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnHeader {
    pub client_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub time: i64,
    pub kind: i32,
}

/// `StatPersisted`, in its field order on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatPersisted {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

/// How a create made its node (which txn record carried it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateKind {
    /// `CreateTxn` (create, create2): ephemeral or persistent.
    Plain {
        ephemeral: bool,
    },
    Container,
    Ttl(i64),
}

/// One txn body, resolved as the leader logged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZkTxn {
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        kind: CreateKind,
        /// -1 in a pre-3.3 `CreateTxnV0` (the parent's count plus one then).
        parent_cversion: i32,
    },
    Delete {
        path: String,
    },
    /// setData, and reconfig (a SetDataTxn on /zookeeper/config).
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    CreateSession {
        timeout: i32,
    },
    /// The ephemerals to delete (3.6+ logs them; older ones leave it to the tree).
    CloseSession {
        paths: Option<Vec<String>>,
    },
    Error {
        err: i32,
    },
    /// `SetMaxChildrenTxn`: never applied by ZooKeeper 3.x.
    SetMaxChildren {
        path: String,
        max: i32,
    },
    /// Sub-txns with their opcodes.
    Multi(Vec<(i32, ZkTxn)>),
}

/// `TxnDigest`: the leader's tree digest after the txn (3.6+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnDigest {
    pub version: i32,
    pub tree_digest: i64,
}

pub fn read_acl(i: &mut InputArchive) -> Result<Acl, JuteError> {
    let perms = i.int("acl perms")?;
    let scheme = i.ustring("acl scheme")?;
    let id = i.ustring("acl id")?;
    Ok(Acl {
        perms,
        id: Id { scheme, id },
    })
}

/// `vector<ACL>`; ZooKeeper writes a null vector as -1, read as empty.
pub fn read_acls(i: &mut InputArchive) -> Result<Vec<Acl>, JuteError> {
    let save = i.clone();
    if i.int("acl count")? == -1 {
        return Ok(Vec::new());
    }
    *i = save;
    // perms + two string lengths
    let n = i.count("acl count", 12)?;
    (0..n).map(|_| read_acl(i)).collect()
}

pub fn write_acls(o: &mut OutputArchive, acls: &[Acl]) {
    o.int(i32::try_from(acls.len()).expect("fewer than 2^31 ACLs"));
    for a in acls {
        o.int(a.perms);
        o.ustring(&a.id.scheme);
        o.ustring(&a.id.id);
    }
}

pub fn read_stat(i: &mut InputArchive) -> Result<StatPersisted, JuteError> {
    Ok(StatPersisted {
        czxid: i.long("czxid")?,
        mzxid: i.long("mzxid")?,
        ctime: i.long("ctime")?,
        mtime: i.long("mtime")?,
        version: i.int("version")?,
        cversion: i.int("cversion")?,
        aversion: i.int("aversion")?,
        ephemeral_owner: i.long("ephemeralOwner")?,
        pzxid: i.long("pzxid")?,
    })
}

pub fn write_stat(o: &mut OutputArchive, s: &StatPersisted) {
    o.long(s.czxid);
    o.long(s.mzxid);
    o.long(s.ctime);
    o.long(s.mtime);
    o.int(s.version);
    o.int(s.cversion);
    o.int(s.aversion);
    o.long(s.ephemeral_owner);
    o.long(s.pzxid);
}

pub fn read_header(i: &mut InputArchive) -> Result<TxnHeader, JuteError> {
    Ok(TxnHeader {
        client_id: i.long("clientId")?,
        cxid: i.int("cxid")?,
        zxid: i.long("zxid")?,
        time: i.long("time")?,
        kind: i.int("type")?,
    })
}

fn data(i: &mut InputArchive) -> Result<Option<Vec<u8>>, JuteError> {
    Ok(i.buffer("data")?.map(<[u8]>::to_vec))
}

/// The txn body of opcode `kind` (`SerializeUtils.deserializeTxn`). Old record versions
/// (`CreateTxnV0`, an empty closeSession) are recognised by what is left of the input.
pub fn read_txn(i: &mut InputArchive, kind: i32) -> Result<ZkTxn, JuteError> {
    Ok(match kind {
        op::CREATE | op::CREATE2 => {
            let path = i.ustring("path")?;
            let data = data(i)?;
            let acl = read_acls(i)?;
            let ephemeral = i.bool("ephemeral")?;
            // `CreateTxnV0` (before 3.3) ends here.
            let parent_cversion = if i.remaining() >= 4 {
                i.int("parentCVersion")?
            } else {
                -1
            };
            ZkTxn::Create {
                path,
                data,
                acl,
                kind: CreateKind::Plain { ephemeral },
                parent_cversion,
            }
        }
        op::CREATE_CONTAINER => ZkTxn::Create {
            path: i.ustring("path")?,
            data: data(i)?,
            acl: read_acls(i)?,
            parent_cversion: i.int("parentCVersion")?,
            kind: CreateKind::Container,
        },
        op::CREATE_TTL => {
            let path = i.ustring("path")?;
            let data = data(i)?;
            let acl = read_acls(i)?;
            let parent_cversion = i.int("parentCVersion")?;
            let ttl = i.long("ttl")?;
            ZkTxn::Create {
                path,
                data,
                acl,
                kind: CreateKind::Ttl(ttl),
                parent_cversion,
            }
        }
        op::DELETE | op::DELETE_CONTAINER => ZkTxn::Delete {
            path: i.ustring("path")?,
        },
        op::SET_DATA | op::RECONFIG => ZkTxn::SetData {
            path: i.ustring("path")?,
            data: data(i)?,
            version: i.int("version")?,
        },
        op::SET_ACL => ZkTxn::SetAcl {
            path: i.ustring("path")?,
            acl: read_acls(i)?,
            version: i.int("version")?,
        },
        op::CHECK => ZkTxn::Check {
            path: i.ustring("path")?,
            version: i.int("version")?,
        },
        op::CREATE_SESSION => ZkTxn::CreateSession {
            timeout: i.int("timeOut")?,
        },
        op::CLOSE_SESSION => {
            // Before 3.6 (or with closeSessionTxn.enabled=false) the body is empty.
            if i.remaining() == 0 {
                ZkTxn::CloseSession { paths: None }
            } else {
                let n = i.count("paths2Delete", 4)?;
                let paths = (0..n)
                    .map(|_| i.ustring("path"))
                    .collect::<Result<_, _>>()?;
                ZkTxn::CloseSession { paths: Some(paths) }
            }
        }
        op::ERROR => ZkTxn::Error { err: i.int("err")? },
        op::SET_MAX_CHILDREN => ZkTxn::SetMaxChildren {
            path: i.ustring("path")?,
            max: i.int("max")?,
        },
        op::MULTI => {
            let n = i.count("txns", 8)?;
            let mut subs = Vec::with_capacity(n);
            for _ in 0..n {
                let kind = i.int("sub-txn type")?;
                let at = i.offset();
                let body = i
                    .buffer("sub-txn data")?
                    .ok_or_else(|| i.error("null sub-txn"))?;
                if kind == op::MULTI {
                    return Err(i.error("a multi inside a multi"));
                }
                let mut sub = InputArchive::new(body, at + 4);
                let txn = read_txn(&mut sub, kind)?;
                if sub.remaining() != 0 {
                    return Err(sub.error(format!("{} bytes after sub-txn", sub.remaining())));
                }
                subs.push((kind, txn));
            }
            ZkTxn::Multi(subs)
        }
        other => return Err(i.error(format!("unknown txn type {other}"))),
    })
}

/// One log entry (`Util.marshallTxnEntry`): header, txn body, then the optional digest.
pub fn decode_txn_entry(
    bytes: &[u8],
    base: u64,
) -> Result<(TxnHeader, ZkTxn, Option<TxnDigest>), JuteError> {
    let mut i = InputArchive::new(bytes, base);
    let hdr = read_header(&mut i)?;
    // The body ends where the digest (int + long) starts, if there is one: read the body from
    // a slice without the digest when 12 bytes would be left over, else from the whole.
    let body_start = i.clone();
    if hdr.kind == op::CLOSE_SESSION && i.remaining() == 12 {
        // An empty CloseSessionTxn (closeSessionTxn.enabled=false) and a digest: as a body,
        // 12 bytes starting with the count 2 would be two empty paths, which no txn holds.
        let mut j = i.clone();
        if j.int("digest version")? == 2 {
            let tree_digest = j.long("treeDigest")?;
            return Ok((
                hdr,
                ZkTxn::CloseSession { paths: None },
                Some(TxnDigest {
                    version: 2,
                    tree_digest,
                }),
            ));
        }
    }
    let with_digest = |mut j: InputArchive| -> Result<(ZkTxn, Option<TxnDigest>), JuteError> {
        let txn = read_txn(&mut j, hdr.kind)?;
        match j.remaining() {
            0 => Ok((txn, None)),
            12 => Ok((
                txn,
                Some(TxnDigest {
                    version: j.int("digest version")?,
                    tree_digest: j.long("treeDigest")?,
                }),
            )),
            n => Err(j.error(format!("{n} bytes after the txn"))),
        }
    };
    let (txn, digest) = match with_digest(body_start.clone()) {
        Ok(r) => r,
        // A CreateTxnV0 or an old closeSession has a body whose end is only known by the
        // record's length: try it as the whole record.
        Err(e) => {
            let mut j = body_start;
            let txn = read_txn(&mut j, hdr.kind).map_err(|_| e.clone())?;
            if j.remaining() != 0 {
                return Err(e);
            }
            (txn, None)
        }
    };
    Ok((hdr, txn, digest))
}
