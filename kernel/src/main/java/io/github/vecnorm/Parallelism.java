package io.github.vecnorm;

import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.function.LongConsumer;

/**
 * How a kernel call spreads its independent work items (channels for BatchNorm, rows or groups for
 * the other layers) over threads. The caller owns the executor; vecnorm starts no threads.
 *
 * <p>Every work item is computed by exactly one task, in the same order of operations whatever the
 * number of tasks, so results are bitwise identical for every thread count.
 *
 * <p>Segments shared with executor threads must be accessible from them (allocated by
 * {@code Arena.ofShared()}, {@code Arena.ofAuto()} or {@code Arena.global()}); a call whose segments
 * are confined to the calling thread runs serially on that thread instead.
 */
public final class Parallelism {

    private static final Parallelism SERIAL = new Parallelism(null, 1);

    private final Executor executor;
    private final int tasks;

    private Parallelism(Executor executor, int tasks) {
        this.executor = executor;
        this.tasks = tasks;
    }

    /** Everything on the calling thread. */
    public static Parallelism serial() {
        return SERIAL;
    }

    /**
     * Up to {@code tasks} tasks: {@code tasks - 1} submitted to {@code executor}, one run by the caller,
     * which waits for all of them.
     *
     * @throws IllegalArgumentException if executor is null or tasks is less than 1
     */
    public static Parallelism of(Executor executor, int tasks) {
        if (executor == null) throw new IllegalArgumentException("executor must not be null");
        if (tasks < 1) throw new IllegalArgumentException("tasks must be >= 1, got " + tasks);
        return tasks == 1 ? SERIAL : new Parallelism(executor, tasks);
    }

    /** The maximum number of tasks a call is split into. */
    public int tasks() {
        return tasks;
    }

    boolean isSerial() {
        return tasks == 1;
    }

    /**
     * Runs {@code body} for every item in {@code [0, items)}, items split into contiguous ranges, one
     * per task. Exceptions from any task are rethrown on the caller.
     */
    void forEach(long items, LongConsumer body) {
        Objects.requireNonNull(body);
        int parts = (int) Math.min(tasks, items);
        if (parts <= 1) {
            for (long i = 0; i < items; i++) body.accept(i);
            return;
        }
        @SuppressWarnings("unchecked")
        CompletableFuture<Void>[] futures = new CompletableFuture[parts - 1];
        Throwable first = null;
        // Whatever fails (a refused submission, the caller's own part, an Error), every task already
        // started is waited for before returning: nothing may write after the call has returned.
        try {
            for (int p = 1; p < parts; p++) {
                long from = items * p / parts, to = items * (p + 1) / parts;
                futures[p - 1] = CompletableFuture.runAsync(() -> {
                    for (long i = from; i < to; i++) body.accept(i);
                }, executor);
            }
            long to0 = items / parts;
            for (long i = 0; i < to0; i++) body.accept(i);
        } catch (Throwable t) {
            first = t;
        }
        for (CompletableFuture<Void> f : futures) {
            if (f == null) continue;
            try {
                f.join();
            } catch (CompletionException e) {
                if (first == null) first = e.getCause() != null ? e.getCause() : e;
            } catch (Throwable t) {
                if (first == null) first = t;
            }
        }
        if (first instanceof RuntimeException r) throw r;
        if (first instanceof Error e) throw e;
        if (first != null) throw new CompletionException(first);
    }
}
