package io.github.vecnorm.internal;

import java.util.function.LongConsumer;

/** How a body's independent work items are run: serially here, or spread over tasks by the public layer. */
@FunctionalInterface
public interface Loop {

    /** Runs {@code body} once for each item in {@code [0, items)}, each item exactly once. */
    void forEach(long items, LongConsumer body);

    /**
     * How many threads may share a call: item ranges are handed out in this many equal home ranges (see
     * {@code Parallelism}), which a body may use to give one thread the same data in two passes. Never
     * changes what an item computes.
     */
    default int tasks() {
        return 1;
    }

    /** A loop over {@code tasks} threads that runs its items with {@code forEach}. */
    static Loop of(int tasks, Loop forEach) {
        return new Loop() {
            @Override
            public void forEach(long items, LongConsumer body) {
                forEach.forEach(items, body);
            }

            @Override
            public int tasks() {
                return tasks;
            }
        };
    }

    /** Every item on the calling thread, in order. */
    Loop SERIAL = (items, body) -> {
        for (long i = 0; i < items; i++) body.accept(i);
    };
}
