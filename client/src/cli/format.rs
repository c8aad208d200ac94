//! How zkCli.sh prints things: `StatPrinter`, `java.util.Date.toString()`, ACL ids as jute's
//! `ToStringOutputArchive` renders them, `ZKUtil.getPermString`, `WatchedEvent.toString()`
//! and `KeeperException.getMessage()`.

use ensemble_proto::proto::{
    Acl, EventType, Id, KeeperError, KeeperState, Stat, WatchedEvent, perms,
};

/// The eleven `StatPrinter` lines.
pub(crate) fn stat_lines(s: &Stat) -> Vec<String> {
    vec![
        format!("cZxid = 0x{:x}", s.czxid),
        format!("ctime = {}", java_date(s.ctime)),
        format!("mZxid = 0x{:x}", s.mzxid),
        format!("mtime = {}", java_date(s.mtime)),
        format!("pZxid = 0x{:x}", s.pzxid),
        format!("cversion = {}", s.cversion),
        format!("dataVersion = {}", s.version),
        format!("aclVersion = {}", s.aversion),
        format!("ephemeralOwner = 0x{:x}", s.ephemeral_owner),
        format!("dataLength = {}", s.data_length),
        format!("numChildren = {}", s.num_children),
    ]
}

unsafe extern "C" {
    /// POSIX: (re)reads TZ; the libc crate does not declare it.
    fn tzset();
}

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `new Date(millis).toString()`: `EEE MMM dd HH:mm:ss zzz yyyy` in the local time zone.
pub(crate) fn java_date(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    // time_t is 64-bit on every target Ensemble builds for
    let t = secs as libc::time_t;
    // SAFETY: localtime_r only writes into the tm we own; tzset reads TZ as Java does
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tzset();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return format!("{millis}");
        }
        tm
    };
    let zone = if tm.tm_zone.is_null() {
        "UTC".to_string()
    } else {
        // SAFETY: tm_zone points at a NUL-terminated name owned by libc's tz state
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    let day = DAYS.get(tm.tm_wday as usize).copied().unwrap_or("???");
    let month = MONTHS.get(tm.tm_mon as usize).copied().unwrap_or("???");
    format!(
        "{day} {month} {:02} {:02}:{:02}:{:02} {zone} {}",
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        i64::from(tm.tm_year) + 1900
    )
}

/// jute's `ToStringOutputArchive` escaping of a ustring.
fn jute_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// `Id.toString()`: `'scheme,'id` and a newline (it is a top-level jute record).
pub(crate) fn id_string(id: &Id) -> String {
    format!("{},{}\n", jute_string(&id.scheme), jute_string(&id.id))
}

/// `ZKUtil.getPermString`: c d r w a, in that order.
pub(crate) fn perm_string(p: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (perms::CREATE, 'c'),
        (perms::DELETE, 'd'),
        (perms::READ, 'r'),
        (perms::WRITE, 'w'),
        (perms::ADMIN, 'a'),
    ] {
        if p & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// `AclParser.parse`: `scheme:id:perm[,...]`; malformed entries are reported and skipped.
pub(crate) fn parse_acl(s: &str, err: &mut Vec<String>) -> Vec<Acl> {
    let mut acl = Vec::new();
    for a in s.split(',') {
        let (Some(first), Some(last)) = (a.find(':'), a.rfind(':')) else {
            err.push(format!("{a} does not have the form scheme:id:perm"));
            continue;
        };
        if first == last {
            err.push(format!("{a} does not have the form scheme:id:perm"));
            continue;
        }
        let mut p = 0;
        for c in a[last + 1..].chars() {
            match c {
                'r' => p |= perms::READ,
                'w' => p |= perms::WRITE,
                'c' => p |= perms::CREATE,
                'd' => p |= perms::DELETE,
                'a' => p |= perms::ADMIN,
                other => err.push(format!("Unknown perm type: {other}")),
            }
        }
        acl.push(Acl {
            perms: p,
            id: Id::new(&a[..first], &a[first + 1..last]),
        });
    }
    acl
}

pub(crate) fn state_name(s: KeeperState) -> &'static str {
    match s {
        KeeperState::Disconnected => "Disconnected",
        KeeperState::SyncConnected => "SyncConnected",
        KeeperState::AuthFailed => "AuthFailed",
        KeeperState::ConnectedReadOnly => "ConnectedReadOnly",
        KeeperState::SaslAuthenticated => "SaslAuthenticated",
        KeeperState::Expired => "Expired",
        KeeperState::Closed => "Closed",
    }
}

pub(crate) fn event_name(e: EventType) -> &'static str {
    match e {
        EventType::None => "None",
        EventType::NodeCreated => "NodeCreated",
        EventType::NodeDeleted => "NodeDeleted",
        EventType::NodeDataChanged => "NodeDataChanged",
        EventType::NodeChildrenChanged => "NodeChildrenChanged",
        EventType::DataWatchRemoved => "DataWatchRemoved",
        EventType::ChildWatchRemoved => "ChildWatchRemoved",
        EventType::PersistentWatchRemoved => "PersistentWatchRemoved",
    }
}

