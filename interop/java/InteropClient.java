// Apache ZooKeeper's Java client (3.8, the Debian package's zookeeper.jar) against an ensemble:
// CRUD + Stat, sequential/ephemeral, every watch kind (incl. persistent, recursive, removal),
// watch re-registration after a reconnect (setWatches), multi + rollback, multiRead,
// getEphemerals, getAllChildrenNumber, whoAmI, ACLs, TTL/container nodes, session re-attach,
// pipelined async FIFO order, sync-then-read on every server, a large value.
//
//   javac -cp /usr/share/java/zookeeper.jar -d build InteropClient.java
//   java -cp build:/usr/share/java/zookeeper.jar InteropClient 127.0.0.1:2181,127.0.0.1:2182,...
//
// Prints one line per check, "PASS name" or "FAIL name: why", then "JAVA DONE passed=N failed=M";
// exits 1 when any check failed.

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.Watcher.Event.EventType;
import org.apache.zookeeper.Watcher.Event.KeeperState;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;

public class InteropClient {
    static String all;
    static String[] hosts;
    static String root;
    static int passed = 0, failed = 0;
    static final List<ZooKeeper> open = new ArrayList<>();

    interface Check { void run() throws Exception; }

    static void check(String name, Check c) {
        try {
            c.run();
            passed++;
            System.out.println("PASS " + name);
        } catch (Throwable t) {
            failed++;
            String msg = String.valueOf(t);
            StackTraceElement[] st = t.getStackTrace();
            for (StackTraceElement e : st) {
                if (e.getClassName().startsWith("InteropClient")) { msg += " @" + e.getLineNumber(); break; }
            }
            System.out.println("FAIL " + name + ": " + msg.replace('\n', ' '));
        }
        System.out.flush();
    }

    static void ok(boolean cond, String what) {
        if (!cond) throw new AssertionError(what);
    }

