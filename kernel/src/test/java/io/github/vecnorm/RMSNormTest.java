package io.github.vecnorm;

import static io.github.vecnorm.FamilyBounds.U;
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
import static org.quicktheories.generators.Generate.pick;
import static org.quicktheories.generators.Generate.range;

import io.github.vecnorm.FamilyData.Recipe;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** RMSNorm against {@link FamilyReference}; default eps; scale invariance; finite differences; threads; bad input. */
class RMSNormTest {

    private static final FamilyBounds BOUNDS = FamilyBounds.active();
    private static final FamilyData.Coverage COVERAGE = new FamilyData.Coverage();

    @AfterAll
    static void report() {
        System.out.println("RMSNormTest [" + BOUNDS.impl + ", " + BOUNDS.lanes + " lanes] coverage: " + COVERAGE.report());
    }

    /**
     * Relative error of rstd before its float rounding: Σx² has non-negative terms, so its float-lane
     * sum is off by at most uA*(H(k) + L + 4) relative; that error is damped by ms/(ms + eps) and
     * halved by the square root.
     */
    static double rho(float[] x, int from, int d, double eps) {
        double ms = FamilyReference.meanSquare(x, from, d);
        double es = BOUNDS.uA * (FamilyBounds.h(BOUNDS.steps(d)) + BOUNDS.lanes + 4) + FamilyBounds.REF;
        double rho = es * ms / (2 * (ms + eps));
        return rho + rho * rho + FamilyBounds.REF;
    }

    @Test
    void forwardMatchesReference() {
        qt().withExamples(250).forAll(LayerNormTest.shapes(), FamilyData.recipes(), range(0, 3),
                        pick(List.of(RMSNorm.DEFAULT_EPS, 1e-6, 0.5)))
                .checkAssert((md, rec, flags, eps) -> {
                    int m = md[0], d = md[1];
                    COVERAGE.count("D%lanes!=0 (tail)", d % BOUNDS.lanes != 0);
                    COVERAGE.count("big offset", rec.bigOffset());
                    COVERAGE.count("several row bands", m > 1024);
                    float[] x = rec.values(m, d);
                    float[] gamma = params(rec.seed() + 1, d, -2, 2, (flags & 1) != 0);
                    boolean inPlace = (flags & 2) != 0;
                    String ctx = "M=" + m + " D=" + d + " " + rec + " gamma=" + (gamma != null) + " inPlace=" + inPlace
                            + " eps=" + eps;
                    try (Arena a = Arena.ofConfined()) {
                        MemorySegment xs = seg(a, x, 3), ys = inPlace ? xs : nans(a, (long) m * d, 1);
                        MemorySegment rstd = nans(a, m, 2);
                        RMSNorm.forward(Rows.of(m, d), xs, ys, seg(a, gamma, 0), rstd, eps);
                        float[] y = read(ys), rs = read(rstd);
                        double[][] ref = FamilyReference.rmsNorm(x, m, d, gamma, eps);
                        for (int r = 0; r < m; r++) {
                            double rho = rho(x, r * d, d, eps);
                            check("rstd", r, rs[r], ref[1][r], ref[1][r] * (rho + U), ctx);
                            for (int j = 0; j < d; j++) {
                                int i = r * d + j;
                                // y = fl(fl(x * fl(r')) * gamma): rho plus three float roundings
                                check("y", i, y[i], ref[0][i], Math.abs(ref[0][i]) * (rho + 3 * U), ctx + " x=" + x[i]);
                            }
                        }
                    }
                });
    }

    @Test
    void defaultEpsIsFloatMachineEpsilon() {
        assertEquals(1.1920928955078125e-07, RMSNorm.DEFAULT_EPS);
        float[] x = new Recipe(9, 0, 0, 1e-3).values(3, 37);
        try (Arena a = Arena.ofConfined()) {
            Rows rows = Rows.of(3, 37);
            MemorySegment xs = seg(a, x, 0), y1 = nans(a, x.length, 0), y2 = nans(a, x.length, 0);
            RMSNorm.forward(rows, xs, y1, null, null);
            RMSNorm.forward(rows, xs, y2, null, null, 0x1p-23);
            assertArrayEquals(bits(read(y2)), bits(read(y1)));
        }
    }

