package io.github.vecnorm.bench;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/** Daemon thread pools for the benchmarks' executors (a forgotten pool never keeps a fork alive). */
final class Workers {

    private Workers() {
    }

    static ExecutorService pool(int threads, String prefix) {
        AtomicInteger seq = new AtomicInteger();
        return Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, prefix + "-" + seq.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }
}
