package io.github.vecnorm;

import static io.github.vecnorm.FamilyBounds.check;
import static io.github.vecnorm.FamilyData.nans;
import static io.github.vecnorm.FamilyData.params;
import static io.github.vecnorm.FamilyData.read;
import static io.github.vecnorm.FamilyData.seg;
import static io.github.vecnorm.LayerNormTest.assertMessage;
import static io.github.vecnorm.LayerNormTest.bits;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.frequency;
import static org.quicktheories.generators.Generate.pick;
import static org.quicktheories.generators.Generate.range;

import io.github.vecnorm.FamilyData.Recipe;
import io.github.vecnorm.internal.GroupNormOps;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.quicktheories.api.Pair;
import org.quicktheories.core.Gen;

/** GroupNorm against {@link FamilyReference}; G = C is InstanceNorm; G = 1 is LayerNorm over (C, S); FD; threads; bad input. */
class GroupNormTest {

    private static final FamilyBounds BOUNDS = FamilyBounds.active();
    private static final FamilyData.Coverage COVERAGE = new FamilyData.Coverage();

    @AfterAll
    static void report() {
        System.out.println("GroupNormTest [" + BOUNDS.impl + ", " + BOUNDS.lanes + " lanes] coverage: " + COVERAGE.report());
    }

    /** (C, G) pairs: G = 1, G = C, in between, primes. */
    static final List<int[]> CG = List.of(new int[] {1, 1}, new int[] {2, 1}, new int[] {2, 2}, new int[] {6, 1},
            new int[] {6, 3}, new int[] {6, 6}, new int[] {12, 4}, new int[] {5, 5}, new int[] {7, 1}, new int[] {8, 2});

    /** {N, C, S, G}: awkward S, any S up to 200, a few wider cases. */
    static Gen<int[]> shapes() {
        Gen<int[]> awkward = pick(FamilyData.AWKWARD).zip(pick(CG), range(1, 3), (s, cg, n) -> new int[] {n, cg[0], s, cg[1]});
        Gen<int[]> any = range(1, 200).zip(pick(CG), range(1, 3), (s, cg, n) -> new int[] {n, cg[0], s, cg[1]});
        Gen<int[]> wide = pick(List.of(new int[] {2, 32, 7, 8}, new int[] {1, 3, 4099, 1}, new int[] {4, 16, 65, 16},
                new int[] {3, 64, 1, 8}, new int[] {5, 6, 1, 2}));
        return frequency(List.of(Pair.of(60, awkward), Pair.of(30, any), Pair.of(10, wide)));
    }