    static <T> void eq(T want, T got, String what) {
        if (want == null ? got != null : !want.equals(got))
            throw new AssertionError(what + ": want " + want + ", got " + got);
    }

    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }
    static String s(byte[] b) { return new String(b, StandardCharsets.UTF_8); }

    /** Collects events; the connected state is awaited at construction. */
    static class Events implements Watcher {
        final BlockingQueue<WatchedEvent> q = new LinkedBlockingQueue<>();
        public void process(WatchedEvent e) { q.add(e); }
        WatchedEvent next(long ms) throws InterruptedException {
            WatchedEvent e = q.poll(ms, TimeUnit.MILLISECONDS);
            if (e == null) throw new AssertionError("no event in " + ms + " ms");
            return e;
        }
        /** The next event that is not a connection-state (None) event. */
        WatchedEvent nextNode(long ms) throws InterruptedException {
            long deadline = System.currentTimeMillis() + ms;
            while (true) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) throw new AssertionError("no node event in " + ms + " ms");
                WatchedEvent e = q.poll(left, TimeUnit.MILLISECONDS);
                if (e == null) throw new AssertionError("no node event in " + ms + " ms");
                if (e.getType() != EventType.None) return e;
            }
        }
        void none(long ms) throws InterruptedException {
            long deadline = System.currentTimeMillis() + ms;
            while (true) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) return;
                WatchedEvent e = q.poll(left, TimeUnit.MILLISECONDS);
                if (e == null) return;
                if (e.getType() != EventType.None) throw new AssertionError("unexpected event " + e);
            }
        }
    }

    static void expect(WatchedEvent e, EventType type, String path) {
        if (e.getType() != type || !path.equals(e.getPath()))
            throw new AssertionError("want " + type + " " + path + ", got " + e);
    }

    static ZooKeeper connect(String hosts, Watcher w) throws Exception {
        final CountDownLatch up = new CountDownLatch(1);
        final Watcher inner = w;
        ZooKeeper zk = new ZooKeeper(hosts, 10000, e -> {
            if (e.getState() == KeeperState.SyncConnected) up.countDown();
            if (inner != null) inner.process(e);
        });
        if (!up.await(20, TimeUnit.SECONDS)) {
            zk.close();
            throw new AssertionError("no connection to " + hosts + " in 20 s");
        }
        open.add(zk);
        return zk;
    }

    static ZooKeeper connect(String hosts) throws Exception { return connect(hosts, null); }

    /** A TCP forwarder whose connections can be cut, to force the client to reconnect. */
    static class Forwarder implements Runnable {
        final ServerSocket ss;
        final int target;
        final List<Socket> socks = new CopyOnWriteArrayList<>();
        volatile boolean refuse = false, stop = false;
        Forwarder(int target) throws IOException {
            this.target = target;
            ss = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
            Thread t = new Thread(this);
            t.setDaemon(true);
            t.start();
        }
        int port() { return ss.getLocalPort(); }
        public void run() {
            while (!stop) {
                try {
                    Socket a = ss.accept();
                    if (refuse) { a.close(); continue; }
                    Socket z = new Socket("127.0.0.1", target);
                    socks.add(a); socks.add(z);
                    pipe(a, z); pipe(z, a);
                } catch (IOException e) {
                    if (stop) return;
                }
            }
        }
        void pipe(Socket from, Socket to) {
            Thread t = new Thread(() -> {
                byte[] buf = new byte[65536];
                try {
                    InputStream in = from.getInputStream();
                    OutputStream out = to.getOutputStream();
                    int n;
                    while ((n = in.read(buf)) > 0) out.write(buf, 0, n);
                } catch (IOException e) { /* cut */ }
                try { from.close(); } catch (IOException e) { }
                try { to.close(); } catch (IOException e) { }
            });
            t.setDaemon(true);
            t.start();
        }
        void cut() {
            for (Socket s : socks) { try { s.close(); } catch (IOException e) { } }
            socks.clear();
        }
        void close() throws IOException { stop = true; cut(); ss.close(); }
    }

    public static void main(String[] args) throws Exception {
        all = args[0];
        hosts = all.split(",");
        root = "/java-" + UUID.randomUUID().toString().substring(0, 8);
        ZooKeeper zk = connect(hosts[0]);
        zk.create(root, new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);

        check("crud_and_stat", () -> {
            String p = root + "/crud";
            Stat st = new Stat();
            eq(p, zk.create(p, b("v0"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, st), "create2 path");
            eq(0, st.getVersion(), "version");
            eq(st.getCzxid(), st.getMzxid(), "czxid==mzxid");
            Stat st2 = new Stat();
            eq("v0", s(zk.getData(p, false, st2)), "data");
            eq(st, st2, "stat from create2 == stat from getData");
            Stat st3 = zk.setData(p, b("v1"), 0);
            eq(1, st3.getVersion(), "version after set");
            try { zk.setData(p, b("v2"), 0); throw new AssertionError("no BadVersion"); }
            catch (KeeperException.BadVersionException e) { }
            try { zk.create(p, null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT); throw new AssertionError("no NodeExists"); }
            catch (KeeperException.NodeExistsException e) { }
            zk.create(p + "/kid", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            Stat ps = new Stat();
            eq(Collections.singletonList("kid"), zk.getChildren(p, false, ps), "children");
            eq(1, ps.getNumChildren(), "numChildren");
            try { zk.delete(p, -1); throw new AssertionError("no NotEmpty"); }
            catch (KeeperException.NotEmptyException e) { }
            zk.delete(p + "/kid", 0);
            zk.delete(p, 1);
            ok(zk.exists(p, false) == null, "deleted");
            try { zk.getData(p, false, null); throw new AssertionError("no NoNode"); }
            catch (KeeperException.NoNodeException e) { }
        });

        check("sequential_and_ephemeral", () -> {
            String p = root + "/seq";
            zk.create(p, null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            for (int i = 0; i < 3; i++)
                eq(String.format("%s/n-%010d", p, i),
                   zk.create(p + "/n-", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL), "seq");
            ZooKeeper other = connect(hosts[1]);
            String e = other.create(p + "/e-", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL);
            eq(String.format("%s/e-%010d", p, 3), e, "ephemeral sequential");
            zk.sync(p, null, null);
            Stat st = zk.exists(e, false);
            ok(st != null && st.getEphemeralOwner() == other.getSessionId(), "owner");
            try { other.create(e + "/kid", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT); throw new AssertionError("child of ephemeral"); }
            catch (KeeperException.NoChildrenForEphemeralsException x) { }
            Events ev = new Events();
            zk.exists(e, ev);
            other.close();
            expect(ev.nextNode(10000), EventType.NodeDeleted, e);
        });

        check("data_exists_child_watches", () -> {
            String p = root + "/w";
            Events ev = new Events();
            ZooKeeper w = connect(hosts[hosts.length - 1], ev);
            ZooKeeper m = connect(hosts[1]);
            ok(w.exists(p, true) == null, "absent");       // default watcher
            m.create(p, b("x"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            expect(ev.nextNode(10000), EventType.NodeCreated, p);
            w.getData(p, true, null);
            w.getChildren(p, true);
            m.setData(p, b("y"), -1);
            expect(ev.nextNode(10000), EventType.NodeDataChanged, p);
            m.create(p + "/c", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            expect(ev.nextNode(10000), EventType.NodeChildrenChanged, p);
            m.setData(p, b("z"), -1);   // data watch was one-shot
            ev.none(1000);
            Events own = new Events();   // a watcher object of its own
            w.getData(p, own, null);
            m.delete(p + "/c", -1);
            m.delete(p, -1);
            expect(own.nextNode(10000), EventType.NodeDeleted, p);
        });

        check("persistent_and_recursive_watches", () -> {
            String p = root + "/pw";
            ZooKeeper m = connect(hosts[2 % hosts.length]);
            // two sessions: ZooKeeper 3.8 keeps one watch mode per path and connection
            // (ZOOKEEPER-4466), so one session cannot hold both kinds on one path there
            ZooKeeper zr = connect(hosts[1 % hosts.length]);
            Events pers = new Events(), rec = new Events();
            zk.addWatch(p, pers, AddWatchMode.PERSISTENT);
            zr.addWatch(p, rec, AddWatchMode.PERSISTENT_RECURSIVE);
            m.create(p, null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            m.setData(p, b("1"), -1);
            m.create(p + "/a", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            m.create(p + "/a/b", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            m.delete(p + "/a/b", -1);
            expect(pers.nextNode(10000), EventType.NodeCreated, p);
            expect(pers.nextNode(10000), EventType.NodeDataChanged, p);
            expect(pers.nextNode(10000), EventType.NodeChildrenChanged, p);
            pers.none(500);
            expect(rec.nextNode(10000), EventType.NodeCreated, p);
            expect(rec.nextNode(10000), EventType.NodeDataChanged, p);
            expect(rec.nextNode(10000), EventType.NodeCreated, p + "/a");
            expect(rec.nextNode(10000), EventType.NodeCreated, p + "/a/b");
            expect(rec.nextNode(10000), EventType.NodeDeleted, p + "/a/b");
            rec.none(500);
            // removal: the client tells the watcher its watch is gone
            zk.removeWatches(p, pers, Watcher.WatcherType.Any, false);
            expect(pers.nextNode(10000), EventType.PersistentWatchRemoved, p);
            m.setData(p, b("2"), -1);
            pers.none(500);
            expect(rec.nextNode(10000), EventType.NodeDataChanged, p);
            zr.removeAllWatches(p, Watcher.WatcherType.Any, false);
            expect(rec.nextNode(10000), EventType.PersistentWatchRemoved, p);
        });

        check("remove_watches", () -> {
            String p = root + "/rw";
            zk.create(p, null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            Events d = new Events(), c = new Events();
            zk.getData(p, d, null);
            zk.getChildren(p, c);
            zk.removeWatches(p, d, Watcher.WatcherType.Data, false);
            expect(d.nextNode(10000), EventType.DataWatchRemoved, p);
            zk.setData(p, b("x"), -1);
            d.none(500);
            zk.removeWatches(p, c, Watcher.WatcherType.Children, false);
            expect(c.nextNode(10000), EventType.ChildWatchRemoved, p);
            try { zk.removeWatches(p, d, Watcher.WatcherType.Data, false); throw new AssertionError("no NoWatcher"); }
            catch (KeeperException.NoWatcherException e) { }
        });

        check("watches_reregistered_after_reconnect", () -> {
            int port = Integer.parseInt(hosts[0].split(":")[1]);
            Forwarder f = new Forwarder(port);
            try {
                String p = root + "/rr", q = root + "/rr-missing";
                zk.create(p, b("0"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                Events ev = new Events();
                ZooKeeper w = connect("127.0.0.1:" + f.port(), ev);
                long sid = w.getSessionId();
                Events d = new Events(), e = new Events(), c = new Events(), pw = new Events();
                w.getData(p, d, null);
                w.exists(q, e);
                w.getChildren(p, c);
                w.addWatch(p, pw, AddWatchMode.PERSISTENT);
                f.refuse = true;
                f.cut();
                long until = System.currentTimeMillis() + 10000;
                WatchedEvent dis = null;
                while (System.currentTimeMillis() < until) {
                    dis = ev.next(10000);
                    if (dis.getState() == KeeperState.Disconnected) break;
                }
                eq(KeeperState.Disconnected, dis.getState(), "disconnected");
                zk.setData(p, b("1"), -1);
                zk.create(q, null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                zk.create(p + "/k", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
                f.refuse = false;
                // the client re-attaches and sends setWatches with its last zxid: missed
                // changes fire at once
                expect(d.nextNode(20000), EventType.NodeDataChanged, p);
                expect(e.nextNode(10000), EventType.NodeCreated, q);
                expect(c.nextNode(10000), EventType.NodeChildrenChanged, p);
                WatchedEvent pe = pw.nextNode(10000);
                ok(pe.getType() == EventType.NodeDataChanged || pe.getType() == EventType.NodeChildrenChanged, "persistent " + pe);
                eq(sid, w.getSessionId(), "same session");
                // the persistent watch is still registered after the reconnect
                pw.q.clear();
                zk.setData(p, b("2"), -1);
                WatchedEvent more = pw.nextNode(10000);
                ok(more.getType() == EventType.NodeDataChanged || more.getType() == EventType.NodeChildrenChanged, "persistent again " + more);
            } finally {
                f.close();
            }
        });

        check("multi_and_rollback", () -> {
            String p = root + "/multi";
            List<OpResult> res = zk.multi(Arrays.asList(
                Op.create(p, b("m"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.create(p + "/a", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.setData(p, b("m2"), 0),
                Op.check(p, 1)));
            eq(4, res.size(), "results");
            ok(res.get(0) instanceof OpResult.CreateResult, "create result");
            eq(1, ((OpResult.SetDataResult) res.get(2)).getStat().getVersion(), "set stat");
            try {
                zk.multi(Arrays.asList(
                    Op.create(p + "/b", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                    Op.delete(p + "/a", 5),
                    Op.setData(p, b("never"), -1)));
                throw new AssertionError("multi did not fail");
            } catch (KeeperException.BadVersionException e) {
                List<OpResult> r = e.getResults();
                eq(KeeperException.Code.OK.intValue(), ((OpResult.ErrorResult) r.get(0)).getErr(), "op0 rolled back (OK)");
                eq(KeeperException.Code.BADVERSION.intValue(), ((OpResult.ErrorResult) r.get(1)).getErr(), "op1");
                eq(KeeperException.Code.RUNTIMEINCONSISTENCY.intValue(), ((OpResult.ErrorResult) r.get(2)).getErr(), "op2");
            }
            ok(zk.exists(p + "/b", false) == null, "rolled back");
            eq("m2", s(zk.getData(p, false, null)), "data kept");
            // the transaction() builder
            zk.transaction().delete(p + "/a", -1).delete(p, -1).commit();
            ok(zk.exists(p, false) == null, "deleted by transaction");
        });

        check("multi_read", () -> {
            String p = root + "/mr";
            zk.create(p, b("data"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            zk.create(p + "/x", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            List<OpResult> r = zk.multi(Arrays.asList(Op.getChildren(p), Op.getData(p), Op.getData(p + "/missing")));
            eq(Collections.singletonList("x"), ((OpResult.GetChildrenResult) r.get(0)).getChildren(), "children");
            eq("data", s(((OpResult.GetDataResult) r.get(1)).getData()), "data");
            eq(KeeperException.Code.NONODE.intValue(), ((OpResult.ErrorResult) r.get(2)).getErr(), "missing");
        });

        check("ephemerals_children_number_whoami", () -> {
            String p = root + "/eph";
            zk.create(p, null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            zk.create(p + "/e1", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
            zk.create(p + "/p", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            zk.create(p + "/p/e2", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
            List<String> e = new ArrayList<>(zk.getEphemerals(p));
            Collections.sort(e);
            eq(Arrays.asList(p + "/e1", p + "/p/e2"), e, "getEphemerals");
            eq(3, zk.getAllChildrenNumber(p), "getAllChildrenNumber");
            List<ClientInfo> who = zk.whoAmI();
            eq(1, who.size(), "whoAmI size");
            eq("ip", who.get(0).getAuthScheme(), "scheme");
            eq("127.0.0.1", who.get(0).getUser(), "user");
        });

        check("acl_digest", () -> {
            String p = root + "/acl";
            ZooKeeper owner = connect(hosts[1]);
            owner.addAuthInfo("digest", b("javauser:javapw"));
            String digest = DigestAuthenticationProvider.generateDigest("javauser:javapw");
            List<ACL> acl = Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("digest", digest)));
            owner.create(p, b("secret"), acl, CreateMode.PERSISTENT);
            ZooKeeper anon = connect(hosts[hosts.length - 1]);
            anon.sync(p, null, null);
            try { anon.getData(p, false, null); throw new AssertionError("anon read"); }
            catch (KeeperException.NoAuthException e) { }
            anon.addAuthInfo("digest", b("javauser:javapw"));
            eq("secret", s(anon.getData(p, false, null)), "authed read");
            Stat st = new Stat();
            eq(acl, owner.getACL(p, st), "getACL");
            owner.setACL(p, ZooDefs.Ids.READ_ACL_UNSAFE, st.getAversion());
            try { owner.setData(p, b("x"), -1); throw new AssertionError("write on read-only"); }
            catch (KeeperException.NoAuthException e) { }
            try { owner.create(p + "2", null, Collections.singletonList(new ACL(31, new Id("bogus", "x"))), CreateMode.PERSISTENT); throw new AssertionError("bad acl"); }
            catch (KeeperException.InvalidACLException e) { }
        });

        check("ttl_and_container", () -> {
            String t = root + "/ttl", c = root + "/container";
            Stat st = new Stat();
            zk.create(t, b("t"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, st, 60000);
            ok(st.getCzxid() > 0, "ttl created");
            zk.create(c, null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER);
            zk.create(c + "/kid", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            ok(zk.exists(c + "/kid", false) != null, "container child");
        });

        check("session_reattach_on_another_server", () -> {
            ZooKeeper a = connect(hosts[0]);
            String e = a.create(root + "/moving", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
            final CountDownLatch up = new CountDownLatch(1);
            ZooKeeper b = new ZooKeeper(hosts[hosts.length - 1], 10000, ev -> {
                if (ev.getState() == KeeperState.SyncConnected) up.countDown();
            }, a.getSessionId(), a.getSessionPasswd());
            open.add(b);
            ok(up.await(20, TimeUnit.SECONDS), "reattached");
            eq(a.getSessionId(), b.getSessionId(), "same session");
            eq(a.getSessionId(), b.exists(e, false).getEphemeralOwner(), "owner");
            b.close();
            zk.sync(root, null, null);
            long deadline = System.currentTimeMillis() + 10000;
            while (zk.exists(e, false) != null && System.currentTimeMillis() < deadline) Thread.sleep(50);
            ok(zk.exists(e, false) == null, "ephemeral gone after close");
        });

        check("async_pipeline_fifo", () -> {
            String p = root + "/async";
            zk.create(p, null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            final int n = 300;
            final List<Integer> order = Collections.synchronizedList(new ArrayList<>());
            final CountDownLatch done = new CountDownLatch(n);
            for (int i = 0; i < n; i++) {
                final int k = i;
                if (i % 3 == 2) {
                    zk.getData(p, false, (rc, path, ctx, data, stat) -> { order.add(k); done.countDown(); }, null);
                } else {
                    zk.create(p + "/n", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL,
                        (rc, path, ctx, name) -> { if (rc == 0) order.add(k); done.countDown(); }, null);
                }
            }
            ok(done.await(60, TimeUnit.SECONDS), "all callbacks");
            List<Integer> sorted = new ArrayList<>(order);
            Collections.sort(sorted);
            eq(n, order.size(), "all succeeded");
            eq(sorted, order, "callbacks in request order");
        });

        check("sync_then_read_on_every_server", () -> {
            String p = root + "/sync";
            zk.create(p, b("0"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            for (String h : hosts) {
                ZooKeeper r = connect(h);
                for (int i = 1; i <= 5; i++) {
                    zk.setData(p, b(h + i), -1);
                    final CountDownLatch synced = new CountDownLatch(1);
                    r.sync(p, (rc, path, ctx) -> synced.countDown(), null);
                    ok(synced.await(10, TimeUnit.SECONDS), "sync");
                    eq(h + i, s(r.getData(p, false, null)), "after sync on " + h);
                }
            }
        });

        check("large_value", () -> {
            String p = root + "/large";
            byte[] v = new byte[1000000];
            for (int i = 0; i < v.length; i++) v[i] = (byte) (i * 31);
            zk.create(p, v, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            ZooKeeper r = connect(hosts[hosts.length - 1]);
            r.sync(p, null, null);
            ok(Arrays.equals(v, r.getData(p, false, null)), "large value read back");
        });

        // clean up
        try {
            zk.addAuthInfo("digest", b("javauser:javapw"));
            deleteTree(zk, root);
        } catch (Exception e) {
            System.out.println("cleanup: " + e);
        }
        for (ZooKeeper z : open) {
            try { z.close(); } catch (Exception e) { }
        }
        System.out.println("JAVA DONE passed=" + passed + " failed=" + failed);
        System.exit(failed == 0 ? 0 : 1);
    }

    static void deleteTree(ZooKeeper zk, String p) throws Exception {
        List<String> kids;
        try { kids = zk.getChildren(p, false); } catch (KeeperException.NoNodeException e) { return; }
        for (String k : kids) deleteTree(zk, p + "/" + k);
        try { zk.delete(p, -1); } catch (KeeperException.NoNodeException e) { }
    }
}
