//! What the core needs to know about its ensemble and its timing. The node runtime builds this
//! from `zoo.cfg`; the simulator draws it per seed.

use crate::txn::ServerId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LearnerType {
    Participant,
    Observer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub my_id: ServerId,
    /// Every member with its type. One participant and nothing else is standalone mode.
    pub members: BTreeMap<ServerId, LearnerType>,
    pub tick_time_ms: u64,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// Defaults 2 × tickTime and 20 × tickTime, as ZooKeeper's.
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// Txns between snapshots (ZooKeeper's snapCount, default 100000).
    pub snap_count: u64,
    /// Bytes per `SnapshotPart` effect (about: a part ends after the node that fills it).
    pub snapshot_part_bytes: usize,
    /// Bytes per frame of a sync (about: a SNAP is cut into parts of this size, a DIFF's txns
    /// are grouped up to it), so that no peer frame grows with the tree.
    pub sync_part_bytes: usize,
    /// `zookeeper.commitLogCount` (default 500): how many committed txns covered by the newest
    /// snapshot on disk stay in memory for a DIFF. ZooKeeper keeps that many and reads older
    /// ones from its txn log; the core reads no log back, so it keeps every txn after that
    /// snapshot too, and a learner behind the window gets a SNAP.
    pub committed_log_size: usize,
    /// FLE's finalize wait (ms) and the cap of its notification back-off (ms).
    pub finalize_wait_ms: u64,
    pub max_notification_interval_ms: u64,
    /// How often the leader looks for empty containers and expired TTL nodes (ms).
    pub container_check_interval_ms: u64,
    /// `zookeeper.extendedTypesEnabled`: allow TTL nodes.
    pub extended_types: bool,
    /// What `/zookeeper/config` reads as on this server: the membership as ZooKeeper's
    /// QuorumVerifier prints it (`server.N=host:quorum:election:role` lines, `version=0`).
    /// ZooKeeper fills that node from each server's own config, outside the replicated txns;
    /// empty leaves the node's stored data.
    pub config_node: Vec<u8>,
    /// The version of the configuration this server starts with when no committed reconfig
    /// made it: 0, or the version the first leader established with `reconfigEnabled` gave
    /// the first configuration (ZooKeeper's `version=100000000`, kept in the dynamic file's
    /// name). A reconfig's version is its txn's zxid, which the tree brings back itself.
    #[serde(default)]
    pub config_version: u64,
    /// `zookeeper.DigestAuthenticationProvider.superDigest`: `user:base64(sha1(user:password))`;
    /// a client whose digest authentication yields exactly this id is the super user, whom no
    /// ACL stops (ZooKeeper's `DigestAuthenticationProvider`).
    #[serde(default)]
    pub super_digest: Option<String>,
    /// The `authProvider.N` classes configured beyond ZooKeeper's defaults (`sasl`, `x509`).
    #[serde(default)]
    pub auth_providers: crate::acl::AuthProviders,
    /// `zookeeper.superUser`: the SASL principal that is the super user
    /// (`ZooKeeperServer.processSasl`).
    #[serde(default)]
    pub sasl_super_user: Option<String>,
    /// `zookeeper.X509AuthenticationProvider.superUser`: the certificate subject that is the
    /// super user.
    #[serde(default)]
    pub x509_super_user: Option<String>,
    /// `zookeeper.enforceQuota`: this server, as leader, refuses writes past a hard quota
    /// (`countHardLimit` / `byteHardLimit`) with QuotaExceeded. Only the leader's setting
    /// counts: it marks the txns it proposes ([`crate::txn::TxnOp::EnforcedWrite`]).
    #[serde(default)]
    pub enforce_quota: bool,
    /// `readonlymode.enabled` (a -D flag): a server cut off from the quorum (LOOKING longer
    /// than [`Config::read_only_delay_ms`], as QuorumPeer waits) serves the clients that asked
    /// canBeReadOnly from its committed state, and answers writes NotReadOnly.
    #[serde(default)]
    pub read_only_mode: bool,
    /// `localSessionsEnabled`: a new session lives on the server it connected to only (no
    /// createSession txn); it is unknown to every other server.
    #[serde(default)]
    pub local_sessions: bool,
    /// `ensemble.trustEmptyDataDirs` (zoo.cfg): count servers whose data dir vouches for
    /// nothing (empty, or currentEpoch removed) in quorums, as ZooKeeper does, so that a
    /// majority of new servers forms an ensemble without the rest. Off by default: a server
    /// whose disk was lost cannot be told from a new one, and counting it can elect a leader
    /// without committed txns (sim/README.md, "Disk loss").
    #[serde(default)]
    pub trust_empty_data_dirs: bool,
    /// `localSessionsUpgradingEnabled`: a local session's first ephemeral create upgrades it to
    /// a global session first (a createSession txn); without it the create fails
    /// EphemeralOnLocalSession.
    #[serde(default)]
    pub local_sessions_upgrading: bool,
    /// `reconfigEnabled`: the reconfig request (opcode 16) is served; otherwise answered
    /// ReconfigDisabled, as ZooKeeper's default.
    #[serde(default)]
    pub reconfig_enabled: bool,
    /// `standaloneEnabled` (default true): a reconfig may not leave fewer than 2 voters
    /// (ZooKeeper's prep refuses it, since one voter would then run standalone).
    #[serde(default = "yes")]
    pub standalone_enabled: bool,
    /// This server observes a foreign leader (Apache ZooKeeper's, `ensemble zk-observe`): it
    /// runs no election and speaks no ZAB itself; the runtime syncs it and feeds it the
    /// leader's resolved txns (`Event::Foreign`, core/src/foreign.rs).
    #[serde(default)]
    pub foreign_leader: bool,
    /// The planted bug to behave with (simulator only; ignored without the `plants` feature).
    pub plant: Option<crate::plant::Plant>,
    /// The zxid counter a new epoch's proposals start after (ZooKeeper: 0). For tests and the
    /// simulator only (no zoo.cfg key sets it): a value near 0xffffffff reaches the counter's
    /// roll-over without four billion txns.
    pub initial_zxid_counter: u32,
}