    @Test
    void forwardMatchesReference() {
        qt().withExamples(250).forAll(shapes(), FamilyData.recipes(), range(0, 7), pick(List.of(1e-5, 1e-3, 0.5)))
                .checkAssert((sh, rec, flags, eps) -> {
                    int n = sh[0], c = sh[1], s = sh[2], g = sh[3], len = c / g * s, numel = n * c * s;
                    COVERAGE.count("S=1", s == 1);
                    COVERAGE.count("G=1", g == 1);
                    COVERAGE.count("G=C", g == c);
                    COVERAGE.count("per-element path (small S)", GroupNormOps.perElement(c, s)
                            && !GroupNormOps.shortGroups(c, s, g));
                    COVERAGE.count("short groups", GroupNormOps.shortGroups(c, s, g));
                    COVERAGE.count("S%lanes!=0 (tail)", s % BOUNDS.lanes != 0);
                    COVERAGE.count("big offset", rec.bigOffset());
                    COVERAGE.count("constant sets", rec.kind() == 2 || rec.kind() == 3);
                    float[] x = rec.values(n * g, len);
                    float[] gamma = params(rec.seed() + 1, c, -2, 2, (flags & 1) != 0);
                    float[] beta = params(rec.seed() + 2, c, -1, 1, (flags & 2) != 0);
                    boolean inPlace = (flags & 4) != 0;
                    String ctx = "N=" + n + " C=" + c + " S=" + s + " G=" + g + " " + rec + " gamma=" + (gamma != null)
                            + " beta=" + (beta != null) + " inPlace=" + inPlace + " eps=" + eps;
                    try (Arena a = Arena.ofConfined()) {
                        MemorySegment xs = seg(a, x, 2), ys = inPlace ? xs : nans(a, numel, 1);
                        MemorySegment mean = nans(a, n * g, 0), rstd = nans(a, n * g, 3);
                        GroupNorm.forward(Shape.of(n, c, s), g, xs, ys, seg(a, gamma, 0), seg(a, beta, 1), mean, rstd, eps);
                        float[] y = read(ys), mu = read(mean), rs = read(rstd);
                        double[][] ref = FamilyReference.groupNorm(x, n, c, s, g, gamma, beta, eps);
                        for (int k = 0; k < n * g; k++) {
                            FamilyReference.Stats st = FamilyReference.stats(x, (long) k * len, len);
                            double dMu = BOUNDS.dMu(len, st), rho = BOUNDS.rho(len, st, eps);
                            check("mean", k, mu[k], ref[1][k], BOUNDS.savedMean(ref[1][k], dMu), ctx);
                            check("rstd", k, rs[k], ref[2][k], BOUNDS.savedRstd(ref[2][k], rho), ctx);
                            for (int t = 0; t < len; t++) {
                                int i = k * len + t, ch = FamilyReference.channelOf(i, c, s);
                                double bound = BOUNDS.forwardElement(x[i], FamilyReference.g(gamma, ch),
                                        FamilyReference.g0(beta, ch), ref[0][i], ref[1][k], ref[2][k], dMu, rho);
                                check("y", i, y[i], ref[0][i], bound, ctx + " x=" + x[i]);
                            }
                        }
                    }
                });
    }

    @Test
    void backwardMatchesReference() {
        qt().withExamples(250).forAll(shapes(), FamilyData.recipes(), range(0, 31))
                .checkAssert((sh, rec, flags) -> checkBackward(sh, rec, flags, false));
    }

    /** Backward of GroupNorm, or of InstanceNorm when {@code instance} (then G must equal C). */
    static void checkBackward(int[] sh, Recipe rec, int flags, boolean instance) {
        int n = sh[0], c = sh[1], s = sh[2], g = sh[3], len = c / g * s, numel = n * c * s;
        float[] x = rec.values(n * g, len);
        float[] dy = new Recipe(rec.seed() + 3, (int) (rec.seed() % 2), 0, 1).values(n * g, len);
        float[] gamma = params(rec.seed() + 1, c, -2, 2, (flags & 1) != 0);
        boolean wantDx = (flags & 2) != 0, wantDg = (flags & 4) != 0, wantDb = (flags & 8) != 0, alias = (flags & 16) != 0;
        String ctx = (instance ? "InstanceNorm " : "GroupNorm ") + "N=" + n + " C=" + c + " S=" + s + " G=" + g + " " + rec
                + " gamma=" + (gamma != null) + " dx=" + wantDx + " dgamma=" + wantDg + " dbeta=" + wantDb + " alias=" + alias;
        try (Arena a = Arena.ofConfined()) {
            Shape shape = Shape.of(n, c, s);
            MemorySegment xs = seg(a, x, 1), gs = seg(a, gamma, 2), dys = seg(a, dy, 3);
            MemorySegment mean = nans(a, n * g, 0), rstd = nans(a, n * g, 0);
            MemorySegment dxs = !wantDx ? null : alias ? dys : nans(a, numel, 4);
            MemorySegment dgs = wantDg ? nans(a, c, 1) : null, dbs = wantDb ? nans(a, c, 2) : null;
            if (instance) {
                InstanceNorm.forwardTraining(shape, xs, nans(a, numel, 0), gs, null, mean, rstd, null, 1e-5);
                InstanceNorm.backward(shape, dys, xs, gs, mean, rstd, dxs, dgs, dbs);
            } else {
                GroupNorm.forward(shape, g, xs, nans(a, numel, 0), gs, null, mean, rstd, 1e-5);
                GroupNorm.backward(shape, g, dys, xs, gs, mean, rstd, dxs, dgs, dbs);
            }
            double[] cm = FamilyData.toDouble(read(mean)), r = FamilyData.toDouble(read(rstd));
            double[][] ref = FamilyReference.normBackward(dy, x, n * g, len, cm, r, gamma, c,
                    i -> FamilyReference.channelOf(i, c, s));
            if (wantDx) {
                float[] dx = read(dxs);
                for (int k = 0; k < n * g; k++) {
                    double sa = 0, absA = 0, sb = 0, absB = 0;
                    for (int t = 0; t < len; t++) {
                        int i = k * len + t;
                        double gi = FamilyReference.g(gamma, FamilyReference.channelOf(i, c, s)) * dy[i], xc = x[i] - cm[k];
                        sa += gi;
                        absA += Math.abs(gi);
                        sb += gi * xc;
                        absB += Math.abs(gi * xc);
                    }
                    for (int t = 0; t < len; t++) {
                        int i = k * len + t;
                        double gi = FamilyReference.g(gamma, FamilyReference.channelOf(i, c, s)) * dy[i];
                        double bound = BOUNDS.backwardElement(len, r[k], gi, x[i] - cm[k], sa, absA, sb, absB, ref[0][i]);
                        check("dx", i, dx[i], ref[0][i], bound, ctx);
                    }
                }
            }
            float[] dg = read(dgs), db = read(dbs);
            for (int ch = 0; ch < c; ch++) {
                double absG = 0, absB = 0;
                for (int nn = 0; nn < n; nn++) {
                    int k = nn * g + ch / (c / g);
                    for (int t = 0; t < s; t++) {
                        int i = (nn * c + ch) * s + t;
                        absG += Math.abs(dy[i] * (x[i] - cm[k]) * r[k]);
                        absB += Math.abs(dy[i]);
                    }
                }
                if (wantDg) check("dgamma", ch, dg[ch], ref[1][ch], channelBound(c, s, g, absG, ref[1][ch]), ctx);
                if (wantDb) check("dbeta", ch, db[ch], ref[2][ch], channelBound(c, s, g, absB, ref[2][ch]), ctx);
            }
        }
    }

