package io.github.vecnorm;

import static io.github.vecnorm.FamilyBounds.REF;
import static io.github.vecnorm.FamilyBounds.U;
import static io.github.vecnorm.FamilyBounds.check;
import static io.github.vecnorm.FamilyData.nans;
import static io.github.vecnorm.FamilyData.params;
import static io.github.vecnorm.FamilyData.read;
import static io.github.vecnorm.FamilyData.seg;
import static io.github.vecnorm.LayerNormTest.assertMessage;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.frequency;
import static org.quicktheories.generators.Generate.pick;
import static org.quicktheories.generators.Generate.range;

import io.github.vecnorm.FamilyData.Recipe;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.quicktheories.api.Pair;
import org.quicktheories.core.Gen;

/** InstanceNorm: input statistics against the reference, running statistics as ATen keeps them, inference, backward, bad input. */
class InstanceNormTest {

    private static final FamilyBounds BOUNDS = FamilyBounds.active();
    private static final FamilyData.Coverage COVERAGE = new FamilyData.Coverage();

    @AfterAll
    static void report() {
        System.out.println("InstanceNormTest [" + BOUNDS.impl + ", " + BOUNDS.lanes + " lanes] coverage: " + COVERAGE.report());
    }

    /** {N, C, S} with S >= 2 (training needs more than one spatial element). */
    static Gen<int[]> shapes() {
        Gen<int[]> awkward = pick(FamilyData.AWKWARD).zip(range(1, 5), range(1, 3),
                (s, c, n) -> new int[] {n, c, Math.max(2, s)});
        Gen<int[]> any = range(2, 200).zip(range(1, 6), range(1, 4), (s, c, n) -> new int[] {n, c, s});
        Gen<int[]> other = pick(List.of(new int[] {2, 70, 3}, new int[] {1, 2, 4099}, new int[] {8, 3, 2}));
        return frequency(List.of(Pair.of(60, awkward), Pair.of(30, any), Pair.of(10, other)));
    }

    /**
     * Training forward against the reference (GroupNorm with G = C), and the running statistics:
     * running = (1 - f) * running + f * mean_n(stat[n, c]) with the unbiased variance per instance. Bound
     * for them: f times the largest statistic error among the instances (dMu, dVar*S/(S-1)), plus the
     * float rounding of the stored value; the (1 - f) * old term is exact in double.
     */
    @Test
    void trainingForwardAndRunningStatistics() {
        qt().withExamples(200).forAll(shapes(), FamilyData.recipes(), range(0, 15), pick(List.of(0.1, 0.0, 1.0, -1.0)))
                .checkAssert((sh, rec, flags, momentum) -> {
                    int n = sh[0], c = sh[1], s = sh[2], numel = n * c * s;
                    COVERAGE.count("S=2", s == 2);
                    COVERAGE.count("S%lanes!=0 (tail)", s % BOUNDS.lanes != 0);
                    COVERAGE.count("big offset", rec.bigOffset());
                    COVERAGE.count("cumulative", momentum < 0);
                    float[] x = rec.values(n * c, s);
                    float[] gamma = params(rec.seed() + 1, c, -2, 2, (flags & 1) != 0);
                    float[] beta = params(rec.seed() + 2, c, -1, 1, (flags & 2) != 0);
                    boolean inPlace = (flags & 4) != 0, saveStats = (flags & 8) != 0;
                    float[] rm0 = params(rec.seed() + 3, c, -1, 1, true), rv0 = params(rec.seed() + 4, c, 0.5, 2, true);
                    double eps = 1e-5;
                    String ctx = "N=" + n + " C=" + c + " S=" + s + " " + rec + " flags=" + flags + " momentum=" + momentum;
                    try (Arena a = Arena.ofConfined()) {
                        MemorySegment xs = seg(a, x, 1), ys = inPlace ? xs : nans(a, numel, 2);
                        MemorySegment mean = saveStats ? nans(a, n * c, 0) : null, invstd = saveStats ? nans(a, n * c, 3) : null;
                        MemorySegment rm = seg(a, rm0, 0), rv = seg(a, rv0, 0);
                        RunningStats running = momentum < 0 ? RunningStats.cumulative(rm, rv, 3)
                                : RunningStats.withMomentum(rm, rv, momentum);
                        double f = running.nextFactor();
                        InstanceNorm.forwardTraining(Shape.of(n, c, s), xs, ys, seg(a, gamma, 0), seg(a, beta, 0), mean, invstd,
                                running, eps);
                        assertEquals(momentum < 0 ? 4 : 1, running.numBatchesTracked());
                        double[][] ref = FamilyReference.groupNorm(x, n, c, s, c, gamma, beta, eps);
                        float[] y = read(ys), mu = read(mean), is = read(invstd);
                        double[] errMu = new double[c], errVar = new double[c], sumMu = new double[c], sumVar = new double[c];
                        for (int k = 0; k < n * c; k++) {
                            FamilyReference.Stats st = FamilyReference.stats(x, (long) k * s, s);
                            double dMu = BOUNDS.dMu(s, st), rho = BOUNDS.rho(s, st, eps);
                            int ch = k % c;
                            errMu[ch] = Math.max(errMu[ch], dMu);
                            errVar[ch] = Math.max(errVar[ch], BOUNDS.dVar(s, st) * s / (s - 1));
                            sumMu[ch] += ref[1][k];
                            sumVar[ch] += ref[3][k];
                            if (saveStats) {
                                check("saveMean", k, mu[k], ref[1][k], BOUNDS.savedMean(ref[1][k], dMu), ctx);
                                check("saveInvstd", k, is[k], ref[2][k], BOUNDS.savedRstd(ref[2][k], rho), ctx);
                            }
                            for (int t = 0; t < s; t++) {
                                int i = k * s + t;
                                double bound = BOUNDS.forwardElement(x[i], FamilyReference.g(gamma, ch), FamilyReference.g0(beta, ch),
                                        ref[0][i], ref[1][k], ref[2][k], dMu, rho);
                                check("y", i, y[i], ref[0][i], bound, ctx + " x=" + x[i]);
                            }
                        }
                        float[] rmNew = read(rm), rvNew = read(rv);
                        for (int ch = 0; ch < c; ch++) {
                            double em = (1 - f) * rm0[ch] + f * sumMu[ch] / n, ev = (1 - f) * rv0[ch] + f * sumVar[ch] / n;
                            check("running_mean", ch, rmNew[ch], em, f * errMu[ch] + (U + REF) * (Math.abs(em) + Math.abs(rm0[ch])), ctx);
                            check("running_var", ch, rvNew[ch], ev, f * errVar[ch] + (U + REF) * (Math.abs(ev) + Math.abs(rv0[ch])), ctx);
                        }
                    }
                });
    }