    /**
     * Scaling x by a power of two 2^e, with eps scaled by 4^e, scales every rounding of the kernel by
     * the same power of two: y and dgamma are bitwise unchanged, rstd and dx are bitwise divided by 2^e.
     * Any other factor changes y only within the forward bound.
     */
    @Test
    void scaleInvariance() {
        qt().withExamples(100).forAll(LayerNormTest.shapes(), FamilyData.recipes(), pick(List.of(-7, -1, 3, 10)))
                .checkAssert((md, rec, e) -> {
                    int m = md[0], d = md[1];
                    float[] x = rec.values(m, d), dy = new Recipe(rec.seed() + 1, 1, 0, 1).values(m, d);
                    float[] xs2 = new float[x.length];
                    float s = (float) Math.scalb(1.0, e);
                    for (int i = 0; i < x.length; i++) xs2[i] = x[i] * s;
                    float[] gamma = params(rec.seed() + 2, d, -2, 2, true);
                    double eps = 1e-5;
                    try (Arena a = Arena.ofConfined()) {
                        Rows rows = Rows.of(m, d);
                        float[][] one = run(a, rows, x, dy, gamma, eps), two = run(a, rows, xs2, dy, gamma, eps * s * s);
                        String ctx = "M=" + m + " D=" + d + " " + rec + " scale=2^" + e;
                        assertArrayEquals(bits(one[0]), bits(two[0]), "y " + ctx);
                        assertArrayEquals(bits(one[3]), bits(two[3]), "dgamma " + ctx);
                        for (int r = 0; r < m; r++) assertEquals(one[1][r] / s, two[1][r], 0f, "rstd " + ctx);
                        for (int i = 0; i < x.length; i++) assertEquals(one[2][i] / s, two[2][i], 0f, "dx " + ctx);

                        float[] x3 = new float[x.length];
                        for (int i = 0; i < x.length; i++) x3[i] = x[i] * 3.7f;
                        float[] three = run(a, rows, x3, dy, gamma, eps * 3.7 * 3.7)[0];
                        double[] ref = FamilyReference.rmsNorm(x, m, d, gamma, eps)[0];
                        for (int r = 0; r < m; r++) {
                            double rho = rho(x, r * d, d, eps) + rho(x3, r * d, d, eps * 3.7 * 3.7);
                            for (int j = 0; j < d; j++) {
                                int i = r * d + j;
                                // both within their own bound of the same exact value (x*3.7 is rounded: 1 more u)
                                check("y(3.7x) vs y(x)", i, three[i], one[0][i], Math.abs(ref[i]) * (rho + 8 * U), ctx);
                            }
                        }
                    }
                });
    }

    /** Forward then backward: {y, rstd, dx, dgamma}. */
    private static float[][] run(Arena a, Rows rows, float[] x, float[] dy, float[] gamma, double eps) {
        int n = x.length;
        MemorySegment xs = seg(a, x, 0), gs = seg(a, gamma, 0), y = nans(a, n, 0), rstd = nans(a, rows.m(), 0);
        MemorySegment dx = nans(a, n, 0), dg = nans(a, rows.d(), 0);
        RMSNorm.forward(rows, xs, y, gs, rstd, eps);
        RMSNorm.backward(rows, seg(a, dy, 0), xs, gs, rstd, dx, dg);
        return new float[][] {read(y), read(rstd), read(dx), read(dg)};
    }

    /**
     * dgamma has the same bits with dx, without it and with dx in place of dy: the pass that fuses it with dx
     * (no Σdy columns for RMSNorm) accumulates exactly as the separate column pass does.
     */
    @Test
    void parameterGradientDoesNotDependOnTheMask() {
        qt().withExamples(60).forAll(LayerNormTest.shapes(), FamilyData.recipes()).checkAssert((md, rec) -> {
            int m = md[0], d = md[1];
            float[] x = rec.values(m, d), dy = new Recipe(rec.seed() + 3, 1, 0, 1).values(m, d);
            float[] gamma = params(rec.seed() + 1, d, -2, 2, true);
            try (Arena a = Arena.ofConfined()) {
                Rows rows = Rows.of(m, d);
                MemorySegment xs = seg(a, x, 0), gs = seg(a, gamma, 0), rstd = nans(a, m, 0);
                RMSNorm.forward(rows, xs, nans(a, x.length, 0), gs, rstd, 1e-5);
                float[][] got = new float[3][];
                for (int mode = 0; mode < 3; mode++) {
                    MemorySegment dys = seg(a, dy, 0), dg = nans(a, d, 0);
                    MemorySegment dx = mode == 0 ? null : mode == 1 ? nans(a, x.length, 0) : dys;
                    RMSNorm.backward(rows, dys, xs, gs, rstd, dx, dg);
                    got[mode] = read(dg);
                }
                String ctx = "M=" + m + " D=" + d + " " + rec;
                assertArrayEquals(bits(got[0]), bits(got[1]), "with dx " + ctx);
                assertArrayEquals(bits(got[0]), bits(got[2]), "with dx in place of dy " + ctx);
            }
        });
    }