    /**
     * Bound of a per-channel parameter gradient: float-lane sums per (n, c) run for large S and for short groups
     * ({@link GroupNormOps#shortGroups}); otherwise for small S ({@link GroupNormOps#perElement}) column sums in
     * float blocks of rows, then the S positions in double.
     */
    static double channelBound(int c, int s, int g, double sumAbsTerms, double result) {
        return GroupNormOps.perElement(c, s) && !GroupNormOps.shortGroups(c, s, g)
                ? FamilyBounds.columnSum(sumAbsTerms, result) : BOUNDS.channelSum(s, sumAbsTerms, result);
    }

    /**
     * dgamma and dbeta have the same bits whatever else is requested (dx or not, in place of dy or not, one of
     * them or both), on every path: small S, where dx and the column sums share a pass, short groups, large S.
     */
    @Test
    void parameterGradientsDoNotDependOnTheMask() {
        qt().withExamples(80).forAll(shapes(), FamilyData.recipes()).checkAssert(GroupNormTest::sameParameterGradients);
        // several bands of samples (flushes every 32 samples, partials combined), and blocks of groups
        for (int[] sh : MANY_SAMPLES) sameParameterGradients(sh, new Recipe(sh[0] + sh[2], 1, 3, 2));
    }

    /** {N, C, S, G} with small S and long groups over several bands of 32 samples. */
    static final int[][] MANY_SAMPLES = {{70, 8, 9, 2}, {40, 6, 33, 3}, {65, 4, 20, 1}};

