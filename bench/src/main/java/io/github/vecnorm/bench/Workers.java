package io.github.vecnorm.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.AbstractExecutorService;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedTransferQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * The benchmarks' executors: daemon threads (a forgotten pool never keeps a fork alive) that, when idle,
 * spin for {@link #SPIN_NANOS} before they park, as OpenMP's threads do by default (libgomp spins before
 * it sleeps, and so do the peers' pools). Handing a task to a parked thread costs the OS a wake-up: about
 * 28 µs on the report's machines (a virtual machine), as long as a whole RMSNorm call; to a spinning one,
 * well under a microsecond. An engine embedding vecnorm chooses its own executor; this is the kind that
 * suits calls of tens of microseconds.
 */
final class Workers {

    /** How long an idle worker spins before it parks. */
    static final long SPIN_NANOS = 500_000;

    private Workers() {
    }

    static ExecutorService pool(int threads, String prefix) {
        return new SpinningPool(threads, prefix);
    }

    /** A fixed pool of spin-then-park workers sharing one queue. */
    private static final class SpinningPool extends AbstractExecutorService {
        private final LinkedTransferQueue<Runnable> queue = new LinkedTransferQueue<>();
        private final List<Thread> threads = new ArrayList<>();
        private volatile boolean shutdown;

        SpinningPool(int count, String prefix) {
            for (int i = 1; i <= count; i++) {
                Thread t = new Thread(this::work, prefix + "-" + i);
                t.setDaemon(true);
                threads.add(t);
                t.start();
            }
        }

        private void work() {
            try {
                while (!shutdown) {
                    Runnable task = queue.poll();
                    long start = System.nanoTime();
                    while (task == null && !shutdown && System.nanoTime() - start < SPIN_NANOS) {
                        Thread.onSpinWait();
                        task = queue.poll();
                    }
                    if (task == null && !shutdown) task = queue.take();
                    if (task != null) task.run();
                }
            } catch (InterruptedException e) {
                // shutdownNow: leave
            }
        }

        @Override
        public void execute(Runnable task) {
            if (shutdown) throw new RejectedExecutionException("the pool is shut down");
            queue.offer(task);
        }

        @Override
        public void shutdown() {
            shutdown = true;
            threads.forEach(Thread::interrupt);
        }

        @Override
        public List<Runnable> shutdownNow() {
            shutdown();
            List<Runnable> left = new ArrayList<>();
            queue.drainTo(left);
            return left;
        }

        @Override
        public boolean isShutdown() {
            return shutdown;
        }

        @Override
        public boolean isTerminated() {
            return shutdown && threads.stream().noneMatch(Thread::isAlive);
        }

        @Override
        public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
            long deadline = System.nanoTime() + unit.toNanos(timeout);
            for (Thread t : threads) {
                long left = deadline - System.nanoTime();
                if (left <= 0) return isTerminated();
                TimeUnit.NANOSECONDS.timedJoin(t, left);
            }
            return isTerminated();
        }
    }
}
