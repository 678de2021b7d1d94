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
 *   <li>WeightNorm's backward ({@code gradV = g r (dy - xhat Σ dy xhat)}, {@code gradG = Σ dy xhat}, no
 *   center, no mean of dy): dx {@code max|g| * r * (max|dy| + max|xhat| * Σ|dy xhat|)}, dgamma
 *   {@code Σ|dy xhat|}; there is no dbeta.</li>
 *   <li>L_p BatchNorm's backward for p = 1 and infinity: dx as above with {@code (max|xhat| + max|x| r) / m}
 *   replaced by the magnitude of the element's {@code d spread / d x} terms (see {@link Steps}): for
 *   p = infinity it is large only at the tied extremes, so the tolerance is per element.</li>
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
            case LAYERNORM_BACKWARD, RMSNORM_BACKWARD, GROUPNORM_BACKWARD, INSTANCENORM_BACKWARD, WEIGHTNORM_BACKWARD,
                 LPBATCHNORM_BACKWARD_P1, LPBATCHNORM_BACKWARD_PINF ->
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
            case INSTANCENORM_BACKWARD -> FamilyKernel.INSTANCENORM_FORWARD;
            case WEIGHTNORM_BACKWARD -> FamilyKernel.WEIGHTNORM_FORWARD;
            case LPBATCHNORM_BACKWARD_P1 -> FamilyKernel.LPBATCHNORM_FORWARD_P1;
            case LPBATCHNORM_BACKWARD_PINF -> FamilyKernel.LPBATCHNORM_FORWARD_PINF;
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
            case INSTANCENORM_BACKWARD -> InstanceNormOps.backward(s, p.shape.n(), p.shape.c(), p.shape.s(), p.dy, p.x,
                    p.gamma, p.mean, p.rstd, dx, dgamma, dbeta, l);
            case WEIGHTNORM_BACKWARD -> WeightNormOps.backward(s, 1, p.dims[0], p.numel / p.dims[0], p.dy, p.x, p.gamma,
                    p.rstd, dx, dgamma, l); // gradW = dy, v = x, g = gamma, norms in rstd
            case LPBATCHNORM_BACKWARD_P1, LPBATCHNORM_BACKWARD_PINF -> LpBatchNormOps.backward(s, k.p(), p.shape.n(),
                    p.shape.c(), p.shape.s(), p.dy, p.x, p.gamma, p.mean, p.rstd, dx, dgamma, dbeta, l);
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
            boolean weightNorm = k == FamilyKernel.WEIGHTNORM_BACKWARD;
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
            Steps steps = switch (k) {
                case LPBATCHNORM_BACKWARD_P1, LPBATCHNORM_BACKWARD_PINF -> new Steps(p, c);
                default -> null;
            };
            // dx = gamma r (dy [- Σdy/m] - D * G): tolBase for the dy and Σdy/m terms, tolD per unit of |D|
            double[] tolBase = new double[(int) units], tolD = new double[(int) units], dMag = new double[(int) units];
            for (int u = 0; u < units; u++) {
                double t = K * ULP * Math.sqrt(m) * maxG[u] * r[u];
                if (weightNorm) {
                    // gradV = g r (dy - xhat * Σ dy xhat): no mean of dy, no center; |D| = |xhat|
                    tolBase[u] = t * maxDy[u];
                    tolD[u] = t * sumDyXhat[u];
                    dMag[u] = maxXhat[u];
                } else {
                    tolBase[u] = t * (maxDy[u] + sumDy[u] / m);
                    tolD[u] = t * (sumDyXhat[u] + sumDy[u] * maxX[u] * r[u]);
                    // L_p: |D| from the steps (per element for p = inf); otherwise |D| = |xhat| / m and the
                    // error of xhat itself
                    dMag[u] = steps != null ? 0 : (maxXhat[u] + maxX[u] * r[u]) / m;
                }
            }
            for (long e = 0; e < numel; e++) {
                int u = (int) p.unitOf(e);
                double dm = steps == null ? dMag[u] : steps.magnitude(k, u, p.x.getAtIndex(F, e));
                ck.compare("dx", e, p.dx.getAtIndex(F, e), ref.getAtIndex(F, e), tolBase[u] + tolD[u] * dm);
            }
            for (int j = 0; j < params; j++) {
                double t = K * ULP * Math.sqrt(pCount[j]);
                // WeightNorm's Σ gradW * v has no center, so no error from one
                ck.compare("dgamma", j, p.dgamma.getAtIndex(F, j), dg.getAtIndex(F, j),
                        t * (pDyXhat[j] + (weightNorm ? 0 : pCross[j])));
                if (k != FamilyKernel.RMSNORM_BACKWARD && !weightNorm) {
                    ck.compare("dbeta", j, p.dbeta.getAtIndex(F, j), db.getAtIndex(F, j), t * pDy[j]);
                }
            }
            return ck.summary();
        }
    }

    private static void fill(MemorySegment seg, float v) {
        for (long i = 0, e = seg.byteSize() / 4; i < e; i++) seg.setAtIndex(F, i, v);
    }

    /**
     * L_p BatchNorm's backward, per channel u with m values: {@code dx = gamma r (dy - Σdy/m - G D)} with D as
     * documented in {@code LpBatchNorm} (sign(d) against the saved mean for p = 1, the tied extremes T for
     * p = inf), computed as a sum of terms (sign(d) = [x >= mean] - [x <= mean], each a term);
     * {@link #magnitude} is the sum of their magnitudes, by which an error in G moves dx:
     * p = 1: {@code ([x_i >= mean] + [x_i <= mean] + |Σ sign(d)| / m) / m}; p = inf:
     * {@code ([x_i at a used max] + [x_i at a used min] + |Σ e| / m) / |T|}.
     */
    private static final class Steps {
        final double m;
        final double[] mean, lo, hi, sumSign, ties, sumE;
        final boolean[] useMax, useMin;

        Steps(FamilyProblem p, double[] mean) {
            int units = (int) p.units;
            this.m = p.unitSize();
            this.mean = mean;
            lo = new double[units];
            hi = new double[units];
            java.util.Arrays.fill(lo, Double.POSITIVE_INFINITY);
            java.util.Arrays.fill(hi, Double.NEGATIVE_INFINITY);
            for (long e = 0; e < p.numel; e++) {
                int u = (int) p.unitOf(e);
                double v = p.x.getAtIndex(F, e);
                lo[u] = Math.min(lo[u], v);
                hi[u] = Math.max(hi[u], v);
            }
            useMax = new boolean[units];
            useMin = new boolean[units];
            for (int u = 0; u < units; u++) {
                double dMax = hi[u] - mean[u], dMin = mean[u] - lo[u];
                useMax[u] = dMax >= dMin;
                useMin[u] = dMin >= dMax;
            }
            sumSign = new double[units];
            ties = new double[units];
            sumE = new double[units];
            for (long e = 0; e < p.numel; e++) {
                int u = (int) p.unitOf(e);
                double v = p.x.getAtIndex(F, e);
                sumSign[u] += (v >= mean[u] ? 1 : 0) - (v <= mean[u] ? 1 : 0);
                if (useMax[u] && v == hi[u]) {
                    ties[u]++;
                    sumE[u]++;
                }
                if (useMin[u] && v == lo[u]) {
                    ties[u]++;
                    sumE[u]--;
                }
            }
        }

        /** The sum of the magnitudes of D's terms for value v of channel u. */
        double magnitude(FamilyKernel k, int u, double v) {
            if (k == FamilyKernel.LPBATCHNORM_BACKWARD_P1) {
                return ((v >= mean[u] ? 1 : 0) + (v <= mean[u] ? 1 : 0) + Math.abs(sumSign[u]) / m) / m;
            }
            double at = (useMax[u] && v == hi[u] ? 1 : 0) + (useMin[u] && v == lo[u] ? 1 : 0);
            return (at + Math.abs(sumE[u]) / m) / ties[u];
        }
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
