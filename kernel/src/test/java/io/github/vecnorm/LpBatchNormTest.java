package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.pick;

import io.github.vecnorm.Cases.Case;
import io.github.vecnorm.Cases.Data;
import io.github.vecnorm.internal.Kernels;
import io.github.vecnorm.internal.LpBatchNormOps;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;

/**
 * {@link LpBatchNorm} against the double {@link LpReference}: forward and backward on QuickTheories cases
 * (the BatchNorm generators: awkward S, m = 2, C >= 256, big offsets, constant channels, two-valued data
 * that ties the extremes), p = 2 against BatchNorm bit for bit, finite differences of a double loss,
 * thread-count determinism, bad input.
 *
 * <h2>Tolerances</h2>
 * The mean is taken as on BatchNorm's non-column paths: for S >= 16 sums about x[0, c, 0] read in memory
 * order, whose bound dMu is {@link ErrorModel#shiftedSums}'s with the lane chains of
 * {@link ErrorModel#laneChain} (runs under 64 floats keep their lanes over up to 16 samples); Welford below,
 * {@link ErrorModel#stats}'s.
 * p = 2 is BatchNorm itself, so it takes BatchNorm's column path for small S and that path's bounds. The
 * spread:
 * <ul>
 *   <li>p = 1: each term {@code |fl(fl(x - meanF) - meanLo)|} is within {@code 2u|d| + 3u²|mu|} of |x - mean_kernel|
 *   (the mean is carried as two floats, so its rounding enters only at u²), which is within dMu of |d|; the
 *   terms are non-negative, summed in float lanes: {@code uA*(H(k) + L + 8)} relative. So
 *   {@code dSpread = dMu + (2u + uA*(H(k) + L + 8))*spread + 3u²|mu|}.</li>
 *   <li>p = inf: {@code max(max x - mean, mean - min x)} in double from exact float extremes: dMu.</li>
 * </ul>
 * invSpread = 1/(spread + eps): relative {@code rI = dSpread/(spread + eps)} (+ rI²), then one float rounding;
 * y has BatchNorm's structure, so {@link ErrorModel#y} with that rI. The backward sums are BatchNorm's
 * ({@link ErrorModel#sums}); dx of p = 1 and inf is {@code fma(k, dy, fl(r + q*e))} with e in {-1, 0, 1}, and
 * {@link #stepDx} adds up the error of each coefficient (derived there).
 */
class LpBatchNormTest {

    static final ErrorModel MODEL = ErrorModel.active();
    static final double U = ErrorModel.U;
    static final double REF = ErrorModel.REF;
    static final double INF = Double.POSITIVE_INFINITY;

    @Test
    void forwardAndBackwardMatchReference() {
        Map<String, Integer> seen = new TreeMap<>();
        for (String key : List.of("p=1", "p=2", "p=inf", "tiedExtremes", "constantChannel", "bigOffset", "m==2",
                "inPlaceY", "inPlaceDx", "S%8!=0", "noDx", "memoryOrderStats", "shortRuns", "channelByChannel",
                "tiedExtremesMemoryOrder")) {
            seen.put(key, 0);
        }
        qt().withExamples(450).withShrinkCycles(40)
                .forAll(Cases.cases(2), pick(List.of(1.0, 2.0, INF)))
                .checkAssert((k, p) -> check(k, p, seen));
        System.out.println("LpBatchNorm cases seen: " + seen);
        seen.forEach((key, count) -> assertTrue(count > 0, "no case with " + key + " was generated: " + seen));
    }

