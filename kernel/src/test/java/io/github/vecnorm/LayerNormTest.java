package io.github.vecnorm;

import static io.github.vecnorm.FamilyBounds.check;
import static io.github.vecnorm.FamilyData.nans;
import static io.github.vecnorm.FamilyData.params;
import static io.github.vecnorm.FamilyData.read;
import static io.github.vecnorm.FamilyData.seg;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.frequency;
import static org.quicktheories.generators.Generate.pick;
import static org.quicktheories.generators.Generate.range;

import io.github.vecnorm.FamilyData.Recipe;
import io.github.vecnorm.internal.SetStats;
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

/** LayerNorm against {@link FamilyReference}, with the bounds of {@link FamilyBounds}; identities; FD; threads; bad input. */
class LayerNormTest {

    private static final FamilyBounds BOUNDS = FamilyBounds.active();
    private static final FamilyData.Coverage COVERAGE = new FamilyData.Coverage();

    @AfterAll
    static void report() {
        System.out.println("LayerNormTest [" + BOUNDS.impl + ", " + BOUNDS.lanes + " lanes] coverage: " + COVERAGE.report());
    }

    /** {M, D}: awkward D with few rows; any D up to 300; wide rows over several column tiles; tall over several row bands. */
    static Gen<int[]> shapes() {
        Gen<int[]> awkward = pick(FamilyData.AWKWARD).zip(pick(List.of(1, 1, 2, 3, 5)), (d, m) -> new int[] {m, d});
        Gen<int[]> any = range(1, 300).zip(range(1, 6), (d, m) -> new int[] {m, d});
        Gen<int[]> wide = pick(List.of(2047, 2049, 4099, 6151, 8209)).zip(range(1, 2), (d, m) -> new int[] {m, d});
        Gen<int[]> tall = pick(List.of(1, 3, 17)).zip(pick(List.of(1025, 2100)), (d, m) -> new int[] {m, d});
        return frequency(List.of(Pair.of(60, awkward), Pair.of(25, any), Pair.of(8, wide), Pair.of(7, tall)));
    }

    private static void cover(int m, int d, Recipe rec) {
        COVERAGE.count("D=1", d == 1);
        COVERAGE.count("D%lanes!=0 (tail)", d % BOUNDS.lanes != 0);
        COVERAGE.count("D>=lanes", d >= BOUNDS.lanes);
        COVERAGE.count("several column tiles", d > 2048);
        COVERAGE.count("several row bands", m > 1024);
        COVERAGE.count("big offset", rec.bigOffset());
        COVERAGE.count("constant sets", rec.kind() == 2 || rec.kind() == 3);
    }

    @Test
    void forwardMatchesReference() {
        qt().withExamples(250).forAll(shapes(), FamilyData.recipes(), range(0, 7), pick(List.of(1e-5, 1e-3, 0.5)))
                .checkAssert(this::checkForward);
    }