    private static void sameParameterGradients(int[] sh, Recipe rec) {
        int n = sh[0], c = sh[1], s = sh[2], g = sh[3], numel = n * c * s;
        float[] x = rec.values(n * g, c / g * s), dy = new Recipe(rec.seed() + 1, 1, 0, 1).values(n * g, c / g * s);
        float[] gamma = params(rec.seed() + 2, c, -2, 2, true);
        try (Arena a = Arena.ofConfined()) {
            Shape shape = Shape.of(n, c, s);
            MemorySegment xs = seg(a, x, 0), gs = seg(a, gamma, 0), mean = nans(a, n * g, 0), rstd = nans(a, n * g, 0);
            GroupNorm.forward(shape, g, xs, nans(a, numel, 0), gs, null, mean, rstd, 1e-5);
            float[] want = null;
            for (int mode = 0; mode < 5; mode++) {
                MemorySegment dys = seg(a, dy, 0), dg = nans(a, c, 0), db = nans(a, c, 0);
                MemorySegment dx = mode == 0 ? null : mode == 2 ? dys : nans(a, numel, 0);
                GroupNorm.backward(shape, g, dys, xs, gs, mean, rstd, dx, mode == 4 ? null : dg, mode == 3 ? null : db);
                float[] got = concat(mode == 4 ? new float[0] : read(dg), mode == 3 ? new float[0] : read(db));
                if (mode == 0) {
                    want = got;
                    continue;
                }
                float[] expect = mode == 3 ? java.util.Arrays.copyOf(want, c)
                        : mode == 4 ? java.util.Arrays.copyOfRange(want, c, 2 * c) : want;
                assertArrayEquals(bits(expect), bits(got), "mode " + mode + ", N=" + n + " C=" + c + " S=" + s
                        + " G=" + g + " " + rec);
            }
        }
    }

    /** With one group per channel GroupNorm is InstanceNorm: the same bits, forward and backward. */
    @Test
    void groupsEqualToChannelsIsInstanceNorm() {
        qt().withExamples(60).forAll(shapes(), FamilyData.recipes()).checkAssert((sh, rec) -> {
            int n = sh[0], c = sh[1], s = Math.max(2, sh[2]), numel = n * c * s;
            float[] x = rec.values(n * c, s), dy = new Recipe(rec.seed() + 1, 1, 0, 1).values(n * c, s);
            float[] gamma = params(rec.seed() + 2, c, -2, 2, true), beta = params(rec.seed() + 3, c, -1, 1, true);
            try (Arena a = Arena.ofConfined()) {
                Shape shape = Shape.of(n, c, s);
                MemorySegment xs = seg(a, x, 0), gs = seg(a, gamma, 0), bs = seg(a, beta, 0), dys = seg(a, dy, 0);
                float[][] out = new float[2][];
                for (int which = 0; which < 2; which++) {
                    MemorySegment y = nans(a, numel, 0), mean = nans(a, n * c, 0), rstd = nans(a, n * c, 0);
                    MemorySegment dx = nans(a, numel, 0), dg = nans(a, c, 0), db = nans(a, c, 0);
                    if (which == 0) {
                        GroupNorm.forward(shape, c, xs, y, gs, bs, mean, rstd, 1e-5);
                        GroupNorm.backward(shape, c, dys, xs, gs, mean, rstd, dx, dg, db);
                    } else {
                        InstanceNorm.forwardTraining(shape, xs, y, gs, bs, mean, rstd, null, 1e-5);
                        InstanceNorm.backward(shape, dys, xs, gs, mean, rstd, dx, dg, db);
                    }
                    out[which] = concat(read(y), read(mean), read(rstd), read(dx), read(dg), read(db));
                }
                assertArrayEquals(bits(out[0]), bits(out[1]), "N=" + n + " C=" + c + " S=" + s + " " + rec);
            }
        });
    }