    static void check(Case k, double p, Map<String, Integer> seen) {
        Data d = Cases.data(k);
        int n = k.n(), cs = k.c(), s = k.s(), m = k.m();
        Cases.Recipe r = k.recipe();
        double eps = r.eps();
        boolean inPlaceY = (r.seed() & 3) == 0, inPlaceDx = ((r.seed() >> 2) & 3) == 0;
        double[] x = LpReference.widen(d.x), gamma = LpReference.widen(d.gamma), beta = LpReference.widen(d.beta);
        double[] dy = LpReference.widen(d.dy);
        LpReference.Stats st = LpReference.stats(p, n, cs, s, x, eps);
        double[] var = p == 2 ? st.spread() : LpReference.stats(2, n, cs, s, x, eps).spread();
        double[] yRef = LpReference.normalize(n, cs, s, x, st.mean(), st.inv(), gamma, beta);
        seen.merge(p == 1 ? "p=1" : p == 2 ? "p=2" : "p=inf", 1, Integer::sum);
        if (m == 2) seen.merge("m==2", 1, Integer::sum);
        if (s % 8 != 0) seen.merge("S%8!=0", 1, Integer::sum);
        if (r.offsetKind() >= 2) seen.merge("bigOffset", 1, Integer::sum);
        if (r.constKind() != 0) seen.merge("constantChannel", 1, Integer::sum);
        if (p != 2) {
            seen.merge(s >= 64 ? "memoryOrderStats" : LpBatchNormOps.statsInMemoryOrder(s) ? "shortRuns"
                    : "channelByChannel", 1, Integer::sum);
        }
        // the longest lane chain of a channel's sums: memory order (short runs keep lanes over samples) or Welford's
        long chain = LpBatchNormOps.statsInMemoryOrder(s) ? MODEL.laneChain(n, s) : MODEL.chain(m);

        try (Arena arena = Arena.ofConfined()) {
            int mis = r.misalign();
            MemorySegment xs = TestData.copyOf(arena, d.x, mis);
            MemorySegment ys = inPlaceY ? TestData.copyOf(arena, d.x, mis) : TestData.filled(arena, x.length, Float.NaN, (mis + 3) % 8);
            MemorySegment gs = TestData.copyOf(arena, d.gamma, mis);
            MemorySegment bs = TestData.copyOf(arena, d.beta, mis);
            MemorySegment sm = TestData.filled(arena, cs, Float.NaN, mis);
            MemorySegment si = TestData.filled(arena, cs, Float.NaN, mis);
            LpBatchNorm.forward(k.shape(), p, inPlaceY ? ys : xs, ys, gs, bs, sm, si, eps);
            if (inPlaceY) seen.merge("inPlaceY", 1, Integer::sum);

            float[] y = TestData.read(ys), saveMean = TestData.read(sm), saveInv = TestData.read(si);
            double[] relInv = new double[cs];
            ErrorModel.StatBounds[] bounds = new ErrorModel.StatBounds[cs];
            for (int c = 0; c < cs; c++) {
                String in = "p=" + p + " channel " + c + " of " + k;
                // p = 2 is BatchNorm (its bounds); p = 1, inf: sums about x[0, c, 0] in memory order for long runs, Welford otherwise
                ErrorModel.StatBounds b = p == 2
                        ? MODEL.stats(n, cs, s, st.range()[c], var[c], eps, st.mean()[c], x[(c * s)])
                        : LpBatchNormOps.statsInMemoryOrder(s)
                        ? MODEL.shiftedSums(m, chain, st.range()[c], var[c], eps, st.mean()[c], x[(c * s)])
                        : MODEL.stats(m, st.range()[c], var[c], eps);
                double mu = st.mean()[c], inv = st.inv()[c];
                close("saveMean", saveMean[c], mu, MODEL.saveMean(b, mu), in);
                double rI;
                if (p == 2) {
                    rI = b.relInvstd();
                } else {
                    double spread = st.spread()[c];
                    double dSpread = p == 1
                            ? b.mean() + (2 * U + MODEL.uAcc * (ErrorModel.h(chain) + MODEL.lanes + 8)) * spread
                                    + 3 * U * U * Math.abs(mu) + REF * spread
                            : b.mean() + REF * (Math.abs(mu) + st.range()[c]);
                    rI = dSpread / (spread + eps);
                    rI += rI * rI;
                }
                relInv[c] = rI;
                bounds[c] = new ErrorModel.StatBounds(b.mean(), b.var(), rI);
                close("saveInvSpread", saveInv[c], inv, inv * (rI + U * (1 + rI) + REF), in);
            }
            for (int j = 0; j < y.length; j++) {
                int c = (j / s) % cs;
                double mu = st.mean()[c];
                double tol = MODEL.y(bounds[c], x[j] - mu, mu, gamma == null ? 1 : gamma[c], st.inv()[c],
                        beta == null ? 0 : beta[c], yRef[j]);
                close("y", y[j], yRef[j], tol, "p=" + p + " index " + j + " x=" + d.x[j] + " of " + k);
            }

            // backward from the kernel's saved statistics (its inputs)
            int mask = r.mask();
            boolean wantDx = (mask & 1) != 0;
            if (!wantDx) seen.merge("noDx", 1, Integer::sum);
            MemorySegment dys = TestData.copyOf(arena, d.dy, mis);
            MemorySegment dxs = !wantDx ? null : inPlaceDx ? dys : TestData.filled(arena, x.length, Float.NaN, (mis + 1) % 8);
            if (wantDx && inPlaceDx) seen.merge("inPlaceDx", 1, Integer::sum);
            MemorySegment dgs = (mask & 2) != 0 ? TestData.filled(arena, cs, Float.NaN, mis) : null;
            MemorySegment dbs = (mask & 4) != 0 ? TestData.filled(arena, cs, Float.NaN, mis) : null;
            LpBatchNorm.backward(k.shape(), p, dys, xs, gs, sm, si, dxs, dgs, dbs);

            double[] meanF = LpReference.widen(saveMean), invF = LpReference.widen(saveInv);
            LpReference.Grads g = LpReference.backward(p, n, cs, s, dy, x, gamma, meanF, invF);
            float[] dx = TestData.read(dxs), dgamma = TestData.read(dgs), dbeta = TestData.read(dbs);
            ErrorModel.SumBounds[] sb = new ErrorModel.SumBounds[cs];
            double[] sumDy = new double[cs], sumDyXc = new double[cs], sumE = new double[cs];
            int[] ties = new int[cs];
            for (int j = 0; j < x.length; j++) {
                int c = (j / s) % cs;
                sumDy[c] += dy[j];
                sumDyXc[c] += dy[j] * (x[j] - meanF[c]);
                sumE[c] += g.step()[j];
                if (g.step()[j] != 0) ties[c]++;
            }
            for (int c = 0; c < cs; c++) {
                double absDy = 0, absDyXc = 0;
                for (int b = 0; b < n; b++) {
                    for (int i = 0; i < s; i++) {
                        int j = (b * cs + c) * s + i;
                        absDy += Math.abs(dy[j]);
                        absDyXc += Math.abs(dy[j] * (x[j] - meanF[c]));
                    }
                }
                sb[c] = p == 2 ? MODEL.sums(n, cs, s, absDy, absDyXc) : MODEL.sumsOfChain(chain, absDy, absDyXc);
                if (p == INF && ties[c] > 1 && st.range()[c] > 0) {
                    seen.merge(LpBatchNormOps.statsInMemoryOrder(s) ? "tiedExtremesMemoryOrder" : "tiedExtremes", 1,
                            Integer::sum);
                }
                String in = "p=" + p + " channel " + c + " of " + k;
                if (dgamma != null) close("dgamma", dgamma[c], g.dgamma()[c], ErrorModel.dgamma(sb[c], invF[c], g.dgamma()[c]), in);
                if (dbeta != null) close("dbeta", dbeta[c], g.dbeta()[c], ErrorModel.dbeta(sb[c], g.dbeta()[c]), in);
            }
            if (dx != null) {
                for (int j = 0; j < x.length; j++) {
                    int c = (j / s) % cs;
                    double gm = gamma == null ? 1 : gamma[c];
                    double tol = p == 2
                            ? ErrorModel.dx(sb[c], m, gm, invF[c], dy[j], x[j] - meanF[c], sumDy[c], sumDyXc[c], g.dx()[j])
                            : stepDx(sb[c], invF[c], g, c, p == 1 ? m : Math.max(1, ties[c]), sumE[c], m, dy[j],
                                    g.step()[j], g.dx()[j]);
                    close("dx", dx[j], g.dx()[j], tol, "p=" + p + " index " + j + " x=" + d.x[j] + " dy=" + d.dy[j] + " of " + k);
                }
            }
        }
    }