    @Test
    void backwardMatchesReference() {
        qt().withExamples(250).forAll(LayerNormTest.shapes(), FamilyData.recipes(), range(0, 15))
                .checkAssert((md, rec, flags) -> {
                    int m = md[0], d = md[1];
                    float[] x = rec.values(m, d), dy = new Recipe(rec.seed() + 3, 1, 0, 1).values(m, d);
                    float[] gamma = params(rec.seed() + 1, d, -2, 2, (flags & 1) != 0);
                    boolean wantDx = (flags & 2) != 0, wantDg = (flags & 4) != 0, alias = (flags & 8) != 0;
                    String ctx = "M=" + m + " D=" + d + " " + rec + " gamma=" + (gamma != null) + " dx=" + wantDx
                            + " dgamma=" + wantDg + " alias=" + alias;
                    try (Arena a = Arena.ofConfined()) {
                        Rows rows = Rows.of(m, d);
                        MemorySegment xs = seg(a, x, 1), gs = seg(a, gamma, 2), dys = seg(a, dy, 3), rstd = nans(a, m, 0);
                        RMSNorm.forward(rows, xs, nans(a, x.length, 0), gs, rstd, 1e-5);
                        MemorySegment dxs = !wantDx ? null : alias ? dys : nans(a, x.length, 4);
                        MemorySegment dgs = wantDg ? nans(a, d, 1) : null;
                        RMSNorm.backward(rows, dys, xs, gs, rstd, dxs, dgs);
                        double[] r = FamilyData.toDouble(read(rstd));
                        double[][] ref = FamilyReference.rmsBackward(dy, x, m, d, gamma, r);
                        if (wantDx) {
                            float[] dx = read(dxs);
                            for (int k = 0; k < m; k++) {
                                double[] s = LayerNormTest.rowSums(dy, x, gamma, k, d, 0.0);
                                for (int j = 0; j < d; j++) {
                                    int i = k * d + j;
                                    double g = FamilyReference.g(gamma, j) * dy[i];
                                    // the LayerNorm bound with center 0 and no Σg term
                                    double bound = BOUNDS.backwardElement(d, r[k], g, x[i], 0, 0, s[2], s[3], ref[0][i]);
                                    check("dx", i, dx[i], ref[0][i], bound, ctx);
                                }
                            }
                        }
                        if (wantDg) {
                            float[] dg = read(dgs);
                            for (int j = 0; j < d; j++) {
                                double abs = 0;
                                for (int k = 0; k < m; k++) abs += Math.abs(dy[k * d + j] * x[k * d + j] * r[k]);
                                check("dgamma", j, dg[j], ref[1][j], FamilyBounds.columnSum(abs, ref[1][j]), ctx);
                            }
                        }
                    }
                });
    }

