package io.github.vecnorm.bench;

import io.github.vecnorm.internal.GroupNormOps;
import io.github.vecnorm.internal.InstanceNormOps;
import io.github.vecnorm.internal.Kernels;
import io.github.vecnorm.internal.LayerNormOps;
import io.github.vecnorm.internal.Loop;
import io.github.vecnorm.internal.LpBatchNormOps;
import io.github.vecnorm.internal.Primitives;
import io.github.vecnorm.internal.RMSNormOps;
import io.github.vecnorm.internal.WeightNormOps;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;

/**
 * The check every family benchmark makes before timing: the implementation's outputs against vecnorm's
 * scalar twin (run serially on the same problem), element by element, as {@link Agreement} does for
 * BatchNorm.
 *
 * <p>Tolerances come from the statistics of each unit u (the elements one statistic is taken over, m
 * of them; see {@link FamilyProblem}), with center c_u (the mean; 0 for RMSNorm and WeightNorm) and
 * inverse spread r_u (rstd; 1/norm for WeightNorm) of the scalar twin, all {@code K * ulp(1f) * sqrt(n)
 * * scale} with n the length of the sum behind the value:
 * <ul>
 *   <li>y (n = m): {@code max|gamma| * r * max|x| + (max|y| + max|beta|) * max(1, max|x| * r)}: an error
 *   of a few ulps of a sum of values up to max|x| in the center moves y by the first term; the same,
 *   relative, in r moves it by the second.</li>
 *   <li>dx (n = m): {@code max|gamma| * r * (max|dy| + Σ|dy|/m + (max|xhat| + max|x| r) * G/m)} with
 *   {@code G = Σ|dy xhat| + Σ|dy| max|x| r}, as {@link Agreement} for BatchNorm's backward.</li>
 *   <li>dgamma[j] (n = the elements of parameter j): {@code Σ|dy xhat| + Σ|dy| max|x|_u r_u}; dbeta[j]:
 *   {@code Σ|dy|}.</li>
 * </ul>
 * NaN anywhere fails.
 */
public final class FamilyAgreement {

    static final double K = Agreement.K;
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final double ULP = Math.ulp(1f);

    private FamilyAgreement() {
    }

    /** Backward kernels read the forward's saved statistics: computes them with the scalar twin. */
    public static void prepareInputs(FamilyProblem p) {
        switch (p.kernel) {
            case LAYERNORM_BACKWARD, RMSNORM_BACKWARD, GROUPNORM_BACKWARD ->
                    reference(forwardOf(p.kernel), p, p.y, p.mean, p.rstd, null, null, null);
            default -> {
            }
        }
    }

    private static FamilyKernel forwardOf(FamilyKernel k) {
        return switch (k) {
            case LAYERNORM_BACKWARD -> FamilyKernel.LAYERNORM_FORWARD;
            case RMSNORM_BACKWARD -> FamilyKernel.RMSNORM_FORWARD;
            case GROUPNORM_BACKWARD -> FamilyKernel.GROUPNORM_FORWARD;
            default -> k;
        };
    }

    static boolean backward(FamilyKernel k) {
        return k.trafficFactor() == 3;
    }

