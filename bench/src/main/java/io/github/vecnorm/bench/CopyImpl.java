package io.github.vecnorm.bench;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;

/**
 * The roofline: {@code MemorySegment.copy} of x into y, bytes(x) read and bytes(x) written. With
 * more than one thread the segment is cut into one contiguous slice per thread (64-byte aligned
 * cuts), {@code threads - 1} slices copied on an executor and one on the caller, as vecnorm's
 * {@code Parallelism} does.
 */
final class CopyImpl implements Impl {

    private final MemorySegment src, dst;
    private final long[] cuts;
    private final ExecutorService pool;
    private final CompletableFuture<?>[] futures;

    CopyImpl(Problem p) {
        this.src = p.x;
        this.dst = p.y;
        long bytes = src.byteSize();
        int t = (int) Math.max(1, Math.min(p.threads, bytes / 64));
        cuts = new long[t + 1];
        for (int i = 0; i <= t; i++) cuts[i] = i == t ? bytes : (bytes * i / t) & ~63L;
        pool = t > 1 ? Workers.pool(t - 1, "copy-bench") : null;
        futures = new CompletableFuture<?>[Math.max(0, t - 1)];
    }

    @Override
    public String name() {
        return Impls.COPY;
    }

    /** Any kernel: the copy stands for the bytes a kernel must move, not for its arithmetic. */
    @Override
    public boolean supports(Kernel kernel) {
        return true;
    }

    @Override
    public void run(Kernel kernel) {
        copy();
    }

    /** Copies x to y, sliced over the threads. */
    void copy() {
        int t = cuts.length - 1;
        if (t == 1) {
            MemorySegment.copy(src, 0, dst, 0, cuts[1]);
            return;
        }
        for (int i = 1; i < t; i++) {
            long from = cuts[i], len = cuts[i + 1] - cuts[i];
            futures[i - 1] = CompletableFuture.runAsync(() -> MemorySegment.copy(src, from, dst, from, len), pool);
        }
        MemorySegment.copy(src, 0, dst, 0, cuts[1]);
        for (CompletableFuture<?> f : futures) f.join();
    }

    @Override
    public void close() {
        if (pool != null) pool.shutdownNow();
    }
}
