// Apache Curator's ensemble tracking (EnsembleTracker, on by default in Curator 5) against a
// cluster: prints `CONNSTR <connection string>` at start and each time Curator's connection
// string changes, as the tracker follows /zookeeper/config through reconfigs. Runs until its
// stdin closes. Used by interop/tests/test_reconfig.py.

import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;

public class CuratorTracker {
    public static void main(String[] args) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(args[0])
                .ensembleTracker(true)
                .sessionTimeoutMs(10000)
                .connectionTimeoutMs(10000)
                .retryPolicy(new RetryNTimes(100, 200))
                .build();
        client.start();
        if (!client.blockUntilConnected(60, TimeUnit.SECONDS)) {
            System.out.println("FAIL not connected");
            System.exit(1);
        }
        System.out.println("CONNECTED");
        System.out.flush();
        // stdin closing ends the run
        Thread stop = new Thread(() -> {
            try {
                while (System.in.read() != -1) {
                }
            } catch (Exception e) {
                // closed
            }
            client.close();
            System.exit(0);
        });
        stop.setDaemon(true);
        stop.start();
        String last = null;
        while (true) {
            String now = client.getZookeeperClient().getCurrentConnectionString();
            if (!now.equals(last)) {
                System.out.println("CONNSTR " + now);
                System.out.flush();
                last = now;
            }
            Thread.sleep(100);
        }
    }
}