    @Test
    void backwardMatchesReference() {
        qt().withExamples(150).forAll(shapes(), FamilyData.recipes(), range(0, 31))
                .checkAssert((sh, rec, flags) -> GroupNormTest.checkBackward(new int[] {sh[0], sh[1], sh[2], sh[1]}, rec, flags, true));
    }

    /**
     * Inference: y = (x - rm) * fl(gamma / sqrt(rv + eps)) + beta in one fma: x - rm and the coefficient
     * cost u each on |gamma r (x - rm)|, the fma u|y|. Backward with running statistics: dx = dy * fl(gamma r),
     * 2u|dx|; dgamma and dbeta are float-lane sums over the channel's N*S values, or, on BatchNorm's column
     * path (small S), float column sums in blocks of 32 rows ({@link FamilyBounds#columnSum}).
     */
    @Test
    void inferenceForwardAndBackward() {
        qt().withExamples(150).forAll(shapes(), FamilyData.recipes(), range(0, 15)).checkAssert((sh, rec, flags) -> {
            int n = sh[0], c = sh[1], s = sh[2] - 1, numel = n * c * s; // S = 1 is fine without input statistics
            float[] x = rec.values(n * c, s), dy = new Recipe(rec.seed() + 9, 1, 0, 1).values(n * c, s);
            float[] gamma = params(rec.seed() + 1, c, -2, 2, (flags & 1) != 0);
            float[] beta = params(rec.seed() + 2, c, -1, 1, (flags & 2) != 0);
            float[] rm = params(rec.seed() + 3, c, -1, 1, true), rv = params(rec.seed() + 4, c, 0.01, 3, true);
            double eps = 1e-5;
            String ctx = "N=" + n + " C=" + c + " S=" + s + " " + rec + " flags=" + flags;
            try (Arena a = Arena.ofConfined()) {
                Shape shape = Shape.of(n, c, s);
                MemorySegment xs = seg(a, x, 0), gs = seg(a, gamma, 1), rms = seg(a, rm, 0), rvs = seg(a, rv, 0);
                MemorySegment y = nans(a, numel, 2), dx = nans(a, numel, 3), dg = nans(a, c, 0), db = nans(a, c, 0);
                InstanceNorm.forwardInference(shape, xs, y, gs, seg(a, beta, 0), rms, rvs, eps);
                InstanceNorm.backwardInference(shape, seg(a, dy, 0), xs, gs, rms, rvs, eps, dx, dg, db);
                float[] yk = read(y), dxk = read(dx), dgk = read(dg), dbk = read(db);
                for (int ch = 0; ch < c; ch++) {
                    double r = 1 / Math.sqrt(rv[ch] + eps), gm = FamilyReference.g(gamma, ch), bt = FamilyReference.g0(beta, ch);
                    double sg = 0, sb = 0, absG = 0, absB = 0;
                    for (int nn = 0; nn < n; nn++) {
                        for (int t = 0; t < s; t++) {
                            int i = (nn * c + ch) * s + t;
                            double dev = (x[i] - rm[ch]) * r, ey = dev * gm + bt, edx = dy[i] * gm * r;
                            check("y", i, yk[i], ey, 2 * U * Math.abs(dev * gm) + (U + REF) * Math.abs(ey) + REF * Math.abs(bt), ctx);
                            check("dx", i, dxk[i], edx, (2 * U + REF) * Math.abs(edx), ctx);
                            sg += dy[i] * dev;
                            sb += dy[i];
                            absG += Math.abs(dy[i] * dev);
                            absB += Math.abs(dy[i]);
                        }
                    }
                    // BatchNorm's inference body: its column path (small S) sums like the row layers' columns
                    boolean columns = ErrorModel.columnPath(n, c, s);
                    check("dgamma", ch, dgk[ch], sg, columns ? FamilyBounds.columnSum(absG, sg)
                            : BOUNDS.channelSum((long) n * s, absG, sg), ctx);
                    check("dbeta", ch, dbk[ch], sb, columns ? FamilyBounds.columnSum(absB, sb)
                            : BOUNDS.channelSum((long) n * s, absB, sb), ctx);
                }
            }
        });
    }