    private void checkForward(int[] md, Recipe rec, int flags, double eps) {
        int m = md[0], d = md[1];
        cover(m, d, rec);
        float[] x = rec.values(m, d);
        float[] gamma = params(rec.seed() + 1, d, -2, 2, (flags & 1) != 0);
        float[] beta = params(rec.seed() + 2, d, -1, 1, (flags & 2) != 0);
        boolean inPlace = (flags & 4) != 0;
        int mis = (int) (rec.seed() % 5);
        String ctx = "M=" + m + " D=" + d + " " + rec + " gamma=" + (gamma != null) + " beta=" + (beta != null)
                + " inPlace=" + inPlace + " eps=" + eps;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment xs = seg(a, x, mis);
            MemorySegment ys = inPlace ? xs : nans(a, (long) m * d, (mis + 2) % 5);
            MemorySegment mean = nans(a, m, 1), rstd = nans(a, m, 3);
            LayerNorm.forward(Rows.of(m, d), xs, ys, seg(a, gamma, 0), seg(a, beta, 1), mean, rstd, eps);
            float[] y = read(ys), mu = read(mean), rs = read(rstd);
            double[][] ref = FamilyReference.layerNorm(x, m, d, gamma, beta, eps);
            for (int r = 0; r < m; r++) {
                FamilyReference.Stats st = FamilyReference.stats(x, (long) r * d, d);
                double dMu = BOUNDS.dMu(d, st), rho = BOUNDS.rho(d, st, eps);
                check("mean", r, mu[r], ref[1][r], BOUNDS.savedMean(ref[1][r], dMu), ctx);
                check("rstd", r, rs[r], ref[2][r], BOUNDS.savedRstd(ref[2][r], rho), ctx);
                for (int j = 0; j < d; j++) {
                    int i = r * d + j;
                    double bound = BOUNDS.forwardElement(x[i], FamilyReference.g(gamma, j), FamilyReference.g0(beta, j),
                            ref[0][i], ref[1][r], ref[2][r], dMu, rho);
                    check("y", i, y[i], ref[0][i], bound, ctx + " x=" + x[i]);
                }
            }
        }
    }

    /** Rows larger than {@link SetStats#TWO_PASS_MAX_BYTES} take Welford in one pass, row by row, not the pipelined sums. */
    @Test
    void rowsTooLargeForTwoPassesMatchTheReference() {
        int d = (int) (SetStats.TWO_PASS_MAX_BYTES / Float.BYTES) + 37;
        assertTrue(!SetStats.twoPass(d));
        qt().withExamples(6).forAll(pick(List.of(1, 2)), FamilyData.recipes(), range(0, 7))
                .checkAssert((m, rec, flags) -> checkForward(new int[] {m, d}, rec, flags, 1e-5));
    }

    @Test
    void backwardMatchesReference() {
        qt().withExamples(250).forAll(shapes(), FamilyData.recipes(), range(0, 31), pick(List.of(1e-5, 0.5)))
                .checkAssert(this::checkBackward);
    }

    private void checkBackward(int[] md, Recipe rec, int flags, double eps) {
        int m = md[0], d = md[1];
        cover(m, d, rec);
        float[] x = rec.values(m, d);
        float[] dy = new Recipe(rec.seed() + 3, (int) (rec.seed() % 2), 0, 1).values(m, d);
        float[] gamma = params(rec.seed() + 1, d, -2, 2, (flags & 1) != 0);
        boolean wantDx = (flags & 2) != 0, wantDg = (flags & 4) != 0, wantDb = (flags & 8) != 0, alias = (flags & 16) != 0;
        String ctx = "M=" + m + " D=" + d + " " + rec + " gamma=" + (gamma != null) + " dx=" + wantDx + " dgamma="
                + wantDg + " dbeta=" + wantDb + " alias=" + alias + " eps=" + eps;
        try (Arena a = Arena.ofConfined()) {
            Rows rows = Rows.of(m, d);
            MemorySegment xs = seg(a, x, 1), gs = seg(a, gamma, 2), dys = seg(a, dy, 3);
            MemorySegment mean = nans(a, m, 0), rstd = nans(a, m, 0);
            LayerNorm.forward(rows, xs, nans(a, (long) m * d, 0), gs, null, mean, rstd, eps);
            MemorySegment dxs = !wantDx ? null : alias ? dys : nans(a, (long) m * d, 4);
            MemorySegment dgs = wantDg ? nans(a, d, 1) : null, dbs = wantDb ? nans(a, d, 2) : null;
            LayerNorm.backward(rows, dys, xs, gs, mean, rstd, dxs, dgs, dbs);

            double[] c = FamilyData.toDouble(read(mean)), r = FamilyData.toDouble(read(rstd));
            double[][] ref = FamilyReference.normBackward(dy, x, m, d, c, r, gamma, d, i -> i % d);
            if (wantDx) {
                float[] dx = read(dxs);
                for (int k = 0; k < m; k++) {
                    double[] sums = rowSums(dy, x, gamma, k, d, c[k]);
                    for (int j = 0; j < d; j++) {
                        int i = k * d + j;
                        double g = FamilyReference.g(gamma, j) * dy[i];
                        double bound = BOUNDS.backwardElement(d, r[k], g, x[i] - c[k], sums[0], sums[1], sums[2], sums[3],
                                ref[0][i]);
                        check("dx", i, dx[i], ref[0][i], bound, ctx);
                    }
                }
            }
            float[] dg = read(dgs), db = read(dbs);
            for (int j = 0; j < d; j++) {
                double absG = 0, absB = 0;
                for (int k = 0; k < m; k++) {
                    int i = k * d + j;
                    absG += Math.abs(dy[i] * (x[i] - c[k]) * r[k]);
                    absB += Math.abs(dy[i]);
                }
                if (wantDg) check("dgamma", j, dg[j], ref[1][j], FamilyBounds.columnSum(absG, ref[1][j]), ctx);
                if (wantDb) check("dbeta", j, db[j], ref[2][j], FamilyBounds.columnSum(absB, ref[2][j]), ctx);
            }
        }
    }

    /**
     * dgamma and dbeta have the same bits whatever else is requested (dx or not, dx in place of dy or
     * not, dbeta or not): the pass that fuses them with dx accumulates exactly as the separate column pass
     * does, with or without its Σdy columns.
     */
    @Test
    void parameterGradientsDoNotDependOnTheMask() {
        qt().withExamples(60).forAll(shapes(), FamilyData.recipes(), range(0, 1)).checkAssert((md, rec, withGamma) -> {
            int m = md[0], d = md[1];
            float[] x = rec.values(m, d), dy = new Recipe(rec.seed() + 3, 1, 0, 1).values(m, d);
            float[] gamma = params(rec.seed() + 1, d, -2, 2, withGamma == 1);
            try (Arena a = Arena.ofConfined()) {
                Rows rows = Rows.of(m, d);
                MemorySegment xs = seg(a, x, 0), gs = seg(a, gamma, 0), mean = nans(a, m, 0), rstd = nans(a, m, 0);
                LayerNorm.forward(rows, xs, nans(a, x.length, 0), gs, null, mean, rstd, 1e-5);
                float[][] got = new float[3][];
                for (int mode = 0; mode < 3; mode++) {
                    MemorySegment dys = seg(a, dy, 0), dg = nans(a, d, 0), db = nans(a, d, 0);
                    MemorySegment dx = mode == 0 ? null : mode == 1 ? nans(a, x.length, 0) : dys;
                    LayerNorm.backward(rows, dys, xs, gs, mean, rstd, dx, dg, db);
                    got[mode] = GroupNormTest.concat(read(dg), read(db));
                }
                String ctx = "M=" + m + " D=" + d + " " + rec;
                assertArrayEquals(bits(got[0]), bits(got[1]), "with dx " + ctx);
                assertArrayEquals(bits(got[0]), bits(got[2]), "with dx in place of dy " + ctx);
                float[] dgamma = java.util.Arrays.copyOf(got[0], d);
                for (int mode = 0; mode < 2; mode++) {
                    MemorySegment dys = seg(a, dy, 0), dg = nans(a, d, 0);
                    LayerNorm.backward(rows, dys, xs, gs, mean, rstd, mode == 0 ? null : nans(a, x.length, 0), dg, null);
                    assertArrayEquals(bits(dgamma), bits(read(dg)), "without dbeta" + (mode == 0 ? "" : ", with dx ") + ctx);
                }
            }
        });
    }

    /** {A, Σ|g|, Bs, Σ|g*xc|} of row k: g = gamma*dy, xc = x - c. */
    static double[] rowSums(float[] dy, float[] x, float[] gamma, int k, int d, double c) {
        double a = 0, absA = 0, bs = 0, absBs = 0;
        for (int j = 0; j < d; j++) {
            int i = k * d + j;
            double g = FamilyReference.g(gamma, j) * dy[i], xc = x[i] - c;
            a += g;
            absA += Math.abs(g);
            bs += g * xc;
            absBs += Math.abs(g * xc);
        }
        return new double[] {a, absA, bs, absBs};
    }

    /**
     * Exact algebra: per row Σ dx = -r³ (Bs/D) Σ xc and Σ dx*xc = r Bs - r (A/D) Σ xc - r³ (Bs/D) Σ xc²,
     * which are 0 and r*Bs*eps/(var+eps) with exact statistics; the residuals here come only from the
     * float saved mean and eps, evaluated in double. Bound: the per-element backward bounds, summed.
     */
    @Test
    void gradientSumsVanish() {
        qt().withExamples(150).forAll(shapes(), FamilyData.recipes(), range(0, 1))
                .checkAssert((md, rec, withGamma) -> {
                    int m = md[0], d = md[1];
                    float[] x = rec.values(m, d);
                    float[] dy = new Recipe(rec.seed() + 5, 0, 0.25, 1).values(m, d);
                    float[] gamma = params(rec.seed() + 1, d, -2, 2, withGamma == 1);
                    try (Arena a = Arena.ofConfined()) {
                        Rows rows = Rows.of(m, d);
                        MemorySegment xs = seg(a, x, 0), gs = seg(a, gamma, 0), dys = seg(a, dy, 0);
                        MemorySegment mean = nans(a, m, 0), rstd = nans(a, m, 0), dxs = nans(a, (long) m * d, 0);
                        LayerNorm.forward(rows, xs, nans(a, (long) m * d, 0), gs, null, mean, rstd, 1e-5);
                        LayerNorm.backward(rows, dys, xs, gs, mean, rstd, dxs, null, null);
                        float[] dx = read(dxs), c = read(mean), r = read(rstd);
                        for (int k = 0; k < m; k++) {
                            double[] s = rowSums(dy, x, gamma, k, d, c[k]);
                            double rk = r[k], sumDx = 0, sumDxXc = 0, sumXc = 0, sumXc2 = 0, tol = 0, tolXc = 0;
                            for (int j = 0; j < d; j++) {
                                int i = k * d + j;
                                double xc = x[i] - c[k];
                                sumDx += dx[i];
                                sumDxXc += dx[i] * xc;
                                sumXc += xc;
                                sumXc2 += xc * xc;
                                double g = FamilyReference.g(gamma, j) * dy[i];
                                double t = BOUNDS.backwardElement(d, rk, g, xc, s[0], s[1], s[2], s[3], dx[i]);
                                tol += t;
                                tolXc += t * Math.abs(xc);
                            }
                            double e1 = -rk * rk * rk * s[2] / d * sumXc;
                            double e2 = rk * s[2] - rk * s[0] / d * sumXc - rk * rk * rk * s[2] / d * sumXc2;
                            String ctx = "row " + k + " of M=" + m + " D=" + d + " " + rec;
                            check("Σdx", k, sumDx, e1, tol * 1.01 + 1e-300, ctx);
                            check("Σdx*xc", k, sumDxXc, e2, tolXc * 1.01 + 1e-300, ctx);
                        }
                    }
                });
    }

    /**
     * Finite differences of L = Σ w*y through an independent double forward, against the kernel's
     * backward. With h = 1e-3 / r (a thousandth of a standard deviation) the central difference's
     * truncation error is h²/6 * |L'''| with |L'''| <~ 6 r³ Σ|w γ| (each derivative of xhat brings a
     * factor r), i.e. 1e-6 r Σ|wγ|; we allow 1e-5 r Σ|wγ| + 1e-5 (|β| terms are linear: exact).
     * The kernel uses the float saved statistics: their effect, |ref(saved) - ref(exact)|, is added.
     */
    @Test
    void finiteDifferences() {
        qt().withExamples(40).forAll(pick(List.of(1, 2, 3)), pick(List.of(2, 3, 5, 8, 17)), range(0, 1_000_000))
                .checkAssert((m, d, seed) -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    float[] x = new float[m * d], w = new float[m * d];
                    for (int i = 0; i < x.length; i++) {
                        x[i] = (float) (rnd.nextDouble(-1, 1) + 2);
                        w[i] = (float) rnd.nextDouble(-1, 1);
                    }
                    float[] gamma = params(seed + 1, d, -2, 2, true), beta = params(seed + 2, d, -1, 1, true);
                    double eps = 1e-3;
                    try (Arena a = Arena.ofConfined()) {
                        Rows rows = Rows.of(m, d);
                        MemorySegment xs = seg(a, x, 0), gs = seg(a, gamma, 0), ws = seg(a, w, 0);
                        MemorySegment mean = nans(a, m, 0), rstd = nans(a, m, 0);
                        MemorySegment dxs = nans(a, (long) m * d, 0), dgs = nans(a, d, 0), dbs = nans(a, d, 0);
                        LayerNorm.forward(rows, xs, nans(a, (long) m * d, 0), gs, seg(a, beta, 0), mean, rstd, eps);
                        LayerNorm.backward(rows, ws, xs, gs, mean, rstd, dxs, dgs, dbs);
                        float[] dx = read(dxs), dg = read(dgs), db = read(dbs);
                        double[] c = FamilyData.toDouble(read(mean)), r = FamilyData.toDouble(read(rstd));
                        double[][] exact = FamilyReference.layerNorm(x, m, d, gamma, beta, eps);
                        double[][] refSaved = FamilyReference.normBackward(w, x, m, d, c, r, gamma, d, i -> i % d);
                        double[][] refExact = FamilyReference.normBackward(w, x, m, d, exact[1], exact[2], gamma, d, i -> i % d);
                        double[] xd = FamilyData.toDouble(x), gd = FamilyData.toDouble(gamma), bd = FamilyData.toDouble(beta);
                        for (int k = 0; k < m; k++) {
                            double rk = exact[2][k], h = 1e-3 / rk, swg = 0;
                            for (int j = 0; j < d; j++) swg += Math.abs(w[k * d + j] * gamma[j]);
                            double[] s = rowSums(w, x, gamma, k, d, c[k]);
                            for (int j = 0; j < d; j++) {
                                int i = k * d + j;
                                double fd = fd(xd, i, h, () -> loss(xd, gd, bd, w, m, d, eps));
                                double bound = BOUNDS.backwardElement(d, r[k], gamma[j] * w[i], x[i] - c[k], s[0], s[1],
                                        s[2], s[3], dx[i]) + Math.abs(refSaved[0][i] - refExact[0][i]) + 1e-5 * rk * swg;
                                check("dx vs finite difference", i, dx[i], fd, bound, "M=" + m + " D=" + d + " seed=" + seed);
                            }
                        }
                        for (int j = 0; j < d; j++) {
                            double fdG = fd(gd, j, 1e-3, () -> loss(xd, gd, bd, w, m, d, eps));
                            double fdB = fd(bd, j, 1e-3, () -> loss(xd, gd, bd, w, m, d, eps));
                            double absG = 0, absB = 0;
                            for (int k = 0; k < m; k++) {
                                int i = k * d + j;
                                absG += Math.abs(w[i] * (x[i] - c[k]) * r[k]);
                                absB += Math.abs(w[i]);
                            }
                            // dgamma: L is linear in gamma and beta, so the difference quotient is exact to rounding
                            check("dgamma vs finite difference", j, dg[j], fdG, FamilyBounds.columnSum(absG, fdG)
                                    + Math.abs(refSaved[1][j] - refExact[1][j]) + 1e-9 * absG, "seed=" + seed);
                            check("dbeta vs finite difference", j, db[j], fdB, FamilyBounds.columnSum(absB, fdB) + 1e-9 * absB,
                                    "seed=" + seed);
                        }
                    }
                });
    }

    /** Central difference of f in coordinate i of v (restored afterwards). */
    static double fd(double[] v, int i, double h, java.util.function.DoubleSupplier f) {
        double old = v[i];
        v[i] = old + h;
        double up = f.getAsDouble();
        v[i] = old - h;
        double down = f.getAsDouble();
        v[i] = old;
        return (up - down) / (2 * h);
    }

    /** L = Σ w*y with y = LayerNorm(x) in double, written out again (two passes) for the finite differences. */
    static double loss(double[] x, double[] gamma, double[] beta, float[] w, int m, int d, double eps) {
        double l = 0;
        for (int k = 0; k < m; k++) {
            double mu = 0, var = 0;
            for (int j = 0; j < d; j++) mu += x[k * d + j];
            mu /= d;
            for (int j = 0; j < d; j++) var += (x[k * d + j] - mu) * (x[k * d + j] - mu);
            double r = 1 / Math.sqrt(var / d + eps);
            for (int j = 0; j < d; j++) l += w[k * d + j] * ((x[k * d + j] - mu) * r * gamma[j] + beta[j]);
        }
        return l;
    }

    /** Forward and backward give the same bits with 1, 2, 3, 4 and 8 tasks (row bands, column tiles, rows). */
    @Test
    void sameBitsForEveryThreadCount() {
        int[][] shapes = {{2100, 5}, {3, 5000}, {37, 129}};
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try (Arena a = Arena.ofShared()) {
            for (int[] md : shapes) {
                int m = md[0], d = md[1];
                Recipe rec = new Recipe(42 + d, 1, 3, 2);
                float[] x = rec.values(m, d), dy = new Recipe(7 + m, 0, 0, 1).values(m, d);
                float[] gamma = params(5, d, -2, 2, true), beta = params(6, d, -1, 1, true);
                float[][] first = null;
                for (int tasks : new int[] {1, 2, 3, 4, 8}) {
                    Parallelism par = Parallelism.of(pool, tasks);
                    Rows rows = Rows.of(m, d);
                    MemorySegment xs = seg(a, x, 1), gs = seg(a, gamma, 0), dys = seg(a, dy, 2);
                    MemorySegment y = nans(a, (long) m * d, 0), mean = nans(a, m, 0), rstd = nans(a, m, 0);
                    MemorySegment dx = nans(a, (long) m * d, 0), dg = nans(a, d, 0), db = nans(a, d, 0);
                    LayerNorm.forward(rows, xs, y, gs, seg(a, beta, 0), mean, rstd, 1e-5, par);
                    LayerNorm.backward(rows, dys, xs, gs, mean, rstd, dx, dg, db, par);
                    float[][] now = {read(y), read(mean), read(rstd), read(dx), read(dg), read(db)};
                    if (first == null) {
                        first = now;
                        continue;
                    }
                    for (int k = 0; k < now.length; k++) {
                        assertArrayEquals(bits(first[k]), bits(now[k]), "output " + k + " with " + tasks + " tasks, M=" + m + " D=" + d);
                    }
                }
            }
        } finally {
            pool.shutdown();
        }
    }

    static int[] bits(float[] v) {
        int[] b = new int[v.length];
        for (int i = 0; i < v.length; i++) b[i] = Float.floatToRawIntBits(v[i]);
        return b;
    }

    @Test
    void rowsFromShapesAsATen() {
        assertEquals(Rows.of(8 * 128, 768), Rows.normalizing(new long[] {8, 128, 768}, 768));
        assertEquals(Rows.of(2, 3 * 4 * 5), Rows.normalizing(new long[] {2, 3, 4, 5}, 3, 4, 5));
        assertEquals(Rows.of(1, 6), Rows.normalizing(new long[] {6}, 6));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Rows.normalizing(new long[] {2, 3, 5}, 3, 4));
        assertEquals("Given normalized_shape=[3, 4], expected input with shape [*, 3, 4], but got input of size[2, 3, 5]",
                e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Rows.normalizing(new long[] {2, 3}));
        assertThrows(IllegalArgumentException.class, () -> Rows.normalizing(new long[] {3}, 2, 3));
        assertThrows(IllegalArgumentException.class, () -> Rows.of(0, 3));
        assertThrows(IllegalArgumentException.class, () -> Rows.of(Long.MAX_VALUE / 2, 3));
    }

    @Test
    void badInputIsRejectedBeforeAnyWrite() {
        try (Arena a = Arena.ofConfined()) {
            Rows rows = Rows.of(3, 4);
            MemorySegment x = seg(a, new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 0);
            MemorySegment y = nans(a, 12, 0), mean = nans(a, 3, 0), rstd = nans(a, 3, 0);
            MemorySegment gamma = nans(a, 4, 0);
            assertMessage("x must not be null", () -> LayerNorm.forward(rows, null, y, null, null, mean, rstd, 1e-5));
            assertMessage("gamma: expected 16 bytes", () -> LayerNorm.forward(rows, x, y, nans(a, 3, 0), null, mean, rstd, 1e-5));
            assertMessage("eps must be finite and > 0", () -> LayerNorm.forward(rows, x, y, null, null, mean, rstd, 0));
            assertMessage("eps must be finite and > 0", () -> LayerNorm.forward(rows, x, y, null, null, mean, rstd, Double.NaN));
            assertMessage("mean overlaps rstd", () -> LayerNorm.forward(rows, x, y, null, null, mean, mean, 1e-5));
            assertMessage("y overlaps x without being exactly", () -> LayerNorm.forward(Rows.of(2, 4), x.asSlice(0, 32),
                    x.asSlice(16, 32), null, null, null, null, 1e-5));
            assertMessage("read-only", () -> LayerNorm.forward(rows, x, y.asReadOnly(), null, null, mean, rstd, 1e-5));
            assertMessage("rows must not be null", () -> LayerNorm.forward(null, x, y, null, null, mean, rstd, 1e-5));
            assertMessage("parallelism must not be null", () -> LayerNorm.forward(rows, x, y, null, null, mean, rstd, 1e-5, null));
            assertMessage("mean must not be null", () -> LayerNorm.backward(rows, x, x, null, null, rstd, y, null, null));
            assertMessage("dx overlaps x", () -> LayerNorm.backward(rows, y, x, null, mean, rstd, x, null, null));
            assertMessage("dgamma overlaps gamma", () -> LayerNorm.backward(rows, y, x, gamma, mean, rstd, null, gamma, null));
            for (float v : read(y)) assertTrue(Float.isNaN(v), "y was written by a rejected call");
            for (float v : read(mean)) assertTrue(Float.isNaN(v), "mean was written by a rejected call");
            Arena closed = Arena.ofConfined();
            MemorySegment dead = closed.allocate(48);
            closed.close();
            assertThrows(IllegalStateException.class, () -> LayerNorm.forward(rows, dead, y, null, null, null, null, 1e-5));
        }
    }

    @Test
    void segmentConfinedToAnotherThreadIsRejected() throws Exception {
        MemorySegment[] foreign = new MemorySegment[1];
        Arena[] owner = new Arena[1];
        Thread t = Thread.ofPlatform().start(() -> {
            owner[0] = Arena.ofConfined();
            foreign[0] = owner[0].allocate(48);
        });
        t.join();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment y = nans(a, 12, 0);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> LayerNorm.forward(Rows.of(3, 4), foreign[0], y, null, null, null, null, 1e-5));
            assertTrue(e.getMessage().startsWith("x: the segment is confined to another thread"), e.getMessage());
            for (float v : read(y)) assertTrue(Float.isNaN(v), "y was written by a rejected call");
        }
    }

    static void assertMessage(String part, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(part), "message '" + e.getMessage() + "' should contain '" + part + "'");
    }
}
