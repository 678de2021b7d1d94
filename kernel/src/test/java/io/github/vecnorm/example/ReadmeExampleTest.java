package io.github.vecnorm.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vecnorm.BatchNorm;
import io.github.vecnorm.Parallelism;
import io.github.vecnorm.RunningStats;
import io.github.vecnorm.Shape;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;

/** The README's API tour, as it is written there, so that it keeps compiling and running. */
class ReadmeExampleTest {

    @Test
    void apiTourRuns() {
        Shape shape = Shape.of(4, 8, 7, 7); // the README uses 32x64x56x56; smaller here to stay fast
        try (Arena arena = Arena.ofShared()) {
            MemorySegment x = arena.allocate(shape.byteSize(), 64);
            for (long i = 0; i < shape.numel(); i++) x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) Math.sin(i));
            MemorySegment y = arena.allocate(shape.byteSize(), 64);
            long c = shape.c();
            MemorySegment gamma = arena.allocate(c * 4), beta = arena.allocate(c * 4);
            MemorySegment saveMean = arena.allocate(c * 4), saveInvstd = arena.allocate(c * 4);
            MemorySegment runningMean = arena.allocate(c * 4), runningVar = arena.allocate(c * 4);
            for (long i = 0; i < c; i++) {
                gamma.setAtIndex(ValueLayout.JAVA_FLOAT, i, 1f);
                runningVar.setAtIndex(ValueLayout.JAVA_FLOAT, i, 1f);
            }

            RunningStats running = RunningStats.of(runningMean, runningVar);
            BatchNorm.forwardTraining(shape, x, y, gamma, beta, saveMean, saveInvstd, running, 1e-5);
            assertEquals(1, running.numBatchesTracked());

            MemorySegment dy = arena.allocate(shape.byteSize(), 64), dx = arena.allocate(shape.byteSize(), 64);
            MemorySegment dgamma = arena.allocate(c * 4), dbeta = arena.allocate(c * 4);
            BatchNorm.backward(shape, dy, x, gamma, saveMean, saveInvstd, dx, dgamma, dbeta);

            try (var pool = Executors.newFixedThreadPool(2)) {
                BatchNorm.forwardInference(shape, x, x, gamma, beta, runningMean, runningVar, 1e-5,
                        Parallelism.of(pool, 2));
            }
            assertTrue(Float.isFinite(x.getAtIndex(ValueLayout.JAVA_FLOAT, 0)));
        }
    }
}