    /**
     * LayerNorm over the trailing (C, S) of an (N, C, S) tensor, without affine, is GroupNorm with one
     * group: the same set of values, the same operations (one run, shifted Welford, one affine), so the
     * same bits for y, mean, rstd and for dx.
     */
    @Test
    void oneGroupIsLayerNormOverChannelsAndSpace() {
        qt().withExamples(60).forAll(shapes(), FamilyData.recipes()).checkAssert((sh, rec) -> {
            int n = sh[0], c = sh[1], s = sh[2], d = c * s, numel = n * d;
            float[] x = rec.values(n, d), dy = new Recipe(rec.seed() + 1, 1, 0, 1).values(n, d);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment xs = seg(a, x, 0), dys = seg(a, dy, 0);
                float[][] out = new float[2][];
                for (int which = 0; which < 2; which++) {
                    MemorySegment y = nans(a, numel, 0), mean = nans(a, n, 0), rstd = nans(a, n, 0), dx = nans(a, numel, 0);
                    if (which == 0) {
                        GroupNorm.forward(Shape.of(n, c, s), 1, xs, y, null, null, mean, rstd, 1e-5);
                        GroupNorm.backward(Shape.of(n, c, s), 1, dys, xs, null, mean, rstd, dx, null, null);
                    } else {
                        Rows rows = Rows.normalizing(new long[] {n, c, s}, c, s);
                        LayerNorm.forward(rows, xs, y, null, null, mean, rstd, 1e-5);
                        LayerNorm.backward(rows, dys, xs, null, mean, rstd, dx, null, null);
                    }
                    out[which] = concat(read(y), read(mean), read(rstd), read(dx));
                }
                assertArrayEquals(bits(out[0]), bits(out[1]), "N=" + n + " C=" + c + " S=" + s + " " + rec);
            }
        });
    }

    static float[] concat(float[]... parts) {
        int len = 0;
        for (float[] p : parts) len += p.length;
        float[] all = new float[len];
        int at = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, all, at, p.length);
            at += p.length;
        }
        return all;
    }

    /**
     * Finite differences of L = Σ w*y (double forward) against dx, dgamma, dbeta; h = 1e-3/r as for
     * LayerNorm (truncation <~ 1e-6 r Σ|wγ|, allowed 1e-5), plus the effect of the float saved statistics.
     */
    @Test
    void finiteDifferences() {
        qt().withExamples(30).forAll(pick(List.of(1, 2)), pick(CG), pick(List.of(1, 2, 3, 5)), range(0, 1_000_000))
                .checkAssert((n, cg, s, seed) -> {
                    int c = cg[0], g = cg[1], len = c / g * s, numel = n * c * s;
                    if (len < 2) return; // one value per group: y = beta, no gradient through x to compare
                    SplittableRandom rnd = new SplittableRandom(seed);
                    float[] x = new float[numel], w = new float[numel];
                    for (int i = 0; i < numel; i++) {
                        x[i] = (float) (rnd.nextDouble(-1, 1) - 1.5);
                        w[i] = (float) rnd.nextDouble(-1, 1);
                    }
                    float[] gamma = params(seed + 1, c, -2, 2, true), beta = params(seed + 2, c, -1, 1, true);
                    double eps = 1e-3;
                    try (Arena a = Arena.ofConfined()) {
                        Shape shape = Shape.of(n, c, s);
                        MemorySegment xs = seg(a, x, 0), gs = seg(a, gamma, 0), mean = nans(a, n * g, 0), rstd = nans(a, n * g, 0);
                        MemorySegment dxs = nans(a, numel, 0), dgs = nans(a, c, 0), dbs = nans(a, c, 0);
                        GroupNorm.forward(shape, g, xs, nans(a, numel, 0), gs, seg(a, beta, 0), mean, rstd, eps);
                        GroupNorm.backward(shape, g, seg(a, w, 0), xs, gs, mean, rstd, dxs, dgs, dbs);
                        float[] dx = read(dxs), dg = read(dgs), db = read(dbs);
                        double[] cm = FamilyData.toDouble(read(mean)), r = FamilyData.toDouble(read(rstd));
                        double[][] exact = FamilyReference.groupNorm(x, n, c, s, g, gamma, beta, eps);
                        java.util.function.IntUnaryOperator chOf = i -> FamilyReference.channelOf(i, c, s);
                        double[][] refSaved = FamilyReference.normBackward(w, x, n * g, len, cm, r, gamma, c, chOf);
                        double[][] refExact = FamilyReference.normBackward(w, x, n * g, len, exact[1], exact[2], gamma, c, chOf);
                        double[] xd = FamilyData.toDouble(x), gd = FamilyData.toDouble(gamma), bd = FamilyData.toDouble(beta);
                        for (int k = 0; k < n * g; k++) {
                            double rk = exact[2][k], swg = 0, sa = 0, absA = 0, sb = 0, absB = 0;
                            for (int t = 0; t < len; t++) {
                                int i = k * len + t;
                                double gi = gamma[chOf.applyAsInt(i)] * w[i], xc = x[i] - cm[k];
                                swg += Math.abs(gi);
                                sa += gi;
                                absA += Math.abs(gi);
                                sb += gi * xc;
                                absB += Math.abs(gi * xc);
                            }
                            for (int t = 0; t < len; t++) {
                                int i = k * len + t;
                                double fd = LayerNormTest.fd(xd, i, 1e-3 / rk, () -> loss(xd, gd, bd, w, n, c, s, g, eps));
                                double bound = BOUNDS.backwardElement(len, r[k], gamma[chOf.applyAsInt(i)] * w[i], x[i] - cm[k],
                                        sa, absA, sb, absB, dx[i]) + Math.abs(refSaved[0][i] - refExact[0][i]) + 1e-5 * rk * swg;
                                check("dx vs finite difference", i, dx[i], fd, bound, "N=" + n + " C=" + c + " S=" + s + " G=" + g + " seed=" + seed);
                            }
                        }
                        for (int ch = 0; ch < c; ch++) {
                            double fdG = LayerNormTest.fd(gd, ch, 1e-3, () -> loss(xd, gd, bd, w, n, c, s, g, eps));
                            double fdB = LayerNormTest.fd(bd, ch, 1e-3, () -> loss(xd, gd, bd, w, n, c, s, g, eps));
                            double absG = 0, absB = 0;
                            for (int nn = 0; nn < n; nn++) {
                                for (int t = 0; t < s; t++) {
                                    int i = (nn * c + ch) * s + t, k = nn * g + ch / (c / g);
                                    absG += Math.abs(w[i] * (x[i] - cm[k]) * r[k]);
                                    absB += Math.abs(w[i]);
                                }
                            }
                            check("dgamma vs finite difference", ch, dg[ch], fdG, channelBound(c, s, g, absG, fdG)
                                    + Math.abs(refSaved[1][ch] - refExact[1][ch]) + 1e-9 * absG, "seed=" + seed);
                            check("dbeta vs finite difference", ch, db[ch], fdB, channelBound(c, s, g, absB, fdB) + 1e-9 * absB,
                                    "seed=" + seed);
                        }
                    }
                });
    }

    /** L = Σ w*y, GroupNorm in double, written out again for the finite differences. */
    static double loss(double[] x, double[] gamma, double[] beta, float[] w, int n, int c, int s, int g, double eps) {
        int len = c / g * s;
        double l = 0;
        for (int k = 0; k < n * g; k++) {
            double mu = 0, var = 0;
            for (int t = 0; t < len; t++) mu += x[k * len + t];
            mu /= len;
            for (int t = 0; t < len; t++) var += (x[k * len + t] - mu) * (x[k * len + t] - mu);
            double r = 1 / Math.sqrt(var / len + eps);
            for (int t = 0; t < len; t++) {
                int i = k * len + t, ch = (i / s) % c;
                l += w[i] * ((x[i] - mu) * r * gamma[ch] + beta[ch]);
            }
        }
        return l;
    }

    /**
     * The same bits for 1 to 8 tasks, and in place (y over x, dx over dy) as out of place: long groups, and short
     * ones (a sample's groups per work item, cut into blocks when there are fewer samples than tasks) with runs
     * shorter and longer than a vector.
     */
    @Test
    void sameBitsForEveryThreadCount() {
        int[][] shapes = {{6, 12, 33, 4}, {3, 64, 1, 8}, {2, 6, 1021, 6}, {2, 12, 13, 6}, {1, 16, 20, 8},
            {3, 10, 37, 10}, MANY_SAMPLES[0], MANY_SAMPLES[1]};
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try (Arena a = Arena.ofShared()) {
            for (int[] sh : shapes) {
                int n = sh[0], c = sh[1], s = sh[2], g = sh[3], numel = n * c * s;
                float[] x = new Recipe(3 + s, 1, 5, 2).values(n * g, c / g * s), dy = new Recipe(9, 0, 0, 1).values(n * g, c / g * s);
                float[] gamma = params(5, c, -2, 2, true), beta = params(6, c, -1, 1, true);
                float[][] first = null;
                float[][] plain = null;
                for (int run = 0; run < 15; run++) {
                    int tasks = new int[] {1, 2, 3, 4, 8}[run % 5];
                    // runs 5-9 in place; runs 10-14 without gamma, beta and parameter gradients (short groups:
                    // a run per group rather than per channel)
                    boolean inPlace = run >= 5 && run < 10, affine = run < 10;
                    Parallelism par = Parallelism.of(pool, tasks);
                    Shape shape = Shape.of(n, c, s);
                    MemorySegment xs = seg(a, x, 1), gs = affine ? seg(a, gamma, 0) : null, dys = seg(a, dy, 0);
                    MemorySegment y = inPlace ? seg(a, x, 0) : nans(a, numel, 0);
                    MemorySegment mean = nans(a, n * g, 0), rstd = nans(a, n * g, 0);
                    MemorySegment dx = inPlace ? seg(a, dy, 0) : nans(a, numel, 0);
                    MemorySegment dg = affine ? nans(a, c, 0) : null, db = affine ? nans(a, c, 0) : null;
                    GroupNorm.forward(shape, g, inPlace ? y : xs, y, gs, affine ? seg(a, beta, 0) : null, mean, rstd,
                            1e-5, par);
                    GroupNorm.backward(shape, g, inPlace ? dx : dys, xs, gs, mean, rstd, dx, dg, db, par);
                    float[][] now = affine ? new float[][] {read(y), read(mean), read(rstd), read(dx), read(dg), read(db)}
                            : new float[][] {read(y), read(mean), read(rstd), read(dx)};
                    float[][] want = affine ? first : plain;
                    if (want == null) {
                        if (affine) first = now;
                        else plain = now;
                        continue;
                    }
                    for (int k = 0; k < now.length; k++) {
                        assertArrayEquals(bits(want[k]), bits(now[k]), "output " + k + " with " + tasks + " tasks"
                                + (inPlace ? ", in place, " : affine ? ", " : ", no affine, ") + shape + " G=" + g);
                    }
                }
            }
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void badInputIsRejectedBeforeAnyWrite() {
        try (Arena a = Arena.ofConfined()) {
            Shape shape = Shape.of(2, 6, 4, 4);
            MemorySegment x = nans(a, shape.numel(), 0), y = nans(a, shape.numel(), 0);
            MemorySegment mean = nans(a, 6, 0), rstd = nans(a, 6, 0);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> GroupNorm.forward(shape, 4, x, y, null, null, null, null, 1e-5));
            assertEquals("Expected number of channels in input to be divisible by num_groups, but got input of shape "
                    + "[2, 6, 16] and num_groups=4", e.getMessage());
            assertMessage("Expected num groups to be greater than 0, got 0",
                    () -> GroupNorm.forward(shape, 0, x, y, null, null, null, null, 1e-5));
            assertMessage("mean: expected 16 bytes", () -> GroupNorm.forward(shape, 2, x, y, null, null, mean, rstd, 1e-5));
            assertMessage("gamma: expected 24 bytes", () -> GroupNorm.forward(shape, 3, x, y, nans(a, 3, 0), null, mean, rstd, 1e-5));
            assertMessage("eps must be finite and > 0", () -> GroupNorm.forward(shape, 3, x, y, null, null, mean, rstd, 0));
            assertMessage("y overlaps mean", () -> GroupNorm.forward(shape, 3, x, y, null, null, y.asSlice(0, 24), rstd, 1e-5));
            assertMessage("rstd must not be null", () -> GroupNorm.backward(shape, 3, y, x, null, mean, null, y, null, null));
            MemorySegment both = nans(a, 6, 0);
            assertMessage("dgamma overlaps dbeta", () -> GroupNorm.backward(shape, 3, y, x, null, mean, rstd, null, both, both));
            assertMessage("shape must not be null", () -> GroupNorm.forward(null, 3, x, y, null, null, mean, rstd, 1e-5));
            for (float v : read(y)) assertTrue(Float.isNaN(v), "y was written by a rejected call");
            for (float v : read(mean)) assertTrue(Float.isNaN(v), "mean was written by a rejected call");
        }
    }
}