    /**
     * Finite differences of L = Σ w*y (double forward) against the kernel's dx and dgamma. With
     * h = 1e-3/r the truncation error is <~ h² r³ Σ|wγ| = 1e-6 r Σ|wγ|; allowed 1e-5 r Σ|wγ|, plus the
     * effect of the saved float rstd, |ref(saved) - ref(exact)|.
     */
    @Test
    void finiteDifferences() {
        qt().withExamples(40).forAll(pick(List.of(1, 2, 3)), pick(List.of(1, 2, 3, 5, 8, 17)), range(0, 1_000_000))
                .checkAssert((m, d, seed) -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    float[] x = new float[m * d], w = new float[m * d];
                    for (int i = 0; i < x.length; i++) {
                        x[i] = (float) rnd.nextDouble(-2, 2);
                        w[i] = (float) rnd.nextDouble(-1, 1);
                    }
                    float[] gamma = params(seed + 1, d, -2, 2, true);
                    double eps = 1e-3;
                    try (Arena a = Arena.ofConfined()) {
                        float[][] k = run(a, Rows.of(m, d), x, w, gamma, eps);
                        double[] rExact = FamilyReference.rmsNorm(x, m, d, gamma, eps)[1];
                        double[][] refSaved = FamilyReference.rmsBackward(w, x, m, d, gamma, FamilyData.toDouble(k[1]));
                        double[][] refExact = FamilyReference.rmsBackward(w, x, m, d, gamma, rExact);
                        double[] xd = FamilyData.toDouble(x), gd = FamilyData.toDouble(gamma);
                        for (int r = 0; r < m; r++) {
                            double rk = rExact[r], swg = 0;
                            for (int j = 0; j < d; j++) swg += Math.abs(w[r * d + j] * gamma[j]);
                            double[] s = LayerNormTest.rowSums(w, x, gamma, r, d, 0.0);
                            for (int j = 0; j < d; j++) {
                                int i = r * d + j;
                                double fd = LayerNormTest.fd(xd, i, 1e-3 / rk, () -> loss(xd, gd, w, m, d, eps));
                                double bound = BOUNDS.backwardElement(d, k[1][r], gamma[j] * w[i], x[i], 0, 0, s[2], s[3], k[2][i])
                                        + Math.abs(refSaved[0][i] - refExact[0][i]) + 1e-5 * rk * swg;
                                check("dx vs finite difference", i, k[2][i], fd, bound, "M=" + m + " D=" + d + " seed=" + seed);
                            }
                        }
                        for (int j = 0; j < d; j++) {
                            double fdG = LayerNormTest.fd(gd, j, 1e-3, () -> loss(xd, gd, w, m, d, eps));
                            double abs = 0;
                            for (int r = 0; r < m; r++) abs += Math.abs(w[r * d + j] * x[r * d + j] * k[1][r]);
                            check("dgamma vs finite difference", j, k[3][j], fdG, FamilyBounds.columnSum(abs, fdG)
                                    + Math.abs(refSaved[1][j] - refExact[1][j]) + 1e-9 * abs, "seed=" + seed);
                        }
                    }
                });
    }

    /** L = Σ w * x * (mean(x²) + eps)^-1/2 * gamma in double. */
    static double loss(double[] x, double[] gamma, float[] w, int m, int d, double eps) {
        double l = 0;
        for (int r = 0; r < m; r++) {
            double ms = 0;
            for (int j = 0; j < d; j++) ms += x[r * d + j] * x[r * d + j];
            double rs = 1 / Math.sqrt(ms / d + eps);
            for (int j = 0; j < d; j++) l += w[r * d + j] * x[r * d + j] * rs * gamma[j];
        }
        return l;
    }

    @Test
    void sameBitsForEveryThreadCount() {
        int[][] shapes = {{2100, 5}, {3, 5000}, {37, 129}};
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try (Arena a = Arena.ofShared()) {
            for (int[] md : shapes) {
                int m = md[0], d = md[1];
                float[] x = new Recipe(4 + d, 1, 0.5, 2).values(m, d), dy = new Recipe(8 + m, 0, 0, 1).values(m, d);
                float[] gamma = params(5, d, -2, 2, true);
                float[][] first = null;
                for (int tasks : new int[] {1, 2, 3, 4, 8}) {
                    Parallelism par = Parallelism.of(pool, tasks);
                    Rows rows = Rows.of(m, d);
                    MemorySegment xs = seg(a, x, 1), gs = seg(a, gamma, 0);
                    MemorySegment y = nans(a, x.length, 0), rstd = nans(a, m, 0), dx = nans(a, x.length, 0), dg = nans(a, d, 0);
                    RMSNorm.forward(rows, xs, y, gs, rstd, par);
                    RMSNorm.backward(rows, seg(a, dy, 0), xs, gs, rstd, dx, dg, par);
                    float[][] now = {read(y), read(rstd), read(dx), read(dg)};
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

    @Test
    void badInputIsRejectedBeforeAnyWrite() {
        try (Arena a = Arena.ofConfined()) {
            Rows rows = Rows.of(2, 3);
            MemorySegment x = seg(a, new float[] {1, 2, 3, 4, 5, 6}, 0), y = nans(a, 6, 0), rstd = nans(a, 2, 0);
            assertMessage("x must not be null", () -> RMSNorm.forward(rows, null, y, null, rstd));
            assertMessage("gamma: expected 12 bytes", () -> RMSNorm.forward(rows, x, y, nans(a, 2, 0), rstd));
            assertMessage("eps must be finite and > 0", () -> RMSNorm.forward(rows, x, y, null, rstd, -1e-6));
            assertMessage("eps must be finite and > 0", () -> RMSNorm.forward(rows, x, y, null, rstd, Double.POSITIVE_INFINITY));
            assertMessage("rstd overlaps x", () -> RMSNorm.forward(rows, x, y, null, x.asSlice(0, 8)));
            assertMessage("rstd must not be null", () -> RMSNorm.backward(rows, x, x, null, null, y, null));
            assertMessage("dx overlaps dy without being exactly", () -> RMSNorm.backward(Rows.of(1, 3), x.asSlice(0, 12),
                    nans(a, 3, 0), null, nans(a, 1, 0), x.asSlice(4, 12), null));
            assertMessage("dgamma: the segment is read-only", () -> RMSNorm.backward(rows, x, x, null, rstd, null,
                    nans(a, 3, 0).asReadOnly()));
            for (float v : read(y)) assertTrue(Float.isNaN(v), "y was written by a rejected call");
            for (float v : read(rstd)) assertTrue(Float.isNaN(v), "rstd was written by a rejected call");
            assertThrows(IllegalArgumentException.class, () -> RMSNorm.forward(rows, x, y, null, rstd, (Parallelism) null));
        }
    }
}
