package io.github.vecnorm.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vecnorm.BatchNorm;
import io.github.vecnorm.GroupNorm;
import io.github.vecnorm.InstanceNorm;
import io.github.vecnorm.LayerNorm;
import io.github.vecnorm.LpBatchNorm;
import io.github.vecnorm.RMSNorm;
import io.github.vecnorm.Rows;
import io.github.vecnorm.WeightNorm;
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

    /** The family lines of the tour, on small tensors. */
    @Test
    void familyTourRuns() {
        try (Arena arena = Arena.ofConfined()) {
            Rows rows = Rows.normalizing(new long[] {2, 3, 24}, 24);
            MemorySegment x = filled(arena, rows.m() * rows.d()), y = arena.allocate(rows.m() * rows.d() * 4);
            MemorySegment dy = filled(arena, rows.m() * rows.d()), dx = arena.allocate(rows.m() * rows.d() * 4);
            MemorySegment gamma = filled(arena, rows.d()), beta = filled(arena, rows.d());
            MemorySegment mean = arena.allocate(rows.m() * 4), rstd = arena.allocate(rows.m() * 4);
            MemorySegment dgamma = arena.allocate(rows.d() * 4), dbeta = arena.allocate(rows.d() * 4);
            LayerNorm.forward(rows, x, y, gamma, beta, mean, rstd, 1e-5);
            LayerNorm.backward(rows, dy, x, gamma, mean, rstd, dx, dgamma, dbeta);
            RMSNorm.forward(rows, x, y, gamma, rstd);
            assertTrue(Float.isFinite(dx.getAtIndex(ValueLayout.JAVA_FLOAT, 0)));

            Shape shape = Shape.of(2, 4, 5, 5);
            MemorySegment a = filled(arena, shape.numel()), b = arena.allocate(shape.byteSize());
            MemorySegment cg = filled(arena, shape.c()), cb = filled(arena, shape.c());
            MemorySegment gm = arena.allocate(shape.n() * 2 * 4), gr = arena.allocate(shape.n() * 2 * 4);
            GroupNorm.forward(shape, 2, a, b, cg, cb, gm, gr, 1e-5);
            MemorySegment im = arena.allocate(shape.n() * shape.c() * 4), ir = arena.allocate(shape.n() * shape.c() * 4);
            MemorySegment rm = arena.allocate(shape.c() * 4), rv = filled(arena, shape.c());
            InstanceNorm.forwardTraining(shape, a, b, cg, cb, im, ir, RunningStats.of(rm, rv), 1e-5);
            MemorySegment sm = arena.allocate(shape.c() * 4), si = arena.allocate(shape.c() * 4);
            LpBatchNorm.forward(shape, 1, a, b, cg, cb, sm, si, 1e-5);

            long[] dims = {8, 4, 3, 3};
            long count = 8 * 4 * 3 * 3;
            MemorySegment v = filled(arena, count), w = arena.allocate(count * 4);
            MemorySegment g = filled(arena, WeightNorm.normSize(dims, 0)), norm = arena.allocate(WeightNorm.normSize(dims, 0) * 4);
            WeightNorm.forward(dims, 0, v, g, w, norm);
            assertTrue(Float.isFinite(w.getAtIndex(ValueLayout.JAVA_FLOAT, 0)));
        }
    }

    private static MemorySegment filled(Arena arena, long floats) {
        MemorySegment s = arena.allocate(floats * 4, 64);
        for (long i = 0; i < floats; i++) s.setAtIndex(ValueLayout.JAVA_FLOAT, i, 1.5f + (float) Math.sin(3 * i));
        return s;
    }
}