/// `WatchedEvent.toString()`; session events have a null path.
pub(crate) fn event_string(e: &WatchedEvent) -> String {
    let path = if e.kind == EventType::None && e.path.is_empty() {
        "null"
    } else {
        &e.path
    };
    format!(
        "WatchedEvent state:{} type:{} path:{}",
        state_name(e.state),
        event_name(e.kind),
        path
    )
}

/// `KeeperException.getCodeMessage`.
pub(crate) fn code_message(e: KeeperError) -> String {
    use KeeperError::*;
    match e {
        SystemError => "SystemError",
        RuntimeInconsistency => "RuntimeInconsistency",
        DataInconsistency => "DataInconsistency",
        ConnectionLoss => "ConnectionLoss",
        MarshallingError => "MarshallingError",
        NewConfigNoQuorum => "NewConfigNoQuorum",
        ReconfigInProgress => "ReconfigInProgress",
        Unimplemented => "Unimplemented",
        OperationTimeout => "OperationTimeout",
        BadArguments => "BadArguments",
        ApiError => "APIError",
        NoNode => "NoNode",
        NoAuth => "NoAuth",
        BadVersion => "BadVersion",
        NoChildrenForEphemerals => "NoChildrenForEphemerals",
        NodeExists => "NodeExists",
        InvalidAcl => "InvalidACL",
        AuthFailed => "AuthFailed",
        NotEmpty => "Directory not empty",
        SessionExpired => "Session expired",
        InvalidCallback => "Invalid callback",
        SessionMoved => "Session moved",
        NotReadOnly => "Not a read-only call",
        EphemeralOnLocalSession => "Ephemeral node on local session",
        NoWatcher => "No such watcher",
        ReconfigDisabled => "Reconfig is disabled",
        SessionClosedRequireSaslAuth => "Session closed because client failed to authenticate",
        QuotaExceeded => "Quota has exceeded",
        Throttled => "Op throttled due to high load",
        UnknownSession => return "Unknown error UNKNOWNSESSION".into(),
        RequestTimeout => return "Unknown error REQUESTTIMEOUT".into(),
    }
    .to_string()
}

/// `KeeperException.getMessage()`.
pub(crate) fn keeper_message(e: KeeperError, path: &str) -> String {
    if path.is_empty() {
        format!("KeeperErrorCode = {}", code_message(e))
    } else {
        format!("KeeperErrorCode = {} for {path}", code_message(e))
    }
}

/// `CliWrapperException.getMessage` for a KeeperException on `path`.
pub(crate) fn cli_error(e: KeeperError, path: &str) -> String {
    use KeeperError::*;
    match e {
        NoNode => format!("Node does not exist: {path}"),
        NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        NodeExists => format!("Node already exists: {path}"),
        NotEmpty => format!("Node not empty: {path}"),
        NotReadOnly => format!("Not a read-only call: {path}"),
        InvalidAcl => format!("Acl is not valid : {path}"),
        NoAuth => format!("Insufficient permission : {path}"),
        BadArguments => format!("Arguments are not valid : {path}"),
        BadVersion => format!("version No is not valid : {path}"),
        ReconfigInProgress => {
            "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)"
                .to_string()
        }
        NewConfigNoQuorum => "No quorum of new config is connected and up-to-date with the leader \
                              of last commmitted config - try invoking reconfiguration after new \
                              servers are connected and synced"
            .to_string(),
        QuotaExceeded => format!("Quota has exceeded : {path}"),
        other => keeper_message(other, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_shapes() {
        assert_eq!(perm_string(31), "cdrwa");
        assert_eq!(perm_string(1), "r");
        assert_eq!(id_string(&Id::anyone()), "'world,'anyone\n");
        assert_eq!(id_string(&Id::new("digest", "a,b%")), "'digest,'a%2Cb%25\n");
        let mut err = Vec::new();
        let acl = parse_acl("world:anyone:cdrwa,digest:u:h=:r,bad", &mut err);
        assert_eq!(acl.len(), 2);
        assert_eq!(acl[1].id, Id::new("digest", "u:h="));
        assert_eq!(err, vec!["bad does not have the form scheme:id:perm"]);
        let e = WatchedEvent {
            kind: EventType::None,
            state: KeeperState::SyncConnected,
            path: String::new(),
        };
        assert_eq!(
            event_string(&e),
            "WatchedEvent state:SyncConnected type:None path:null"
        );
        assert_eq!(
            keeper_message(KeeperError::NoWatcher, "/x"),
            "KeeperErrorCode = No such watcher for /x"
        );
        // SAFETY: the test process sets TZ before any other thread formats a date
        unsafe { std::env::set_var("TZ", "UTC") };
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_764_086_737_000), "Tue Nov 25 16:05:37 UTC 2025");
    }
}