    /** The scalar twin, serially: forward kernels write y, mean, rstd; backward ones dx, dgamma, dbeta. */
    private static void reference(FamilyKernel k, FamilyProblem p, MemorySegment y, MemorySegment mean,
                                  MemorySegment rstd, MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        Primitives s = Kernels.scalar();
        Loop l = Loop.SERIAL;
        switch (k) {
            case LAYERNORM_FORWARD -> LayerNormOps.forward(s, p.rows.m(), p.rows.d(), p.x, y, p.gamma, p.beta, mean, rstd,
                    p.eps, l);
            case LAYERNORM_BACKWARD -> LayerNormOps.backward(s, p.rows.m(), p.rows.d(), p.dy, p.x, p.gamma, p.mean,
                    p.rstd, dx, dgamma, dbeta, l);
            case RMSNORM_FORWARD -> RMSNormOps.forward(s, p.rows.m(), p.rows.d(), p.x, y, p.gamma, rstd, p.eps, l);
            case RMSNORM_BACKWARD -> RMSNormOps.backward(s, p.rows.m(), p.rows.d(), p.dy, p.x, p.gamma, p.rstd,
                    dx, dgamma, l);
            case GROUPNORM_FORWARD -> GroupNormOps.forward(s, p.shape.n(), p.shape.c(), p.shape.s(), FamilyKernel.GROUPS,
                    p.x, y, p.gamma, p.beta, mean, rstd, p.eps, null, l);
            case GROUPNORM_BACKWARD -> GroupNormOps.backward(s, p.shape.n(), p.shape.c(), p.shape.s(),
                    FamilyKernel.GROUPS, p.dy, p.x, p.gamma, p.mean, p.rstd, dx, dgamma, dbeta, l);
            case INSTANCENORM_FORWARD -> InstanceNormOps.forwardTraining(s, p.shape.n(), p.shape.c(), p.shape.s(),
                    p.x, y, p.gamma, p.beta, mean, rstd, null, null, 0, p.eps, l);
            case WEIGHTNORM_FORWARD -> WeightNormOps.forward(s, 1, p.dims[0], p.numel / p.dims[0], p.x, p.gamma, y,
                    rstd, l); // dim 0: (A, K, S) = (1, dims[0], the rest); rstd receives the norms
            case LPBATCHNORM_FORWARD_P1, LPBATCHNORM_FORWARD_PINF -> LpBatchNormOps.forward(s, k.p(), p.shape.n(),
                    p.shape.c(), p.shape.s(), p.x, y, p.gamma, p.beta, mean, rstd, p.eps, l);
        }
    }