    /** Training forward (with running statistics) and backward give the same bits with 1, 2, 3 and 8 tasks. */
    @Test
    void sameBitsForEveryThreadCount() {
        int n = 5, c = 7, s = 29, numel = n * c * s;
        float[] x = new Recipe(11, 1, 2, 3).values(n * c, s), dy = new Recipe(12, 0, 0, 1).values(n * c, s);
        float[] gamma = params(13, c, -2, 2, true), beta = params(14, c, -1, 1, true);
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(3);
        try (Arena a = Arena.ofShared()) {
            float[] first = null;
            for (int tasks : new int[] {1, 2, 3, 8}) {
                Parallelism par = Parallelism.of(pool, tasks);
                Shape shape = Shape.of(n, c, s);
                MemorySegment xs = seg(a, x, 0), gs = seg(a, gamma, 0), y = nans(a, numel, 0);
                MemorySegment mean = nans(a, n * c, 0), invstd = nans(a, n * c, 0), dx = nans(a, numel, 0);
                MemorySegment dg = nans(a, c, 0), db = nans(a, c, 0), rm = seg(a, gamma, 0), rv = seg(a, new float[c], 0);
                InstanceNorm.forwardTraining(shape, xs, y, gs, seg(a, beta, 0), mean, invstd, RunningStats.of(rm, rv), 1e-5, par);
                InstanceNorm.backward(shape, seg(a, dy, 0), xs, gs, mean, invstd, dx, dg, db, par);
                float[] now = GroupNormTest.concat(read(y), read(mean), read(invstd), read(dx), read(dg), read(db), read(rm), read(rv));
                if (first == null) first = now;
                else org.junit.jupiter.api.Assertions.assertArrayEquals(LayerNormTest.bits(first), LayerNormTest.bits(now),
                        tasks + " tasks");
            }
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void badInputIsRejectedBeforeAnyWrite() {
        try (Arena a = Arena.ofConfined()) {
            Shape one = Shape.of(4, 3, 1, 1);
            MemorySegment x1 = nans(a, 12, 0), y1 = nans(a, 12, 0);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> InstanceNorm.forwardTraining(one, x1, y1, null, null, null, null, null, 1e-5));
            assertEquals("Expected more than 1 spatial element when training, got input size [4, 3, 1]", e.getMessage());
            Shape shape = Shape.of(2, 3, 5);
            MemorySegment x = nans(a, 30, 0), y = nans(a, 30, 0), rm = nans(a, 3, 0), rv = nans(a, 3, 0);
            assertMessage("Expected running_mean and running_var to be defined when use_input_stats is false",
                    () -> InstanceNorm.forwardInference(shape, x, y, null, null, rm, null, 1e-5));
            assertMessage("Expected running_mean and running_var to be defined when use_input_stats is false",
                    () -> InstanceNorm.backwardInference(shape, x, x, null, null, rv, 1e-5, y, null, null));
            assertMessage("saveMean: expected 24 bytes", () -> InstanceNorm.forwardTraining(shape, x, y, null, null,
                    nans(a, 3, 0), null, null, 1e-5));
            assertMessage("runningVar: expected 12 bytes", () -> InstanceNorm.forwardTraining(shape, x, y, null, null,
                    null, null, RunningStats.of(rm, nans(a, 6, 0)), 1e-5));
            assertMessage("runningMean overlaps runningVar", () -> InstanceNorm.forwardTraining(shape, x, y, null, null,
                    null, null, RunningStats.of(rm, rm), 1e-5));
            assertMessage("eps must be finite and > 0", () -> InstanceNorm.forwardInference(shape, x, y, null, null, rm, rv, 0));
            assertMessage("saveInvstd must not be null", () -> InstanceNorm.backward(shape, x, x, null, nans(a, 6, 0), null,
                    y, null, null));
            for (float v : read(y)) assertTrue(Float.isNaN(v), "y was written by a rejected call");
            for (float v : read(rm)) assertTrue(Float.isNaN(v), "running mean was written by a rejected call");
        }
    }
}
