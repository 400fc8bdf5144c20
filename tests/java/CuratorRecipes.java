// Apache Curator 5.4.0 (Debian's libcurator-*-java) against a ZooKeeper-protocol server:
// CuratorCache (persistent recursive watches, addWatch), InterProcessMutex, LeaderLatch,
// DistributedAtomicLong and a ZooKeeper-style transaction. Prints "OK <step>" per step and exits
// 0; any failure throws (exit 1). Every wait is bounded and says what it waited for.
// Usage: java -cp <classes>:curator-recipes.jar:zookeeper.jar CuratorRecipes host:port

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;

public class CuratorRecipes {
    static final long WAIT_SECONDS = 20;

    static CuratorFramework client(String connect) throws Exception {
        CuratorFramework client = CuratorFrameworkFactory.newClient(connect, 30000, 10000, new RetryNTimes(3, 200));
        client.start();
        if (!client.blockUntilConnected((int) WAIT_SECONDS, TimeUnit.SECONDS)) {
            throw new IllegalStateException("not connected to " + connect + " within " + WAIT_SECONDS + " s");
        }
        return client;
    }

    static void await(CountDownLatch latch, String what) throws InterruptedException {
        if (!latch.await(WAIT_SECONDS, TimeUnit.SECONDS)) {
            throw new IllegalStateException("waited " + WAIT_SECONDS + " s for " + what);
        }
    }

    static void check(boolean condition, String what) {
        if (!condition) {
            throw new IllegalStateException("check failed: " + what);
        }
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        try (CuratorFramework a = client(connect); CuratorFramework b = client(connect)) {
            a.create().creatingParentsIfNeeded().forPath("/curator/config/db", "v1".getBytes(StandardCharsets.UTF_8));
            check("v1".equals(new String(a.getData().forPath("/curator/config/db"), StandardCharsets.UTF_8)), "getData after create");
            System.out.println("OK create with parents");

            // CuratorCache: the whole subtree, kept current by a persistent recursive watch.
            // Each change is made after the cache has seen the one before, so no two coalesce.
            List<String> events = new CopyOnWriteArrayList<>();
            CountDownLatch initialized = new CountDownLatch(1);
            CountDownLatch created = new CountDownLatch(1);
            CountDownLatch changed = new CountDownLatch(1);
            CountDownLatch deleted = new CountDownLatch(1);
            String path = "/curator/config/cache";
            try (CuratorCache cache = CuratorCache.build(b, "/curator/config")) {
                cache.listenable().addListener(CuratorCacheListener.builder()
                        .forCreates(node -> {
                            events.add("created " + node.getPath());
                            if (node.getPath().equals(path)) {
                                created.countDown();
                            }
                        })
                        .forChanges((before, after) -> {
                            String data = new String(after.getData(), StandardCharsets.UTF_8);
                            events.add("changed " + after.getPath() + " " + data);
                            if (after.getPath().equals(path) && data.equals("y")) {
                                changed.countDown();
                            }
                        })
                        .forDeletes(node -> {
                            events.add("deleted " + node.getPath());
                            if (node.getPath().equals(path)) {
                                deleted.countDown();
                            }
                        })
                        .forInitialized(initialized::countDown)
                        .build());
                cache.start();
                await(initialized, "the cache's initial load");
                a.create().forPath(path, "x".getBytes(StandardCharsets.UTF_8));
                await(created, "the cache to see " + path + " created: " + events);
                a.setData().forPath(path, "y".getBytes(StandardCharsets.UTF_8));
                await(changed, "the cache to see " + path + " changed to y: " + events);
                a.delete().forPath(path);
                await(deleted, "the cache to see " + path + " deleted: " + events);
                check(cache.get("/curator/config/db").isPresent(), "cache holds /curator/config/db");
                check(!cache.get(path).isPresent(), "cache no longer holds " + path);
            }
            System.out.println("OK CuratorCache");

            InterProcessMutex lockA = new InterProcessMutex(a, "/curator/lock");
            InterProcessMutex lockB = new InterProcessMutex(b, "/curator/lock");
            check(lockA.acquire(WAIT_SECONDS, TimeUnit.SECONDS), "a acquires the lock");
            check(!lockB.acquire(300, TimeUnit.MILLISECONDS), "b cannot acquire a held lock");
            lockA.release();
            check(lockB.acquire(WAIT_SECONDS, TimeUnit.SECONDS), "b acquires the released lock");
            lockB.release();
            System.out.println("OK InterProcessMutex");

            LeaderLatch first = new LeaderLatch(a, "/curator/leader", "a");
            LeaderLatch second = new LeaderLatch(b, "/curator/leader", "b");
            first.start();
            check(first.await(WAIT_SECONDS, TimeUnit.SECONDS), "the first latch leads");
            second.start();
            check(!second.await(300, TimeUnit.MILLISECONDS), "the second latch waits");
            first.close();
            check(second.await(WAIT_SECONDS, TimeUnit.SECONDS), "the second latch leads after the first closes");
            second.close();
            System.out.println("OK LeaderLatch");

            DistributedAtomicLong counterA = new DistributedAtomicLong(a, "/curator/counter", new RetryNTimes(10, 10));
            DistributedAtomicLong counterB = new DistributedAtomicLong(b, "/curator/counter", new RetryNTimes(10, 10));
            for (int i = 0; i < 10; i++) {
                check(counterA.increment().succeeded(), "a increments");
                check(counterB.increment().succeeded(), "b increments");
            }
            AtomicValue<Long> value = counterA.get();
            check(value.succeeded() && value.postValue() == 20L, "the counter is 20: " + value.postValue());
            System.out.println("OK DistributedAtomicLong");

            List<CuratorTransactionResult> results = a.transaction().forOperations(
                    a.transactionOp().create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath("/curator/seq-", new byte[0]),
                    a.transactionOp().setData().forPath("/curator/config/db", "v2".getBytes(StandardCharsets.UTF_8)),
                    a.transactionOp().check().forPath("/curator/config/db"));
            check(results.size() == 3, "three results");
            check(results.get(0).getResultPath().matches("/curator/seq-\\d{10}"), "sequential path " + results.get(0).getResultPath());
            System.out.println("OK transaction");
        }
    }
}