    /**
     * Runs {@code impl} once on {@code p} (its untimed publishing variant) and compares its outputs with
     * the scalar twin's.
     *
     * @return a one-line summary: the worst error as a fraction of its tolerance
     * @throws IllegalStateException naming the output and index of the first disagreement
     */
    public static String check(FamilyProblem p, FamilyImpl impl) {
        FamilyKernel k = p.kernel;
        boolean bwd = backward(k);
        // shared, like the problem's tensors: one confined segment through the kernels in this JVM
        // made the Vector API code 25x slower on shared ones afterwards (LayerNorm 2048x768: 0.29 -> 7.5 ms)
        try (Arena arena = Arena.ofShared()) {
            long units = p.units, params = p.params, numel = p.numel, m = p.unitSize();
            MemorySegment ref = arena.allocate(numel * 4, 64);
            MemorySegment mean = arena.allocate(units * 4), rstd = arena.allocate(units * 4);
            MemorySegment dg = arena.allocate(params * 4), db = arena.allocate(params * 4);
            if (bwd) {
                fill(p.dx, Float.NaN);
                fill(p.dgamma, Float.NaN);
                fill(p.dbeta, Float.NaN);
            } else {
                fill(p.y, Float.NaN);
            }
            impl.publishOutputs(k);
            if (bwd) {
                reference(k, p, null, null, null, ref, dg, db);
                // the statistics backward used are the problem's (prepared by the scalar forward)
                MemorySegment.copy(p.mean, 0, mean, 0, units * 4);
                MemorySegment.copy(p.rstd, 0, rstd, 0, units * 4);
            } else {
                reference(k, p, ref, mean, rstd, null, null, null);
            }
            boolean centered = !(k.group().equals("RMSNorm") || k.group().equals("WeightNorm"));
            boolean perUnitGamma = k.group().equals("WeightNorm");
            double[] c = new double[(int) units], r = new double[(int) units];
            for (int u = 0; u < units; u++) {
                c[u] = centered ? mean.getAtIndex(F, u) : 0;
                double v = rstd.getAtIndex(F, u);
                r[u] = perUnitGamma ? 1 / v : v;
            }
            // pass 1: max|x| and max|gamma| per unit
            double[] maxX = new double[(int) units], maxG = new double[(int) units];
            for (long e = 0; e < numel; e++) {
                int u = (int) p.unitOf(e);
                maxX[u] = Math.max(maxX[u], Math.abs(p.x.getAtIndex(F, e)));
                maxG[u] = Math.max(maxG[u], Math.abs(p.gamma.getAtIndex(F, p.paramOf(e))));
            }
            double maxB = 0;
            if (!perUnitGamma) for (long j = 0; j < params; j++) maxB = Math.max(maxB, Math.abs(p.beta.getAtIndex(F, j)));
            Checker ck = new Checker(impl.name(), k);
            if (!bwd) {
                double[] maxY = new double[(int) units];
                for (long e = 0; e < numel; e++) {
                    int u = (int) p.unitOf(e);
                    maxY[u] = Math.max(maxY[u], Math.abs(ref.getAtIndex(F, e)));
                }
                double[] tol = new double[(int) units];
                for (int u = 0; u < units; u++) {
                    double scale = maxG[u] * r[u] * maxX[u] + (maxY[u] + maxB) * Math.max(1, maxX[u] * r[u]);
                    tol[u] = K * ULP * Math.sqrt(m) * scale;
                }
                for (long e = 0; e < numel; e++) {
                    ck.compare(k.group().equals("WeightNorm") ? "w" : "y", e, p.y.getAtIndex(F, e), ref.getAtIndex(F, e),
                            tol[(int) p.unitOf(e)]);
                }
                return ck.summary();
            }
            // backward: pass 2, the sums behind each output
            double[] maxDy = new double[(int) units], sumDy = new double[(int) units], sumDyXhat = new double[(int) units],
                    maxXhat = new double[(int) units];
            double[] pDyXhat = new double[(int) params], pDy = new double[(int) params], pCross = new double[(int) params];
            long[] pCount = new long[(int) params];
            for (long e = 0; e < numel; e++) {
                int u = (int) p.unitOf(e), j = (int) p.paramOf(e);
                double d = Math.abs(p.dy.getAtIndex(F, e)), xh = Math.abs((p.x.getAtIndex(F, e) - c[u]) * r[u]);
                maxDy[u] = Math.max(maxDy[u], d);
                sumDy[u] += d;
                sumDyXhat[u] += d * xh;
                maxXhat[u] = Math.max(maxXhat[u], xh);
                pDyXhat[j] += d * xh;
                pDy[j] += d;
                pCross[j] += d * maxX[u] * r[u];
                pCount[j]++;
            }
            double[] tol = new double[(int) units];
            for (int u = 0; u < units; u++) {
                double gs = sumDyXhat[u] + sumDy[u] * maxX[u] * r[u];
                double scale = maxG[u] * r[u] * (maxDy[u] + sumDy[u] / m + (maxXhat[u] + maxX[u] * r[u]) * gs / m);
                tol[u] = K * ULP * Math.sqrt(m) * scale;
            }
            for (long e = 0; e < numel; e++) {
                ck.compare("dx", e, p.dx.getAtIndex(F, e), ref.getAtIndex(F, e), tol[(int) p.unitOf(e)]);
            }
            for (int j = 0; j < params; j++) {
                double t = K * ULP * Math.sqrt(pCount[j]);
                ck.compare("dgamma", j, p.dgamma.getAtIndex(F, j), dg.getAtIndex(F, j), t * (pDyXhat[j] + pCross[j]));
                if (k != FamilyKernel.RMSNORM_BACKWARD) {
                    ck.compare("dbeta", j, p.dbeta.getAtIndex(F, j), db.getAtIndex(F, j), t * pDy[j]);
                }
            }
            return ck.summary();
        }
    }

    private static void fill(MemorySegment seg, float v) {
        for (long i = 0, e = seg.byteSize() / 4; i < e; i++) seg.setAtIndex(F, i, v);
    }

    /** Accumulates the worst error/tolerance ratio; throws on the first value out of tolerance. */
    private static final class Checker {
        final String impl;
        final FamilyKernel kernel;
        double worst;
        String worstWhat = "-";

        Checker(String impl, FamilyKernel kernel) {
            this.impl = impl;
            this.kernel = kernel;
        }

        void compare(String what, long index, float got, float want, double tol) {
            double err = Math.abs((double) got - want);
            if (!(err <= tol)) {
                throw new IllegalStateException(String.format(Locale.ROOT,
                        "%s disagrees with vecnorm's scalar twin on %s: %s[%d] = %s, expected %s (|error| %.3g > tolerance %.3g)",
                        impl, kernel.id(), what, index, got, want, err, tol));
            }
            double q = tol == 0 ? 0 : err / tol;
            if (q > worst) {
                worst = q;
                worstWhat = what;
            }
        }

        String summary() {
            return String.format(Locale.ROOT, "%s %s agrees with the scalar twin: worst error %.3f of tolerance (%s)",
                    impl, kernel.id(), worst, worstWhat);
        }
    }
}