    /**
     * Bound on dx = fma(k, dy, fl(r + q*e)) of p = 1 and inf, against the reference's k*dy + r + q*e with the
     * same saved statistics. With dA, dB the bounds on the sums Σdy and Σdy*(x - meanF), G = inv*Σdy*(x - meanF)
     * is off by inv*dB; k = fl(gamma*inv) by u|k|; q = fl(-k*G/den) by |k|*inv*dB/den + u|q|;
     * r = fl(-k*A/m + k*G*Σe/(m*den)) by |k|*(dA/m + inv*dB*|Σe|/(m*den)) + 4u*(|k*A|/m + |k*G*Σe|/(m*den)) (the
     * roundings of its double steps are REF); then the add r + q*e (q*e is exact) and the fma round once each.
     * For a channel whose counted ties are all its elements and whose values are equal, q*e cancels exactly.
     */
    static double stepDx(ErrorModel.SumBounds sb, double inv, LpReference.Grads g, int c, double den, double sumE,
                         int m, double dy, int e, double expected) {
        double k = Math.abs(g.k()[c]), q = Math.abs(g.q()[c]), r = Math.abs(g.r()[c]);
        double dG = inv * sb.sumDyXc();
        double kA = k * Math.abs(g.dbeta()[c]) / m, kGE = k * Math.abs(g.dgamma()[c] * sumE) / (m * den);
        double dq = k * dG / den + (U + REF) * q;
        double dr = k * (sb.sumDy() / m + dG * Math.abs(sumE) / (m * den)) + (4 * U + REF) * (kA + kGE);
        return U * k * Math.abs(dy) + dr + Math.abs(e) * dq + U * (r + q * Math.abs(e)) + U * Math.abs(expected)
                + REF * (k * Math.abs(dy) + r + q);
    }

