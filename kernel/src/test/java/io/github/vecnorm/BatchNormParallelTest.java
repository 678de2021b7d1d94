package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.constant;
import static org.quicktheories.generators.Generate.frequency;
import static org.quicktheories.generators.Generate.longRange;
import static org.quicktheories.generators.Generate.pick;
import static org.quicktheories.generators.Generate.range;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.quicktheories.api.Pair;
import org.quicktheories.core.Gen;

/**
 * Thread count does not change a single bit: every kernel run through {@link Parallelism#of} with a
 * real thread pool, for 1, 2, 3 and 7 tasks, against the serial call on the same inputs, over generated
 * shapes (C = 1, C below the task count, odd C, runs on both sides of the memory-order switch).
 * Also: confined segments run serially whatever the Parallelism, and failures in tasks reach the caller.
 */
class BatchNormParallelTest {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final int[] TASKS = {1, 2, 3, 7};

    private static ExecutorService pool;

    @BeforeAll
    static void startPool() {
        AtomicInteger id = new AtomicInteger();
        pool = Executors.newFixedThreadPool(4, r -> {
            Thread t = new Thread(r, "bn-parallel-test-" + id.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    @AfterAll
    static void stopPool() throws InterruptedException {
        pool.shutdown();
        assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS), "the pool did not stop");
    }

    /** Passes tasks on to the pool, counting them and whether they ran off the calling thread. */
    static final class Counting implements Executor {
        final Executor target;
        final AtomicInteger submitted = new AtomicInteger();
        final AtomicInteger onCaller = new AtomicInteger();
        final Thread caller = Thread.currentThread();

        Counting(Executor target) {
            this.target = target;
        }

        @Override
        public void execute(Runnable r) {
            submitted.incrementAndGet();
            target.execute(() -> {
                if (Thread.currentThread() == caller) onCaller.incrementAndGet();
                r.run();
            });
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Generated problems

    /** A problem: (n, c, s), whether gamma/beta are present, the running-statistics mode, a seed. */
    record Problem(int n, int c, int s, boolean affine, boolean cumulative, long seed) {
        Shape shape() {
            return new Shape(n, c, s);
        }

        @Override
        public String toString() {
            return n + "x" + c + "x" + s + (affine ? " affine" : " no-affine")
                    + (cumulative ? " cumulative" : " momentum") + " seed=" + seed;
        }
    }

    /** Spatial sizes around vector widths and on both sides of the memory-order switch (64). */
    static final List<Integer> S = List.of(1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129, 257);

    static Gen<Integer> channels() {
        return frequency(List.of(
                Pair.of(3, constant(1)),                                    // one channel: nothing to split
                Pair.of(4, range(2, 6)),                                    // fewer channels than 7 tasks
                Pair.of(4, pick(List.of(3, 5, 7, 9, 11, 13, 15, 21, 33))),  // odd C: uneven ranges
                Pair.of(3, range(1, 48))));
    }

    static Gen<Problem> problems() {
        return channels().flatMap(c -> pick(S).flatMap(s -> range(1, 4).flatMap(n ->
                range(0, 3).flatMap(flags -> longRange(0, Long.MAX_VALUE).map(seed ->
                        // training needs m = N*S >= 2
                        new Problem(n * s >= 2 ? n : 2, c, s, (flags & 1) == 0, (flags & 2) != 0, seed))))));
    }

    /** The segments of one problem; inputs drawn from the seed, outputs NaN until written. */
    static final class Buffers {
        final Problem p;
        final Arena arena;
        final MemorySegment x, dy, gamma, beta, runMean, runVar;
        final Map<String, MemorySegment> out = new LinkedHashMap<>();

        Buffers(Problem p, Arena arena) {
            this.p = p;
            this.arena = arena;
            SplittableRandom rnd = new SplittableRandom(p.seed());
            long numel = p.shape().numel();
            x = arena.allocate(numel * Float.BYTES, 16);
            dy = arena.allocate(numel * Float.BYTES, 16);
            // per-channel offsets and spreads so channels differ, values bounded
            double[] off = new double[p.c()], spread = new double[p.c()];
            for (int c = 0; c < p.c(); c++) {
                off[c] = 20 * (rnd.nextDouble() - 0.5);
                spread[c] = Math.pow(10, 2 * rnd.nextDouble() - 1);
            }
            for (long i = 0; i < numel; i++) {
                int c = (int) ((i / p.s()) % p.c());
                x.setAtIndex(F, i, (float) (off[c] + spread[c] * rnd.nextGaussian()));
                dy.setAtIndex(F, i, (float) rnd.nextGaussian());
            }
            gamma = p.affine() ? perChannel(rnd, 0.5, 1.5) : null;
            beta = p.affine() ? perChannel(rnd, -1, 1) : null;
            runMean = perChannel(rnd, -1, 1);
            runVar = perChannel(rnd, 0.5, 2);
        }

        MemorySegment perChannel(SplittableRandom rnd, double lo, double hi) {
            MemorySegment s = arena.allocate(p.c() * (long) Float.BYTES, 16);
            for (int c = 0; c < p.c(); c++) s.setAtIndex(F, c, (float) (lo + (hi - lo) * rnd.nextDouble()));
            return s;
        }

        MemorySegment output(String name, long floats) {
            MemorySegment s = arena.allocate(floats * Float.BYTES, 16);
            s.fill((byte) 0xFF); // NaN: a float never written stays visible
            out.put(name, s);
            return s;
        }

        MemorySegment copyOf(String name, MemorySegment src) {
            MemorySegment s = output(name, src.byteSize() / Float.BYTES);
            s.copyFrom(src);
            return s;
        }
    }

    /** Runs the four kernels once with {@code par} and returns every output's floats, by name. */
    static Map<String, float[]> runAll(Problem p, Arena arena, Parallelism par) {
        Buffers b = new Buffers(p, arena);
        long numel = p.shape().numel(), c = p.c();
        Shape shape = p.shape();
        double eps = 1e-5;

        MemorySegment y = b.output("train.y", numel);
        MemorySegment saveMean = b.output("train.saveMean", c), saveInvstd = b.output("train.saveInvstd", c);
        MemorySegment rm = b.copyOf("train.runningMean", b.runMean), rv = b.copyOf("train.runningVar", b.runVar);
        RunningStats running = p.cumulative() ? RunningStats.cumulative(rm, rv, 3) : RunningStats.withMomentum(rm, rv, 0.3);
        BatchNorm.forwardTraining(shape, b.x, y, b.gamma, b.beta, saveMean, saveInvstd, running, eps, par);
        assertEquals(p.cumulative() ? 4 : 1, running.numBatchesTracked(), "batches counted");

        MemorySegment yi = b.output("inference.y", numel);
        BatchNorm.forwardInference(shape, b.x, yi, b.gamma, b.beta, b.runMean, b.runVar, eps, par);

        MemorySegment dx = b.output("backward.dx", numel);
        MemorySegment dgamma = b.output("backward.dgamma", c), dbeta = b.output("backward.dbeta", c);
        BatchNorm.backward(shape, b.dy, b.x, b.gamma, saveMean, saveInvstd, dx, dgamma, dbeta, par);

        MemorySegment dxi = b.output("backwardInference.dx", numel);
        MemorySegment dgi = b.output("backwardInference.dgamma", c), dbi = b.output("backwardInference.dbeta", c);
        BatchNorm.backwardInference(shape, b.dy, b.x, b.gamma, b.runMean, b.runVar, eps, dxi, dgi, dbi, par);

        // in place as well: y over x, dx over dy, on copies
        MemorySegment xy = b.copyOf("inPlace.trainingY", b.x);
        BatchNorm.forwardTraining(shape, xy, xy, b.gamma, b.beta, b.output("inPlace.saveMean", c),
                b.output("inPlace.saveInvstd", c), null, eps, par);
        MemorySegment dydx = b.copyOf("inPlace.dx", b.dy);
        BatchNorm.backward(shape, dydx, b.x, b.gamma, saveMean, saveInvstd, dydx, null, null, par);

        Map<String, float[]> result = new TreeMap<>();
        for (var e : b.out.entrySet()) result.put(e.getKey(), e.getValue().toArray(F));
        return result;
    }

    static void assertBitwiseEqual(Map<String, float[]> serial, Map<String, float[]> other, String what) {
        assertEquals(serial.keySet(), other.keySet());
        for (var e : serial.entrySet()) {
            float[] a = e.getValue(), b = other.get(e.getKey());
            for (int i = 0; i < a.length; i++) {
                if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
                    fail(what + ": " + e.getKey() + " at index #" + i + ": serial " + a[i] + " ("
                            + Integer.toHexString(Float.floatToRawIntBits(a[i])) + "), parallel " + b[i] + " ("
                            + Integer.toHexString(Float.floatToRawIntBits(b[i])) + ")");
                }
            }
        }
        // every output was written: a NaN left from the fill would hide a skipped item
        for (var e : serial.entrySet()) {
            for (float v : e.getValue()) {
                if (Float.isNaN(v)) fail(what + ": " + e.getKey() + " has an unwritten (NaN) float");
            }
        }
    }

    /**
     * Compares a parallel result with the serial one; on a mismatch, says whether a second serial call
     * reproduces the first (if not, the kernels depend on the JIT's state, not on the thread count).
     */
    static void assertSameAsSerial(Problem p, Arena arena, Map<String, float[]> serial, Map<String, float[]> par,
                                   String what) {
        try {
            assertBitwiseEqual(serial, par, what);
        } catch (AssertionError e) {
            Map<String, float[]> again = runAll(p, arena, Parallelism.serial());
            boolean reproducible = serial.keySet().stream().allMatch(k -> java.util.Arrays.equals(
                    floatBits(serial.get(k)), floatBits(again.get(k))));
            throw new AssertionError(e.getMessage() + (reproducible ? "" : " [note: a second serial call does not "
                    + "reproduce the first either: results depend on the JIT's state, not only on the thread count]"), e);
        }
    }

    static int[] floatBits(float[] v) {
        int[] b = new int[v.length];
        for (int i = 0; i < v.length; i++) b[i] = Float.floatToRawIntBits(v[i]);
        return b;
    }

    @Test
    void everyTaskCountGivesTheSerialBits() {
        Map<String, Integer> seen = new TreeMap<>();
        qt().withExamples(120).withShrinkCycles(30).forAll(problems()).checkAssert(p -> {
            seen.merge(p.c() == 1 ? "C=1" : p.c() < 7 ? "1<C<7" : "C>=7", 1, Integer::sum);
            if (p.c() % 2 == 1 && p.c() > 1) seen.merge("odd C>1", 1, Integer::sum);
            seen.merge(ErrorModel.columnPath(p.n(), p.c(), p.s()) ? "column path (small S)"
                    : p.s() >= 64 ? "S>=64 (memory order)" : "S<64 (channel order)", 1, Integer::sum);
            seen.merge(p.cumulative() ? "cumulative" : "momentum", 1, Integer::sum);
            try (Arena arena = Arena.ofShared()) {
                Map<String, float[]> serial = runAll(p, arena, Parallelism.serial());
                for (int tasks : TASKS) {
                    Counting ex = new Counting(pool);
                    Map<String, float[]> par = runAll(p, arena, Parallelism.of(ex, tasks));
                    assertSameAsSerial(p, arena, serial, par, p + ", " + tasks + " tasks");
                    if (tasks > 1 && p.c() > 1) {
                        assertTrue(ex.submitted.get() > 0, p + ", " + tasks + " tasks: nothing reached the executor");
                        assertEquals(0, ex.onCaller.get(), "tasks run on the pool's threads, never inline on the caller");
                    }
                    if (tasks == 1) assertEquals(0, ex.submitted.get(), "one task runs on the caller");
                }
            }
        });
        System.out.println("[parallel] generated " + seen);
        assertTrue(seen.getOrDefault("C=1", 0) > 0 && seen.getOrDefault("1<C<7", 0) > 0
                && seen.getOrDefault("odd C>1", 0) > 0 && seen.getOrDefault("S>=64 (memory order)", 0) > 0
                && seen.getOrDefault("S<64 (channel order)", 0) > 0 && seen.getOrDefault("column path (small S)", 0) > 0,
                "the generator missed a case: " + seen);
    }

    /**
     * A few larger shapes, so that every task has many items of either walk; and the column path (small S)
     * with many row bands (huge N), several column tiles (C*S > 2048), N = 1 and 2, S = 1 and 2..15, S >= 16
     * with many rows, C*S not a multiple of the lanes; short runs (16 <= S < 64) whose lanes are kept across
     * the samples (C*L <= 8192, 17+ samples: reduced every 16) and reduced run by run (C*L > 8192).
     */
    @Test
    void largerShapesGiveTheSerialBits() {
        List<Problem> problems = new ArrayList<>(List.of(
                new Problem(8, 7, 3136, true, false, 1), new Problem(4, 13, 65, false, true, 2),
                new Problem(300, 5, 1, true, true, 3), new Problem(2, 64, 49, true, false, 4),
                new Problem(3, 1, 5000, true, false, 5),
                new Problem(20_001, 3, 1, true, false, 6), new Problem(1001, 37, 5, false, true, 7),
                new Problem(1, 700, 7, true, false, 8), new Problem(2, 5, 13, true, true, 9),
                new Problem(200, 24, 17, true, false, 10), new Problem(97, 2100, 1, false, false, 11),
                new Problem(40, 9, 45, true, false, 12), new Problem(3, 1100, 49, true, true, 13)));
        assertEquals(7, problems.stream().filter(p -> ErrorModel.columnPath(p.n(), p.c(), p.s())).count(),
                "shapes on the column path");
        for (Problem p : problems) {
            try (Arena arena = Arena.ofShared()) {
                Map<String, float[]> serial = runAll(p, arena, Parallelism.serial());
                for (int tasks : TASKS) {
                    assertSameAsSerial(p, arena, serial, runAll(p, arena, Parallelism.of(pool, tasks)),
                            p + ", " + tasks + " tasks");
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Confined segments

    @Test
    void confinedSegmentsRunSeriallyWithTheSameBits() {
        Problem p = new Problem(3, 9, 70, true, false, 11);
        Map<String, float[]> serial;
        try (Arena shared = Arena.ofShared()) {
            serial = runAll(p, shared, Parallelism.serial());
        }
        for (int tasks : new int[] {2, 3, 7}) {
            try (Arena confined = Arena.ofConfined()) {
                Counting ex = new Counting(pool);
                Map<String, float[]> par = runAll(p, confined, Parallelism.of(ex, tasks));
                assertSameAsSerial(p, confined, serial, par, "confined, " + tasks + " tasks");
                assertEquals(0, ex.submitted.get(), "a call on confined segments handed work to the executor");
            }
        }
    }

    /** One confined segment among shared ones is enough to keep the call on the caller's thread. */
    @Test
    void oneConfinedSegmentKeepsTheCallSerial() {
        Shape shape = new Shape(2, 8, 80);
        try (Arena shared = Arena.ofShared(); Arena confined = Arena.ofConfined()) {
            MemorySegment x = shared.allocate(shape.byteSize(), 16);
            for (long i = 0; i < shape.numel(); i++) x.setAtIndex(F, i, (float) Math.sin(i));
            MemorySegment rm = shared.allocate(shape.c() * 4), rv = shared.allocate(shape.c() * 4);
            rv.fill((byte) 0x3F); // ~0.75
            MemorySegment ySerial = shared.allocate(shape.byteSize(), 16);
            BatchNorm.forwardInference(shape, x, ySerial, null, null, rm, rv, 1e-5);
            for (String which : new String[] {"y", "runningVar"}) {
                MemorySegment y = which.equals("y") ? confined.allocate(shape.byteSize(), 16) : shared.allocate(shape.byteSize(), 16);
                MemorySegment v = which.equals("runningVar") ? confined.allocate(rv.byteSize()).copyFrom(rv) : rv;
                Counting ex = new Counting(pool);
                BatchNorm.forwardInference(shape, x, y, null, null, rm, v, 1e-5, Parallelism.of(ex, 4));
                assertEquals(0, ex.submitted.get(), "confined " + which + ": work reached the executor");
                assertEquals(-1, y.mismatch(ySerial), "confined " + which + ": result differs from serial");
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Failures in tasks

    @Test
    void anExceptionInAWorkerSurfacesOnTheCaller() {
        Thread caller = Thread.currentThread();
        for (int tasks : new int[] {2, 3, 7}) {
            Parallelism par = Parallelism.of(pool, tasks);
            int items = 3 * tasks;
            AtomicIntegerArray runs = new AtomicIntegerArray(items);
            AtomicBoolean thrownOnce = new AtomicBoolean();
            IllegalStateException boom = new IllegalStateException("boom in a worker");
            RuntimeException thrown = assertThrows(RuntimeException.class, () -> par.forEach(items, i -> {
                runs.incrementAndGet((int) i);
                // the caller is slow, so the workers claim items; the first item a worker runs throws
                if (Thread.currentThread() == caller) sleep(5);
                else if (thrownOnce.compareAndSet(false, true)) throw boom;
            }));
            assertSame(boom, thrown, tasks + " tasks: the worker's exception, as it was thrown");
            for (int i = 0; i < items; i++) assertEquals(1, runs.get(i), "item " + i + " ran once");
        }
    }

    @Test
    void anErrorInAWorkerSurfacesOnTheCaller() {
        Parallelism par = Parallelism.of(pool, 3);
        AssertionError error = new AssertionError("invariant broken in a worker");
        Throwable thrown = assertThrows(Throwable.class, () -> par.forEach(9, i -> {
            if (i == 8) throw error;
        }));
        assertTrue(thrown == error || thrown.getCause() == error, "got " + thrown);
    }

    @Test
    void theCallerWaitsForItsTasksWhenItsOwnPartThrows() {
        Parallelism par = Parallelism.of(pool, 3);
        AtomicIntegerArray runs = new AtomicIntegerArray(9);
        IllegalArgumentException boom = new IllegalArgumentException("boom on the caller");
        RuntimeException thrown = assertThrows(RuntimeException.class, () -> par.forEach(9, i -> {
            if (i == 0) throw boom;
            if (i >= 3) sleep(20); // workers are still busy when the caller fails
            runs.incrementAndGet((int) i);
        }));
        assertSame(boom, thrown);
        for (int i = 3; i < 9; i++) assertEquals(1, runs.get(i), "worker item " + i + " had not finished when the call returned");
    }

    /** The same when the caller's part fails with an Error (an assert in a kernel, say): still no task left running. */
    @Test
    void theCallerWaitsForItsTasksWhenItsOwnPartThrowsAnError() {
        Parallelism par = Parallelism.of(pool, 3);
        AtomicIntegerArray runs = new AtomicIntegerArray(9);
        AssertionError error = new AssertionError("invariant broken on the caller");
        Throwable thrown = assertThrows(Throwable.class, () -> par.forEach(9, i -> {
            if (i == 0) throw error;
            if (i >= 3) sleep(20);
            runs.incrementAndGet((int) i);
        }));
        assertTrue(thrown == error || thrown.getCause() == error, "got " + thrown);
        for (int i = 3; i < 9; i++) assertEquals(1, runs.get(i), "worker item " + i + " had not finished when the call returned");
    }

    /**
     * An executor that refuses work means fewer threads, not a failed call: the caller does all of it,
     * with the serial bits, and the training call counts its batch.
     */
    @Test
    void aRefusingExecutorLeavesTheWorkToTheCaller() {
        Shape shape = new Shape(2, 6, 70);
        Executor refusing = r -> {
            throw new RejectedExecutionException("no threads today");
        };
        try (Arena arena = Arena.ofShared()) {
            MemorySegment x = arena.allocate(shape.byteSize(), 16);
            for (long i = 0; i < shape.numel(); i++) x.setAtIndex(F, i, (float) Math.cos(i));
            float[][] out = new float[2][];
            long[] counted = new long[2];
            for (int k = 0; k < 2; k++) {
                MemorySegment y = arena.allocate(shape.byteSize(), 16);
                MemorySegment sm = arena.allocate(shape.c() * 4), si = arena.allocate(shape.c() * 4);
                MemorySegment rm = arena.allocate(shape.c() * 4), rv = arena.allocate(shape.c() * 4);
                RunningStats running = RunningStats.cumulative(rm, rv, 2);
                BatchNorm.forwardTraining(shape, x, y, null, null, sm, si, running, 1e-5,
                        k == 0 ? Parallelism.serial() : Parallelism.of(refusing, 3));
                out[k] = y.toArray(F);
                counted[k] = running.numBatchesTracked();
            }
            assertArrayEquals(out[0], out[1], "a refused executor changed the result");
            assertEquals(3, counted[1], "the batch was not counted");
        }
    }

    /**
     * A worker that starts late, after the caller has done everything (the executor accepts the first
     * task but runs it 150 ms later, and refuses the second): once the call has returned, no task may
     * write any more.
     */
    @Test
    void noTaskWritesAfterTheCallReturns() throws InterruptedException {
        Shape shape = new Shape(3, 6, 100);
        AtomicInteger offered = new AtomicInteger();
        Executor firstOnlyLate = r -> {
            if (offered.getAndIncrement() > 0) throw new RejectedExecutionException("only one task accepted");
            pool.execute(() -> {
                sleep(150);
                r.run();
            });
        };
        try (Arena arena = Arena.ofShared()) {
            MemorySegment x = arena.allocate(shape.byteSize(), 16), y = arena.allocate(shape.byteSize(), 16);
            for (long i = 0; i < shape.numel(); i++) x.setAtIndex(F, i, (float) Math.cos(i));
            y.fill((byte) 0xFF);
            MemorySegment rm = arena.allocate(shape.c() * 4), rv = arena.allocate(shape.c() * 4);
            rv.fill((byte) 0x3F);
            BatchNorm.forwardInference(shape, x, y, null, null, rm, rv, 1e-5, Parallelism.of(firstOnlyLate, 3));
            byte[] atReturn = y.toArray(ValueLayout.JAVA_BYTE);
            y.fill((byte) 0x11); // a late task writing its (identical) result would now show
            Thread.sleep(400);
            assertTrue(y.elements(ValueLayout.JAVA_BYTE).allMatch(b -> b.get(ValueLayout.JAVA_BYTE, 0) == 0x11),
                    "y was written by a task of a call that had already returned");
            assertTrue(atReturn.length > 0);
        }
    }

    /** Every item exactly once, whether the workers come at once, late, or not at all. */
    @Test
    void everyItemRunsExactlyOnce() {
        Executor late = r -> pool.execute(() -> {
            sleep(2);
            r.run();
        });
        Executor refusing = r -> {
            throw new RejectedExecutionException("no threads today");
        };
        for (Executor executor : new Executor[] {pool, late, refusing}) {
            for (int tasks : new int[] {2, 3, 7}) {
                for (int items : new int[] {1, 2, 3, 7, 16, 17, 100, 1001}) {
                    AtomicIntegerArray runs = new AtomicIntegerArray(items);
                    Parallelism.of(executor, tasks).forEach(items, i -> runs.incrementAndGet((int) i));
                    for (int i = 0; i < items; i++) {
                        assertEquals(1, runs.get(i), "item " + i + " of " + items + " with " + tasks + " tasks");
                    }
                }
            }
        }
    }

    /**
     * A worker that arrives while the caller is busy starts in its own home range (the second half of the
     * items for two tasks), not where the caller left off: so a thread gets the same memory call after call.
     */
    @Test
    void aWorkerStartsInItsHomeRange() throws InterruptedException {
        int items = 64;
        CountDownLatch workerStarted = new CountDownLatch(1);
        AtomicLong workersFirst = new AtomicLong(-1);
        Thread caller = Thread.currentThread();
        Parallelism.of(pool, 2).forEach(items, i -> {
            if (Thread.currentThread() != caller) {
                workersFirst.compareAndSet(-1, i);
                workerStarted.countDown();
            } else if (i == 0) {
                // the caller holds its first item until the worker has taken one
                try {
                    assertTrue(workerStarted.await(10, TimeUnit.SECONDS), "the worker never started");
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
            }
        });
        assertEquals(items / 2, workersFirst.get(), "the worker's first item");
    }

    @Test
    void parallelismOfValidatesItsArguments() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Parallelism.of(null, 2));
        assertTrue(e.getMessage().contains("executor"), e.getMessage());
        for (int tasks : new int[] {0, -1, Integer.MIN_VALUE}) {
            e = assertThrows(IllegalArgumentException.class, () -> Parallelism.of(pool, tasks));
            assertTrue(e.getMessage().contains("tasks") && e.getMessage().contains(Integer.toString(tasks)), e.getMessage());
        }
        assertEquals(1, Parallelism.of(pool, 1).tasks());
        assertEquals(7, Parallelism.of(pool, 7).tasks());
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
