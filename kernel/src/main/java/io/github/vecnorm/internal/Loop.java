package io.github.vecnorm.internal;

import java.util.function.LongConsumer;

/** How a body's independent work items are run: serially here, or spread over tasks by the public layer. */
@FunctionalInterface
public interface Loop {

    /** Runs {@code body} once for each item in {@code [0, items)}, each item exactly once. */
    void forEach(long items, LongConsumer body);

    /** Every item on the calling thread, in order. */
    Loop SERIAL = (items, body) -> {
        for (long i = 0; i < items; i++) body.accept(i);
    };
}