    private static void close(String what, float actual, double expected, double tol, String where) {
        double err = Math.abs(actual - expected);
        if (!(err <= tol) && !(Double.isNaN(expected) && Float.isNaN(actual))) {
            fail(what + ": got " + actual + ", expected " + expected + " (error " + err + " > tolerance " + tol
                    + ") at " + where);
        }
    }

    /**
     * Runs of one vector and one float, many of them, with dy constant per channel: the vector reductions
     * must flush a run's last vector into their blocks like any other (a float lane that took one value
     * per run, never flushed, went past the bound here: the error of adding a constant does not cancel).
     */
    @Test
    void runsOfOneVectorAndOneFloatStayWithinTheBounds() {
        int lanes = Kernels.primitives().lanes();
        Map<String, Integer> seen = new TreeMap<>();
        for (long seed = 1; seed <= 3; seed++) {
            Cases.Recipe r = new Cases.Recipe(0, 1, 0, 0, 3, 1e-5, 2, 0.1, 0, 0, 7, seed);
            for (double p : List.of(1.0, 2.0, INF)) {
                check(new Case(new long[] {1963, 8, lanes + 1}, r), p, seen);
            }
        }
    }

    /**
     * p = inf with runs long enough for memory order: each channel's maximum and minimum tied across some
     * runs but not others, with records set early and broken late (the kernel counts a tie only in a run
     * that reaches the extreme so far, restarting at a new one). dx against the reference from the
     * kernel's saved statistics: a wrong tie count moves dx at the ties by ~|q|/ties, far above 1e-5.
     */
    @Test
    void extremesTiedInSomeRunsOnly() {
        int n = 4, cs = 3, s = 64;
        assertTrue(LpBatchNormOps.statsInMemoryOrder(s));
        SplittableRandom rnd = new SplittableRandom(11);
        float[] xf = new float[n * cs * s], dyf = new float[xf.length];
        for (int i = 0; i < xf.length; i++) {
            xf[i] = (float) Math.max(-1, Math.min(1, 0.3 * rnd.nextGaussian()));
            dyf[i] = (float) rnd.nextGaussian();
        }
        // (sample, channel, position) -> value; the extreme farther from the mean is the one dx uses
        // channel 0: maximum 2 twice in run 0 and once in run 2, run 1 below it (1.5); minimum -1.8 (used: no)
        put(xf, cs, s, 0, 0, 5, 2);
        put(xf, cs, s, 0, 0, 9, 2);
        put(xf, cs, s, 2, 0, 3, 2);
        put(xf, cs, s, 1, 0, 7, 1.5f);
        put(xf, cs, s, 1, 0, 2, -1.5f);
        put(xf, cs, s, 3, 0, 1, -1.8f);
        // channel 1: maximum 1.5 in run 1, beaten by 3 twice in run 3 (the count restarts); minimum -2.5
        put(xf, cs, s, 1, 1, 0, 1.5f);
        put(xf, cs, s, 3, 1, 10, 3);
        put(xf, cs, s, 3, 1, 11, 3);
        put(xf, cs, s, 0, 1, 20, -2.5f);
        // channel 2: minimum -3 in runs 0 and 2 only; maximum 1.5
        put(xf, cs, s, 0, 2, 4, -3);
        put(xf, cs, s, 2, 2, 60, -3);
        put(xf, cs, s, 1, 2, 30, 1.5f);
        Shape shape = Shape.of(n, cs, s);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment xs = TestData.copyOf(arena, xf), dys = TestData.copyOf(arena, dyf);
            MemorySegment ys = arena.allocate(xs.byteSize()), dxs = arena.allocate(xs.byteSize());
            MemorySegment sm = arena.allocate(4L * cs), si = arena.allocate(4L * cs);
            LpBatchNorm.forward(shape, INF, xs, ys, null, null, sm, si, 1e-5);
            LpBatchNorm.backward(shape, INF, dys, xs, null, sm, si, dxs, null, null);
            double[] x = LpReference.widen(xf), dy = LpReference.widen(dyf);
            double[] meanF = LpReference.widen(TestData.read(sm)), invF = LpReference.widen(TestData.read(si));
            LpReference.Stats st = LpReference.stats(INF, n, cs, s, x, 1e-5);
            float[] inv = TestData.read(si);
            for (int c = 0; c < cs; c++) {
                close("saveInvSpread", inv[c], st.inv()[c], 1e-6 * st.inv()[c], "channel " + c);
            }
            LpReference.Grads g = LpReference.backward(INF, n, cs, s, dy, x, null, meanF, invF);
            float[] dx = TestData.read(dxs);
            double scale = 0;
            for (double v : g.dx()) scale = Math.max(scale, Math.abs(v));
            for (int j = 0; j < dx.length; j++) {
                close("dx", dx[j], g.dx()[j], 1e-5 * scale, "index " + j + " x=" + xf[j]);
            }
        }
    }

    private static void put(float[] x, int cs, int s, int sample, int channel, int at, float v) {
        x[(sample * cs + channel) * s + at] = v;
    }

    @Test
    void pTwoIsBatchNormBitForBit() {
        qt().withExamples(120).withShrinkCycles(20).forAll(Cases.cases(2)).checkAssert(k -> {
            Data d = Cases.data(k);
            int cs = k.c();
            double eps = k.recipe().eps();
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment xs = TestData.copyOf(arena, d.x), gs = TestData.copyOf(arena, d.gamma);
                MemorySegment bs = TestData.copyOf(arena, d.beta), dys = TestData.copyOf(arena, d.dy);
                MemorySegment y1 = arena.allocate(xs.byteSize()), y2 = arena.allocate(xs.byteSize());
                MemorySegment m1 = arena.allocate(4L * cs), m2 = arena.allocate(4L * cs);
                MemorySegment i1 = arena.allocate(4L * cs), i2 = arena.allocate(4L * cs);
                LpBatchNorm.forward(k.shape(), 2, xs, y1, gs, bs, m1, i1, eps);
                BatchNorm.forwardTraining(k.shape(), xs, y2, gs, bs, m2, i2, null, eps);
                assertEquals(-1, y1.mismatch(y2), "y differs from BatchNorm for " + k);
                assertEquals(-1, m1.mismatch(m2), "mean differs from BatchNorm for " + k);
                assertEquals(-1, i1.mismatch(i2), "invSpread differs from BatchNorm's invstd for " + k);
                MemorySegment dx1 = arena.allocate(xs.byteSize()), dx2 = arena.allocate(xs.byteSize());
                MemorySegment g1 = arena.allocate(4L * cs), g2 = arena.allocate(4L * cs);
                MemorySegment b1 = arena.allocate(4L * cs), b2 = arena.allocate(4L * cs);
                LpBatchNorm.backward(k.shape(), 2, dys, xs, gs, m1, i1, dx1, g1, b1);
                BatchNorm.backward(k.shape(), dys, xs, gs, m2, i2, dx2, g2, b2);
                assertEquals(-1, dx1.mismatch(dx2), "dx differs from BatchNorm for " + k);
                assertEquals(-1, g1.mismatch(g2), "dgamma differs from BatchNorm for " + k);
                assertEquals(-1, b1.mismatch(b2), "dbeta differs from BatchNorm for " + k);
            }
        });
    }

    /**
     * The kernel's backward against central differences of the double reference loss Σ w*y (w = dy), on
     * small shapes with continuous data (no ties, no zero deviations: every p is differentiable there).
     * Tolerance: the kernel's own bound against the formula with its saved statistics (stepDx / ErrorModel.dx)
     * widened by what the float rounding of those statistics moves the exact gradient: mean and invSpread
     * are within u relatively (plus the mean's dMu, negligible at these m), which moves each term of
     * dx = k*(dy - A/m - G*D) by at most ~4u plus |mu|*inv*u through xhat; and the finite difference's own error,
     * estimated by Richardson (|fd(h) - fd(h/2)|, times 4/3 for the remaining part and 2 for safety) plus its
     * cancellation 4*2^-53*Σ|w*y|/h.
     */
    @Test
    void backwardMatchesFiniteDifferences() {
        long[][] shapes = {{2, 3, 5}, {3, 2, 4}, {5, 1}, {2, 2, 3, 3}, {1, 2, 17}, {4, 3, 1}};
        SplittableRandom rnd = new SplittableRandom(20181203);
        for (double p : new double[] {1, 2, INF}) {
            for (long[] dims : shapes) {
                Shape shape = Shape.of(dims);
                int n = (int) shape.n(), cs = (int) shape.c(), s = (int) shape.s(), m = n * s;
                float[] xf = new float[n * cs * s], wf = new float[xf.length], gf = new float[cs], bf = new float[cs];
                for (int i = 0; i < xf.length; i++) {
                    xf[i] = (float) (0.5 + 2 * rnd.nextGaussian());
                    wf[i] = (float) rnd.nextGaussian();
                }
                for (int c = 0; c < cs; c++) {
                    gf[c] = (float) rnd.nextDouble(0.5, 2);
                    bf[c] = (float) rnd.nextDouble(-1, 1);
                }
                double eps = 1e-3;
                double[] x = LpReference.widen(xf), w = LpReference.widen(wf), gamma = LpReference.widen(gf),
                        beta = LpReference.widen(bf);
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment xs = TestData.copyOf(arena, xf), ys = arena.allocate(xs.byteSize());
                    MemorySegment gs = TestData.copyOf(arena, gf), bs = TestData.copyOf(arena, bf);
                    MemorySegment sm = arena.allocate(4L * cs), si = arena.allocate(4L * cs);
                    MemorySegment dxs = arena.allocate(xs.byteSize());
                    MemorySegment dgs = arena.allocate(4L * cs), dbs = arena.allocate(4L * cs);
                    LpBatchNorm.forward(shape, p, xs, ys, gs, bs, sm, si, eps);
                    LpBatchNorm.backward(shape, p, TestData.copyOf(arena, wf), xs, gs, sm, si, dxs, dgs, dbs);
                    float[] dx = TestData.read(dxs), dgamma = TestData.read(dgs), dbeta = TestData.read(dbs);
                    LpReference.Grads ref = LpReference.backward(p, n, cs, s, w, x, gamma,
                            LpReference.widen(TestData.read(sm)), LpReference.widen(TestData.read(si)));
                    LpReference.Stats st = LpReference.stats(p, n, cs, s, x, eps);
                    double absLoss = 0;
                    double[] y = LpReference.forward(p, n, cs, s, x, gamma, beta, eps);
                    for (int i = 0; i < y.length; i++) absLoss += Math.abs(w[i] * y[i]);
                    for (int j = 0; j < x.length; j++) {
                        int c = (j / s) % cs;
                        double h = 1e-4 * (Math.abs(x[j]) + 1);
                        double fd = fd(j, h, p, n, cs, s, x, gamma, beta, eps, w);
                        double fd2 = fd(j, h / 2, p, n, cs, s, x, gamma, beta, eps, w);
                        double fdErr = 2 * (4.0 / 3) * Math.abs(fd - fd2) + 4 * 0x1p-53 * absLoss / (h / 2);
                        double k = Math.abs(ref.k()[c]);
                        double terms = k * (Math.abs(w[j]) + Math.abs(ref.dbeta()[c]) / m + Math.abs(ref.dgamma()[c]) * 2);
                        double statErr = (4 * U + Math.abs(st.mean()[c]) * st.inv()[c] * U) * terms;
                        double kernelErr = 16 * m * U * terms; // the sums' and coefficients' float roundings at m <= 34
                        close("dx vs finite difference", dx[j], fd2, fdErr + statErr + kernelErr,
                                "p=" + p + " index " + j + " of " + java.util.Arrays.toString(dims));
                    }
                    // dgamma and dbeta: derivatives of the loss in gamma and beta, which enter linearly
                    for (int c = 0; c < cs; c++) {
                        double dg = 0, db = 0;
                        for (int b = 0; b < n; b++) {
                            for (int i = 0; i < s; i++) {
                                int j = (b * cs + c) * s + i;
                                dg += w[j] * (x[j] - st.mean()[c]) * st.inv()[c];
                                db += w[j];
                            }
                        }
                        double scale = 0;
                        for (int b = 0; b < n; b++) for (int i = 0; i < s; i++) scale += Math.abs(w[(b * cs + c) * s + i]);
                        double tol = 16 * m * U * scale * (1 + Math.abs(st.mean()[c]) * st.inv()[c] + st.range()[c] * st.inv()[c]);
                        close("dgamma vs derivative", dgamma[c], dg, tol, "p=" + p + " channel " + c);
                        close("dbeta vs derivative", dbeta[c], db, tol, "p=" + p + " channel " + c);
                    }
                }
            }
        }
    }

    private static double fd(int j, double h, double p, int n, int cs, int s, double[] x, double[] gamma, double[] beta,
                             double eps, double[] w) {
        double keep = x[j];
        x[j] = keep + h;
        double up = LpReference.loss(p, n, cs, s, x, gamma, beta, eps, w);
        x[j] = keep - h;
        double down = LpReference.loss(p, n, cs, s, x, gamma, beta, eps, w);
        x[j] = keep;
        return (up - down) / (2 * h);
    }

    /** p = inf with ties: the subgradient is shared equally by the tied extremes, as documented. */
    @Test
    void infinityTiesShareTheSubgradient() {
        // one channel, m = 6: max 3 twice (d = +2), min -1 once (d = -2): all three tie at |d| = 2
        float[] xf = {3, -1, 3, 1, 0, 0};
        float[] dyf = {1, 0, 0, 0, 0, 0};
        try (Arena arena = Arena.ofConfined()) {
            Shape shape = Shape.of(6, 1);
            MemorySegment xs = TestData.copyOf(arena, xf), ys = arena.allocate(24);
            MemorySegment sm = arena.allocate(4), si = arena.allocate(4), dxs = arena.allocate(24);
            LpBatchNorm.forward(shape, INF, xs, ys, null, null, sm, si, 1e-5);
            assertEquals(1f, TestData.read(sm)[0]);
            assertEquals((float) (1 / (2 + 1e-5)), TestData.read(si)[0]);
            LpBatchNorm.backward(shape, INF, TestData.copyOf(arena, dyf), xs, null, sm, si, dxs, null, null);
            // by hand: k = inv, A = 1, G = xhat_0 = 2*inv, T = 3 (two maxima +1, one minimum -1), Σe = 1,
            // D_i = (e_i - 1/6)/3, dx_i = k*(dy_i - 1/6 - G*D_i)
            double inv = TestData.read(si)[0], g = 2 * inv;
            int[] e = {1, -1, 1, 0, 0, 0};
            float[] dx = TestData.read(dxs);
            for (int i = 0; i < 6; i++) {
                double expected = inv * (dyf[i] - 1.0 / 6 - g * (e[i] - 1.0 / 6) / 3);
                assertEquals(expected, dx[i], 1e-6 * inv, "dx[" + i + "]");
            }
            double sum = 0;
            for (float v : dx) sum += v;
            assertEquals(0, sum, 1e-6 * inv, "Σ dx");
        }
    }

    @Test
    void resultsDoNotDependOnThreadCount() throws Exception {
        long[][] shapes = {{4, 33, 70}, {5, 40, 3}, {3, 7, 1021}, {64, 9}};
        ExecutorService pool = Executors.newFixedThreadPool(3);
        try (Arena arena = Arena.ofShared()) {
            SplittableRandom rnd = new SplittableRandom(7);
            for (double p : new double[] {1, 2, INF}) {
                for (long[] dims : shapes) {
                    Shape shape = Shape.of(dims);
                    int cs = (int) shape.c();
                    float[] xf = new float[(int) shape.numel()], dyf = new float[xf.length], gf = new float[cs];
                    for (int i = 0; i < xf.length; i++) {
                        xf[i] = (float) (10 + rnd.nextGaussian());
                        dyf[i] = (float) rnd.nextGaussian();
                    }
                    for (int c = 0; c < cs; c++) gf[c] = (float) rnd.nextDouble(0.5, 2);
                    MemorySegment xs = TestData.copyOf(arena, xf), dys = TestData.copyOf(arena, dyf);
                    MemorySegment gs = TestData.copyOf(arena, gf);
                    byte[][] serial = null;
                    for (int tasks = 1; tasks <= 4; tasks++) {
                        Parallelism par = Parallelism.of(pool, tasks);
                        MemorySegment ys = arena.allocate(xs.byteSize()), sm = arena.allocate(4L * cs);
                        MemorySegment si = arena.allocate(4L * cs), dxs = arena.allocate(xs.byteSize());
                        MemorySegment dgs = arena.allocate(4L * cs), dbs = arena.allocate(4L * cs);
                        LpBatchNorm.forward(shape, p, xs, ys, gs, gs, sm, si, 1e-5, par);
                        LpBatchNorm.backward(shape, p, dys, xs, gs, sm, si, dxs, dgs, dbs, par);
                        byte[][] out = {bytes(ys), bytes(sm), bytes(si), bytes(dxs), bytes(dgs), bytes(dbs)};
                        if (serial == null) {
                            serial = out;
                        } else {
                            for (int o = 0; o < out.length; o++) {
                                assertArrayEquals(serial[o], out[o], "output " + o + " with " + tasks + " tasks, p=" + p
                                        + " " + shape);
                            }
                        }
                    }
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private static byte[] bytes(MemorySegment s) {
        return s.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
    }

    @Test
    void badInputIsRejectedBeforeAnyWrite() {
        try (Arena arena = Arena.ofConfined()) {
            Shape shape = Shape.of(2, 3, 4);
            MemorySegment x = TestData.filled(arena, 24, 1f, 0), y = TestData.filled(arena, 24, -7f, 0);
            MemorySegment sm = TestData.filled(arena, 3, -7f, 0), si = TestData.filled(arena, 3, -7f, 0);
            MemorySegment g = TestData.filled(arena, 3, 1f, 0);
            for (double p : new double[] {0, 3, 1.5, Double.NaN, Double.NEGATIVE_INFINITY, -1}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> LpBatchNorm.forward(shape, p, x, y, null, null, sm, si, 1e-5));
                assertTrue(e.getMessage().contains("p must be 1, 2 or Infinity"), e.getMessage());
            }
            assertThrows(IllegalArgumentException.class, () -> LpBatchNorm.forward(shape, 1, x, y, null, null, sm, si, 0));
            assertThrows(IllegalArgumentException.class,
                    () -> LpBatchNorm.forward(shape, 1, x, y, null, null, sm, si, Double.POSITIVE_INFINITY));
            assertThrows(IllegalArgumentException.class, () -> LpBatchNorm.forward(null, 1, x, y, null, null, sm, si, 1e-5));
            assertThrows(IllegalArgumentException.class, () -> LpBatchNorm.forward(shape, 1, null, y, null, null, sm, si, 1e-5));
            IllegalArgumentException one = assertThrows(IllegalArgumentException.class, () -> LpBatchNorm.forward(
                    Shape.of(1, 24), INF, x, y, null, null, TestData.filled(arena, 24, 0, 0), TestData.filled(arena, 24, 0, 0), 1e-5));
            assertTrue(one.getMessage().contains("more than 1 value per channel"), one.getMessage());
            IllegalArgumentException size = assertThrows(IllegalArgumentException.class,
                    () -> LpBatchNorm.forward(shape, 1, x, y, TestData.filled(arena, 4, 1f, 0), null, sm, si, 1e-5));
            assertTrue(size.getMessage().startsWith("gamma: expected 12 bytes"), size.getMessage());
            IllegalArgumentException overlap = assertThrows(IllegalArgumentException.class,
                    () -> LpBatchNorm.forward(shape, INF, x, y, null, null, y.asSlice(0, 12), si, 1e-5));
            assertTrue(overlap.getMessage().contains("overlaps"), overlap.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> LpBatchNorm.forward(shape, 1, x, y.asReadOnly(), null, null, sm, si, 1e-5));
            assertThrows(IllegalArgumentException.class,
                    () -> LpBatchNorm.backward(shape, 3, x, x, null, sm, si, y, null, null));
            assertThrows(IllegalArgumentException.class,
                    () -> LpBatchNorm.backward(shape, 1, x, x, null, sm, si, g, null, null));
            assertThrows(IllegalArgumentException.class, // dx overlapping x (not the allowed dy alias)
                    () -> LpBatchNorm.backward(shape, 1, y, x, null, sm, si, x, null, null));
            assertEquals(-7f, TestData.read(y)[0]);
            assertEquals(-7f, TestData.read(sm)[0]);
            assertEquals(-7f, TestData.read(si)[2]);
        }
        Arena closed = Arena.ofConfined();
        MemorySegment dead = closed.allocate(24L * 4);
        closed.close();
        try (Arena arena = Arena.ofConfined()) {
            assertThrows(IllegalStateException.class, () -> LpBatchNorm.forward(Shape.of(2, 3, 4), 1, dead,
                    arena.allocate(96), null, null, arena.allocate(12), arena.allocate(12), 1e-5));
        }
    }
}
