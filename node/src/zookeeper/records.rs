//! ZooKeeper's persisted records (`zookeeper.jute`, module `org.apache.zookeeper.txn` and
//! `data`): the txn header, every txn body a log carries, `StatPersisted`, ACL lists, the
//! 3.6+ `TxnDigest`. Decoding only what the files hold; the quorum packets (DIFF, PROPOSAL)
//! carry the same header + txn bytes, so [`decode_txn_entry`] serves them too.
//!
//! A txn body decodes straight into the core's [`ResolvedTxn`] (`ensemble_core::txn`): the
//! one type the import's replica ([`super::tree::ZkTree`]) and the core's foreign-leader path
//! (`DataTree::apply` of `TxnOp::Resolved`) both apply.

use super::jute::{InputArchive, JuteError, OutputArchive};
use ensemble_core::ResolvedTxn;
use ensemble_core::tree::{CONTAINER_EPHEMERAL_OWNER, EphemeralType, TTL_MAX};
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

/// The ephemeralOwner a `CreateTTLTxn` gives its node. ZooKeeper's leader refuses a TTL out
/// of range; a record holding one is kept as it is.
fn ttl_owner(ttl: i64) -> i64 {
    if ttl > 0 && ttl <= TTL_MAX {
        EphemeralType::ttl_owner(ttl)
    } else {
        ttl
    }
}

/// The txn body of opcode `kind` (`SerializeUtils.deserializeTxn`) in a txn of `session`
/// (the header's clientId: an ephemeral create's owner). Old record versions (`CreateTxnV0`,
/// an empty closeSession) are recognised by what is left of the input. A check's version and
/// `SetMaxChildrenTxn` change nothing in ZooKeeper 3.x's tree, so both are a `Check`; a
/// reconfig is the `SetDataTxn` of /zookeeper/config it carries.
pub fn read_txn(i: &mut InputArchive, kind: i32, session: i64) -> Result<ResolvedTxn, JuteError> {
    Ok(match kind {
        op::CREATE | op::CREATE2 => {
            let path = i.ustring("path")?;
            let data = data(i)?;
            let acl = read_acls(i)?;
            let ephemeral = i.bool("ephemeral")?;
            // `CreateTxnV0` (before 3.3) ends here: -1, the parent's count plus one then.
            let parent_cversion = if i.remaining() >= 4 {
                i.int("parentCVersion")?
            } else {
                -1
            };
            ResolvedTxn::Create {
                path,
                data,
                acl,
                ephemeral_owner: if ephemeral { session } else { 0 },
                parent_cversion,
                // create (1) answers with the path only, create2 with a Stat too
                with_stat: kind == op::CREATE2,
            }
        }
        op::CREATE_CONTAINER => ResolvedTxn::Create {
            path: i.ustring("path")?,
            data: data(i)?,
            acl: read_acls(i)?,
            parent_cversion: i.int("parentCVersion")?,
            ephemeral_owner: CONTAINER_EPHEMERAL_OWNER,
            with_stat: true,
        },
        op::CREATE_TTL => {
            let path = i.ustring("path")?;
            let data = data(i)?;
            let acl = read_acls(i)?;
            let parent_cversion = i.int("parentCVersion")?;
            let ttl = i.long("ttl")?;
            ResolvedTxn::Create {
                path,
                data,
                acl,
                ephemeral_owner: ttl_owner(ttl),
                parent_cversion,
                with_stat: true,
            }
        }
        op::DELETE | op::DELETE_CONTAINER => ResolvedTxn::Delete {
            path: i.ustring("path")?,
        },
        op::SET_DATA | op::RECONFIG => ResolvedTxn::SetData {
            path: i.ustring("path")?,
            data: data(i)?,
            version: i.int("version")?,
        },
        op::SET_ACL => ResolvedTxn::SetAcl {
            path: i.ustring("path")?,
            acl: read_acls(i)?,
            version: i.int("version")?,
        },
        op::CHECK => {
            let path = i.ustring("path")?;
            i.int("version")?;
            ResolvedTxn::Check { path }
        }
        op::SET_MAX_CHILDREN => {
            let path = i.ustring("path")?;
            i.int("max")?;
            ResolvedTxn::Check { path }
        }
        op::CREATE_SESSION => ResolvedTxn::CreateSession {
            timeout_ms: i.int("timeOut")?,
        },
        op::CLOSE_SESSION => {
            // Before 3.6 (or with closeSessionTxn.enabled=false) the body is empty.
            if i.remaining() == 0 {
                ResolvedTxn::CloseSession { paths: None }
            } else {
                let n = i.count("paths2Delete", 4)?;
                let paths = (0..n)
                    .map(|_| i.ustring("path"))
                    .collect::<Result<_, _>>()?;
                ResolvedTxn::CloseSession { paths: Some(paths) }
            }
        }
        op::ERROR => ResolvedTxn::Error { err: i.int("err")? },
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
                let txn = read_txn(&mut sub, kind, session)?;
                if sub.remaining() != 0 {
                    return Err(sub.error(format!("{} bytes after sub-txn", sub.remaining())));
                }
                subs.push(txn);
            }
            ResolvedTxn::Multi(subs)
        }
        other => return Err(i.error(format!("unknown txn type {other}"))),
    })
}

/// One log entry (`Util.marshallTxnEntry`): header, txn body, then the optional digest.
pub fn decode_txn_entry(
    bytes: &[u8],
    base: u64,
) -> Result<(TxnHeader, ResolvedTxn, Option<TxnDigest>), JuteError> {
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
                ResolvedTxn::CloseSession { paths: None },
                Some(TxnDigest {
                    version: 2,
                    tree_digest,
                }),
            ));
        }
    }
    let with_digest = |mut j: InputArchive| -> Result<(ResolvedTxn, Option<TxnDigest>), JuteError> {
        let txn = read_txn(&mut j, hdr.kind, hdr.client_id)?;
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
            let txn = read_txn(&mut j, hdr.kind, hdr.client_id).map_err(|_| e.clone())?;
            if j.remaining() != 0 {
                return Err(e);
            }
            (txn, None)
        }
    };
    Ok((hdr, txn, digest))
}
