package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.longRange;
import static org.quicktheories.generators.Generate.pick;
import static org.quicktheories.generators.Generate.range;

import io.github.vecnorm.Cases.Case;
import io.github.vecnorm.Cases.Data;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.quicktheories.core.Gen;

/**
 * Properties that need no reference output: the algebra the backward must satisfy, invariance of the
 * forward under positive affine maps of x, the gradient against finite differences of the double
 * loss, and in-place calls.
 */
class BatchNormAlgebraPropertiesTest {

    static final ErrorModel MODEL = ErrorModel.active();

    /**
     * Per channel, dx = gamma*i*(dy - A/m - (x - mu_f)*i^2*B/m) with the saved mean mu_f and invstd i,
     * A = Σdy, B = Σdy*(x - mu_f). Summing over the channel (Σ(x - mu_f) = m*(mu - mu_f), with mu, var the
     * exact mean and biased variance of x and iota = 1/sqrt(var + eps)):
     * <pre>
     *   Σ dx                  = -gamma * i^3 * B * (mu - mu_f)
     *   Σ dx * (x - mu)*iota  =  gamma * i * iota * (B * (1 - i^2 * var) + (mu_f - mu) * A)
     * </pre>
     * With exact statistics the first is 0 and the second gamma*iota*dgamma*eps/(var + eps): Σ dx*xhat = 0
     * holds only as eps -> 0. The kernel's dx_j is within ErrorModel.dx of the exact formula, so the
     * sums are within Σ tol_j and Σ tol_j*|x_j - mu|*iota (the double sums here are compensated).
     */
    @Test
    void gradientSumsVanish() {
        Tally t = new Tally("gradientSums", Tally.keys(Tally.SHAPE_KEYS, Tally.DATA_KEYS));
        qt().withExamples(600).withShrinkCycles(60).forAll(Cases.cases(2)).checkAssert(k -> {
            Data d = Cases.data(k);
            int n = k.n(), cs = k.c(), s = k.s(), m = k.m();
            double eps = k.recipe().eps();
            t.shape(k);
            double[] x = Reference.widen(d.x);
            Reference.Stats st = Reference.stats(n, cs, s, x, eps);
            t.data(k, st, eps);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment xs = TestData.copyOf(arena, d.x), dys = TestData.copyOf(arena, d.dy);
                MemorySegment gs = TestData.copyOf(arena, d.gamma);
                MemorySegment sm = TestData.allocate(arena, cs, 0), si = TestData.allocate(arena, cs, 0);
                BatchNorm.forwardTraining(k.shape(), xs, TestData.allocate(arena, x.length, 0), gs, null, sm, si, null, eps);
                MemorySegment dxs = TestData.allocate(arena, x.length, 0);
                BatchNorm.backward(k.shape(), dys, xs, gs, sm, si, dxs, null, null);
                float[] dx = TestData.read(dxs), meanF = TestData.read(sm), invF = TestData.read(si);
                for (int c = 0; c < cs; c++) {
                    double g = d.gamma == null ? 1 : d.gamma[c], mf = meanF[c], i = invF[c];
                    double mu = st.mean()[c], var = st.var()[c], iota = st.invstd()[c];
                    Reference.Sum a = new Reference.Sum(), b = new Reference.Sum(), absDy = new Reference.Sum(),
                            absDyXc = new Reference.Sum(), sumDx = new Reference.Sum(), sumDxXhat = new Reference.Sum();
                    for (int bb = 0; bb < n; bb++) {
                        for (int e = 0; e < s; e++) {
                            int j = Reference.at(bb, c, e, cs, s);
                            double dyj = d.dy[j], xc = x[j] - mf;
                            a.add(dyj);
                            b.add(dyj * xc);
                            absDy.add(Math.abs(dyj));
                            absDyXc.add(Math.abs(dyj * xc));
                            sumDx.add(dx[j]);
                            sumDxXhat.add(dx[j] * (x[j] - mu) * iota);
                        }
                    }
                    double aa = a.value(), bv = b.value();
                    ErrorModel.SumBounds sb = MODEL.sums(n, cs, s, absDy.value(), absDyXc.value());
                    Reference.Sum tol = new Reference.Sum(), tolXhat = new Reference.Sum();
                    for (int bb = 0; bb < n; bb++) {
                        for (int e = 0; e < s; e++) {
                            int j = Reference.at(bb, c, e, cs, s);
                            double xc = x[j] - mf;
                            double exact = g * i * (d.dy[j] - aa / m - xc * i * i * bv / m);
                            double tj = ErrorModel.dx(sb, m, g, i, d.dy[j], xc, aa, bv, exact);
                            tol.add(tj);
                            tolXhat.add(tj * Math.abs(x[j] - mu) * iota);
                        }
                    }
                    double expectSum = -g * i * i * i * bv * (mu - mf);
                    double expectXhat = g * i * iota * (bv * (1 - i * i * var) + (mf - mu) * aa);
                    String in = "channel " + c + " of " + k;
                    t.close("Σdx", c, sumDx.value(), expectSum, tol.value(), in);
                    t.close("Σdx*xhat", c, sumDxXhat.value(), expectXhat, tolXhat.value(), in);
                }
            }
        });
        t.report();
    }

    /**
     * BN(a*x + b) with eps*a^2 equals BN(x) exactly in real arithmetic (the variance scales by a^2), for
     * a > 0. To keep the transformed input exact in float, x_j = z_j * 2^q with integers |z_j| <= 64,
     * b = t * 2^q with |t| <= 2^22 (offsets up to ~1e5 spreads), a = 2^p: a*(x + b) = (z + t)*2^(q+p)
     * needs at most 23 bits. The two outputs then differ by at most the sum of their ErrorModel.y bounds.
     */
    @Test
    void forwardIsInvariantUnderPositiveAffineMaps() {
        Tally t = new Tally("affineInvariance", "examples", "tail16", "m==2", "bigOffset", "constantChannel",
                "scaleDown", "scaleUp");
        Gen<Object[]> gen = Cases.dims(2).flatMap(dims -> range(-20, 10).flatMap(q -> range(-30, 30).flatMap(p ->
                range(0, 5).flatMap(offExp -> pick(List.of(1e-5, 1e-3, 1e-1)).flatMap(eps ->
                        longRange(0, Long.MAX_VALUE / 2).map(seed -> new Object[] {dims, q, p, offExp, eps, seed}))))));
        qt().withExamples(500).withShrinkCycles(60).forAll(gen).checkAssert(o -> {
            long[] dims = (long[]) o[0];
            int q = (Integer) o[1], p = (Integer) o[2], offExp = (Integer) o[3];
            double eps = (Double) o[4];
            Case k = new Case(dims, null);
            int n = k.n(), cs = k.c(), s = k.s(), m = k.m();
            SplittableRandom rnd = new SplittableRandom((Long) o[5]);
            float[] x = new float[n * cs * s], x2 = new float[x.length], gamma = new float[cs], beta = new float[cs];
            boolean big = false, constant = false;
            for (int c = 0; c < cs; c++) {
                long t0 = (long) Math.min(1 << 22, Math.round(Math.pow(10, offExp + rnd.nextDouble()) * (rnd.nextBoolean() ? 1 : -1)));
                if (offExp == 0) t0 = 0;
                boolean cst = rnd.nextInt(6) == 0;
                constant |= cst;
                big |= !cst && Math.abs(t0) >= 1e4;
                long zc = rnd.nextLong(-64, 65);
                for (int b = 0; b < n; b++) {
                    for (int i = 0; i < s; i++) {
                        int j = Reference.at(b, c, i, cs, s);
                        long z = cst ? zc : Math.max(-64, Math.min(64, Math.round(16 * rnd.nextGaussian())));
                        x[j] = (float) Math.scalb((double) z, q);
                        x2[j] = (float) Math.scalb((double) (z + t0), q + p);
                        assert x2[j] == Math.scalb((double) (z + t0), q + p) : "exact";
                    }
                }
                gamma[c] = (float) rnd.nextDouble(-2, 2);
                beta[c] = (float) rnd.nextDouble(-3, 3);
            }
            double eps2 = Math.scalb(eps, 2 * p);
            t.count("examples", true);
            t.count("tail16", s > 16 && s % 16 != 0);
            t.count("m==2", m == 2);
            t.count("bigOffset", big);
            t.count("constantChannel", constant);
            t.count("scaleDown", p < 0);
            t.count("scaleUp", p > 0);
            float[] y1 = trainingY(k.shape(), x, gamma, beta, eps), y2 = trainingY(k.shape(), x2, gamma, beta, eps2);
            Reference.Stats st1 = Reference.stats(n, cs, s, Reference.widen(x), eps);
            Reference.Stats st2 = Reference.stats(n, cs, s, Reference.widen(x2), eps2);
            for (int c = 0; c < cs; c++) {
                int j0 = Reference.at(0, c, 0, cs, s);
                ErrorModel.StatBounds b1 = MODEL.stats(n, cs, s, st1.range()[c], st1.var()[c], eps, st1.mean()[c], x[j0]);
                ErrorModel.StatBounds b2 = MODEL.stats(n, cs, s, st2.range()[c], st2.var()[c], eps2, st2.mean()[c], x2[j0]);
                for (int b = 0; b < n; b++) {
                    for (int i = 0; i < s; i++) {
                        int j = Reference.at(b, c, i, cs, s);
                        double exact = (x[j] - st1.mean()[c]) * st1.invstd()[c] * gamma[c] + beta[c];
                        double tol = MODEL.y(b1, x[j] - st1.mean()[c], st1.mean()[c], gamma[c], st1.invstd()[c], beta[c], exact)
                                + MODEL.y(b2, x2[j] - st2.mean()[c], st2.mean()[c], gamma[c], st2.invstd()[c], beta[c], exact);
                        t.close("BN(a*x+b) - BN(x)", j, y2[j], y1[j], tol,
                                "x = " + x[j] + ", a*x+b = " + x2[j] + ", a = 2^" + p + ", channel " + c + " of " + k.shape());
                    }
                }
            }
        });
        t.report();
    }

    static float[] trainingY(Shape shape, float[] x, float[] gamma, float[] beta, double eps) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ys = TestData.allocate(arena, x.length, 0);
            BatchNorm.forwardTraining(shape, TestData.copyOf(arena, x), ys, TestData.copyOf(arena, gamma),
                    TestData.copyOf(arena, beta), TestData.allocate(arena, shape.c(), 0),
                    TestData.allocate(arena, shape.c(), 0), null, eps);
            return TestData.read(ys);
        }
    }

    /** Small shapes (at most a few hundred elements): the finite differences cost O(numel^2). */
    static Gen<long[]> smallDims() {
        return range(1, 4).flatMap(n -> range(1, 3).flatMap(c -> pick(List.of(1, 2, 3, 5, 7, 8, 9, 16, 17)).map(s -> {
            long nn = n * s < 2 ? 2 : n;
            return s == 1 ? new long[] {nn, c} : new long[] {nn, c, s};
        })));
    }

    /**
     * The kernel's backward is the gradient of L = Σ w*y (w = dy) of the double reference forward. Per
     * entry, with central differences D(h) = (L(+h) - L(-h))/(2h), h a power of two ~ 2^-12 of the
     * channel's sqrt(var + eps) (so x +- h is exact in double):
     * <ul>
     *   <li>truncation: D(h) = g + c*h^2 + O(h^4), so |D(h) - g| <~ |D(2h) - D(h)|/3; we allow |D(2h) - D(h)|;</li>
     *   <li>rounding of L: each y_j is within ~8 double roundings of |x_j|*|gamma|*iota + |y_j|, so
     *   |dL| <= 16*2^-53*Σ|w_j|*(|y_j| + |gamma|*iota*(|x_j| + |mu|) + |beta|), and D(h) is off by |dL|/h;</li>
     *   <li>the kernel's own error: ErrorModel.dx (dgamma, dbeta) against the reference fed the saved float
     *   statistics, plus the difference of that reference from the one with exact statistics (computed).</li>
     * </ul>
     * L is linear in gamma and beta, so their differences have no truncation error.
     */
    @Test
    void backwardMatchesFiniteDifferences() {
        Tally t = new Tally("finiteDifferences", "examples", "m==2", "S<8", "tail8", "constantChannel", "bigOffset",
                "gammaNull");
        Gen<Case> gen = smallDims().flatMap(dims -> Cases.recipes().map(r -> new Case(dims, r)));
        qt().withExamples(400).withShrinkCycles(40).forAll(gen).checkAssert(k -> {
            Data d = Cases.data(k);
            int n = k.n(), cs = k.c(), s = k.s(), m = k.m();
            double eps = k.recipe().eps();
            double[] x = Reference.widen(d.x), w = Reference.widen(d.dy);
            double[] gamma = new double[cs], beta = new double[cs];
            for (int c = 0; c < cs; c++) {
                gamma[c] = d.gamma == null ? 1 : d.gamma[c];
                beta[c] = d.beta == null ? 0 : d.beta[c];
            }
            Reference.Stats st = Reference.stats(n, cs, s, x, eps);
            t.count("examples", true);
            t.count("m==2", m == 2);
            t.count("S<8", s < 8);
            t.count("tail8", s > 8 && s % 8 != 0);
            t.data(k, st, eps);
            t.count("gammaNull", d.gamma == null);
            float[] dxK, dgK, dbK, meanF, invF;
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment xs = TestData.copyOf(arena, d.x), gs = TestData.copyOf(arena, d.gamma);
                MemorySegment sm = TestData.allocate(arena, cs, 0), si = TestData.allocate(arena, cs, 0);
                BatchNorm.forwardTraining(k.shape(), xs, TestData.allocate(arena, x.length, 0), gs,
                        TestData.copyOf(arena, d.beta), sm, si, null, eps);
                MemorySegment dx = TestData.allocate(arena, x.length, 0);
                MemorySegment dg = TestData.allocate(arena, cs, 0), db = TestData.allocate(arena, cs, 0);
                BatchNorm.backward(k.shape(), TestData.copyOf(arena, d.dy), xs, gs, sm, si, dx, dg, db);
                dxK = TestData.read(dx);
                dgK = TestData.read(dg);
                dbK = TestData.read(db);
                meanF = TestData.read(sm);
                invF = TestData.read(si);
            }
            Reference.Grads saved = Reference.backward(n, cs, s, w, x, gamma, Reference.widen(meanF), Reference.widen(invF));
            Reference.Grads exact = Reference.backward(n, cs, s, w, x, gamma, st.mean(), st.invstd());
            double[] y = Reference.normalize(n, cs, s, x, st.mean(), st.invstd(), gamma, beta);
            Reference.Sum lScale = new Reference.Sum();
            for (int b = 0; b < n; b++) {
                for (int c = 0; c < cs; c++) {
                    for (int i = 0; i < s; i++) {
                        int j = Reference.at(b, c, i, cs, s);
                        lScale.add(Math.abs(w[j]) * (Math.abs(y[j]) + Math.abs(gamma[c]) * st.invstd()[c]
                                * (Math.abs(x[j]) + Math.abs(st.mean()[c])) + Math.abs(beta[c])));
                    }
                }
            }
            double dL = 16 * 0x1p-53 * lScale.value();
            double[][] sumDy = BatchNormBackwardPropertiesTest.channelSums(k, d.dy, d.x, null);
            double[][] sumDyXc = BatchNormBackwardPropertiesTest.channelSums(k, d.dy, d.x, Reference.widen(meanF));
            for (int c = 0; c < cs; c++) {
                ErrorModel.SumBounds sb = MODEL.sums(k.n(), cs, k.s(), sumDy[0][c], sumDyXc[0][c]);
                double h = Math.scalb(1.0, Math.getExponent(Math.sqrt(st.var()[c] + eps)) - 12);
                for (int b = 0; b < n; b++) {
                    for (int i = 0; i < s; i++) {
                        int j = Reference.at(b, c, i, cs, s);
                        double d1 = centralDiff(k, x, gamma, beta, eps, w, x, j, h);
                        double d2 = centralDiff(k, x, gamma, beta, eps, w, x, j, 2 * h);
                        double tol = ErrorModel.dx(sb, m, gamma[c], invF[c], w[j], x[j] - meanF[c], sumDy[1][c],
                                sumDyXc[1][c], saved.dx()[j]) + Math.abs(saved.dx()[j] - exact.dx()[j])
                                + Math.abs(d2 - d1) + dL / h;
                        t.close("dx vs finite difference", j, dxK[j], d1, tol, "x = " + d.x[j] + ", h = " + h + ", " + k);
                    }
                }
                double hg = Math.scalb(1.0, Math.getExponent(Math.max(1, Math.abs(gamma[c]))) - 6);
                double dgFd = centralDiff(k, x, gamma, beta, eps, w, gamma, c, hg);
                t.close("dgamma vs finite difference", c, dgK[c], dgFd,
                        ErrorModel.dgamma(sb, invF[c], saved.dgamma()[c]) + Math.abs(saved.dgamma()[c] - exact.dgamma()[c])
                                + 2 * dL / hg, k);
                double dbFd = centralDiff(k, x, gamma, beta, eps, w, beta, c, 1.0 / 64);
                t.close("dbeta vs finite difference", c, dbK[c], dbFd,
                        ErrorModel.dbeta(sb, saved.dbeta()[c]) + 2 * dL * 64, k);
            }
        });
        t.report();
    }

    /** (L(v_j + h) - L(v_j - h)) / 2h where v is one of x, gamma, beta (perturbed in place, then restored). */
    private static double centralDiff(Case k, double[] x, double[] gamma, double[] beta, double eps, double[] w,
                                      double[] v, int j, double h) {
        double keep = v[j];
        v[j] = keep + h;
        double up = Reference.loss(k.n(), k.c(), k.s(), x, gamma, beta, eps, w);
        v[j] = keep - h;
        double down = Reference.loss(k.n(), k.c(), k.s(), x, gamma, beta, eps, w);
        v[j] = keep;
        return (up - down) / (2 * h);
    }

    /** y may be x and dx may be dy: the same bits as with separate buffers (the math is element-wise). */
    @Test
    void inPlaceEqualsSeparateBuffers() {
        Tally t = new Tally("inPlace", "examples", "tail16", "S<8", "memoryOrder", "m==2", "constantChannel");
        qt().withExamples(400).withShrinkCycles(40).forAll(Cases.cases(2)).checkAssert(k -> {
            Data d = Cases.data(k);
            Shape shape = k.shape();
            int cs = k.c(), mis = k.recipe().misalign();
            double eps = k.recipe().eps();
            t.shape(k);
            t.data(k, Reference.stats(k.n(), cs, k.s(), Reference.widen(d.x), eps), eps);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment xs = TestData.copyOf(arena, d.x, mis), gs = TestData.copyOf(arena, d.gamma, mis);
                MemorySegment bs = TestData.copyOf(arena, d.beta, mis);
                MemorySegment rm = TestData.copyOf(arena, d.runMean, mis), rv = TestData.copyOf(arena, d.runVar, mis);
                MemorySegment sm = TestData.allocate(arena, cs, mis), si = TestData.allocate(arena, cs, mis);

                // training forward
                MemorySegment y = TestData.allocate(arena, d.x.length, mis);
                BatchNorm.forwardTraining(shape, xs, y, gs, bs, sm, si, null, eps);
                MemorySegment inPlace = TestData.copyOf(arena, d.x, mis);
                MemorySegment sm2 = TestData.allocate(arena, cs, mis), si2 = TestData.allocate(arena, cs, mis);
                BatchNorm.forwardTraining(shape, inPlace, inPlace, gs, bs, sm2, si2, null, eps);
                assertArrayEquals(TestData.read(y), TestData.read(inPlace), "training y in place: " + k);
                assertArrayEquals(TestData.read(sm), TestData.read(sm2), "saveMean in place: " + k);
                assertArrayEquals(TestData.read(si), TestData.read(si2), "saveInvstd in place: " + k);

                // inference forward
                BatchNorm.forwardInference(shape, xs, y, gs, bs, rm, rv, eps);
                inPlace = TestData.copyOf(arena, d.x, mis);
                BatchNorm.forwardInference(shape, inPlace, inPlace, gs, bs, rm, rv, eps);
                assertArrayEquals(TestData.read(y), TestData.read(inPlace), "inference y in place: " + k);

                // training backward
                MemorySegment dys = TestData.copyOf(arena, d.dy, mis);
                MemorySegment dx = TestData.allocate(arena, d.x.length, mis);
                MemorySegment dg = TestData.allocate(arena, cs, mis), db = TestData.allocate(arena, cs, mis);
                BatchNorm.backward(shape, dys, xs, gs, sm, si, dx, dg, db);
                MemorySegment dg2 = TestData.allocate(arena, cs, mis), db2 = TestData.allocate(arena, cs, mis);
                BatchNorm.backward(shape, dys, xs, gs, sm, si, dys, dg2, db2);
                assertArrayEquals(TestData.read(dx), TestData.read(dys), "training dx in place: " + k);
                assertArrayEquals(TestData.read(dg), TestData.read(dg2), "dgamma with dx in place: " + k);
                assertArrayEquals(TestData.read(db), TestData.read(db2), "dbeta with dx in place: " + k);

                // inference backward
                dys = TestData.copyOf(arena, d.dy, mis);
                BatchNorm.backwardInference(shape, dys, xs, gs, rm, rv, eps, dx, null, null);
                BatchNorm.backwardInference(shape, dys, xs, gs, rm, rv, eps, dys, null, null);
                assertArrayEquals(TestData.read(dx), TestData.read(dys), "inference dx in place: " + k);
            }
        });
        t.report();
    }
}