fn yes() -> bool {
    true
}

impl Config {
    /// The data tree's options this configuration asks for: what a runtime that loads a
    /// snapshot itself (the node, streaming it from the file at start) builds the tree with.
    pub fn tree_options(&self) -> crate::tree::TreeOptions {
        crate::tree::TreeOptions {
            extended_types: self.extended_types,
            auth_providers: self.auth_providers,
            plant: self.plant,
        }
    }

    /// ZooKeeper's defaults around a member list.
    pub fn new(my_id: ServerId, members: BTreeMap<ServerId, LearnerType>) -> Config {
        let tick = 2000;
        Config {
            my_id,
            members,
            tick_time_ms: tick,
            init_limit: 10,
            sync_limit: 5,
            min_session_timeout_ms: (2 * tick) as i32,
            max_session_timeout_ms: (20 * tick) as i32,
            snap_count: 100_000,
            snapshot_part_bytes: crate::tree::SNAPSHOT_PART,
            sync_part_bytes: crate::sync_stream::SYNC_PART,
            committed_log_size: 500,
            finalize_wait_ms: 200,
            max_notification_interval_ms: 60_000,
            container_check_interval_ms: 60_000,
            extended_types: true,
            config_node: Vec::new(),
            config_version: 0,
            super_digest: None,
            auth_providers: crate::acl::AuthProviders::default(),
            sasl_super_user: None,
            x509_super_user: None,
            enforce_quota: false,
            read_only_mode: false,
            local_sessions: false,
            trust_empty_data_dirs: false,
            local_sessions_upgrading: false,
            reconfig_enabled: false,
            standalone_enabled: true,
            foreign_leader: false,
            plant: None,
            initial_zxid_counter: 0,
        }
    }

    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.members
            .iter()
            .filter(|(_, t)| **t == LearnerType::Participant)
            .map(|(id, _)| *id)
    }

    pub fn is_voter(&self, id: ServerId) -> bool {
        self.members.get(&id) == Some(&LearnerType::Participant)
    }

    pub fn is_observer(&self) -> bool {
        self.members.get(&self.my_id) == Some(&LearnerType::Observer)
    }

    /// A majority of the voting members, as `QuorumMaj` counts it. The server asks its
    /// [`crate::quorum::QuorumVerifier`]; this is that verifier's answer for a one-off question.
    pub fn is_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a ServerId>) -> bool {
        crate::quorum::QuorumVerifier::majority(self).contains_quorum(ids.into_iter().copied())
    }

    pub fn is_standalone(&self) -> bool {
        self.members.len() == 1 && self.is_voter(self.my_id)
    }

    /// How long a server looks for a quorum before it serves read-only: QuorumPeer's grace
    /// period, `max(2000, tickTime)` ms.
    pub fn read_only_delay_ms(&self) -> u64 {
        self.tick_time_ms.max(2000)
    }

    /// Clamp a requested session timeout as ZooKeeper does.
    pub fn negotiate_timeout(&self, requested: i32) -> i32 {
        requested.clamp(self.min_session_timeout_ms, self.max_session_timeout_ms)
    }
}
