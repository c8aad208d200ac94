//! sim/FINDINGS.md no. 15 (`client.watch-missed`, swarm seed 8074): whether a watch re-set by
//! setWatches hears an event on a node only some ids may READ depends on whether the
//! connection holds those ids when the event fires. The core checks READ then (ZooKeeper
//! 3.8.4+, CVE-2024-23944) and spends the watch either way. So a connection that re-sets its
//! watches before its addAuth (the Java client's primeConnection order) can lose an event, and
//! one authenticated first (a certificate, SASL) hears it: what the simulated client and the
//! claim now model.

use ensemble_core::server::Event;
use ensemble_proto::proto::Request;
use ensemble_testkit::script::{World, run_command};

const BOB: &str = "bob:bob-pw";

/// One server; client `w`, authenticated as bob, made `/p`, which only bob may use; client
/// `x`, bob too, writes under it.
fn setup() -> Option<World> {
    let mut w = None;
    for line in [
        "cluster voters=1".to_string(),
        "stabilize".to_string(),
        "connect client=w server=1".to_string(),
        format!("op client=w auth digest {BOB}"),
        "connect client=x server=1".to_string(),
        format!("op client=x auth digest {BOB}"),
        format!(
            "op client=w create /p x acl=digest:{}:cdrwa",
            ensemble_core::acl::digest_id(BOB)
        ),
    ] {
        run_command(&mut w, &line);
    }
    w
}

/// `x` creates `path` under `/p`; what the clients heard.
fn create(w: &mut Option<World>, path: &str) -> String {
    let out = run_command(w, &format!("op client=x create {path} v"));
    assert!(
        out.contains(&format!("client x: create {path} v -> created {path}")),
        "{out}"
    );
    out
}

/// A request on client `name`'s connection, nothing else moving (setWatches and auth use the
/// xids ZooKeeper's client gives them).
fn raw(w: &mut Option<World>, name: &str, xid: i32, request: Request) {
    let world = w.as_mut().expect("cluster");
    let c = &world.clients.clients[name];
    let (server, conn) = (c.server, c.conn);
    world.step(server, Event::Client { conn, xid, request });
}

fn set_child_watch(w: &mut Option<World>, name: &str) {
    let last = w.as_ref().expect("cluster").clients.clients[name].last_zxid;
    let request = Request::SetWatches {
        relative_zxid: last,
        data: Vec::new(),
        exist: Vec::new(),
        child: vec!["/p".into()],
        persistent: Vec::new(),
        persistent_recursive: Vec::new(),
        v2: false,
    };
    raw(w, name, -8, request);
}

fn auth_bob(w: &mut Option<World>, name: &str) {
    let request = Request::Auth {
        scheme: "digest".into(),
        auth: BOB.as_bytes().to_vec(),
    };
    raw(w, name, -4, request);
}

#[test]
fn a_watch_reset_before_its_auth_may_lose_the_event() {
    let mut w = setup();
    // w's session from a second connection, as a reconnect: setWatches first, addAuth after
    let out = run_command(&mut w, "connect client=r server=1 session=of:w");
    assert!(out.contains("client r: connected to 1"), "{out}");
    set_child_watch(&mut w, "r");
    let out = create(&mut w, "/p/a");
    assert!(!out.contains("client r: WATCH"), "{out}");
    auth_bob(&mut w, "r");
    // the watch was spent on the withheld event: nothing more comes
    let out = create(&mut w, "/p/b");
    assert!(!out.contains("client r: WATCH"), "{out}");
}

#[test]
fn a_watch_reset_after_its_auth_hears_the_event() {
    let mut w = setup();
    // the identity first (as a certificate or SASL is), then setWatches
    let out = run_command(&mut w, "connect client=r server=1 session=of:w");
    assert!(out.contains("client r: connected to 1"), "{out}");
    auth_bob(&mut w, "r");
    set_child_watch(&mut w, "r");
    let out = create(&mut w, "/p/a");
    assert!(
        out.contains("client r: WATCH NodeChildrenChanged /p"),
        "{out}"
    );
}
