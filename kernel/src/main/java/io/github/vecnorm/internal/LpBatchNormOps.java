package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * L_p BatchNorm bodies composed of the {@link Primitives}; {@code io.github.vecnorm.LpBatchNorm} guards
 * every argument first. Layout and walks as {@link BatchNormOps}: a reduction pass channel by channel,
 * then an element-wise pass (memory order for long runs). p = 2 is BatchNorm itself and delegates to it.
 *
 * <p>Per channel, d = x - mean over m = N*S values:
 * <ul>
 *   <li>p = 1: spread = mean |d| (deviations from the double mean, split in two floats), invSpread = 1/(spread + eps);</li>
 *   <li>p = inf: spread = max |d| = max(max x - mean, mean - min x) in double, invSpread = 1/(spread + eps).</li>
 * </ul>
 * Backward, with xhat = d * invSpread, A = Σ dy, G = Σ dy * xhat: {@code dx = gamma*invSpread*(dy - A/m - G * dspread/dx)},
 * dspread/dx_i = (sign(d_i) - mean sign(d))/m for p = 1; for p = inf the subgradient split equally over the
 * tied extremes T: (e_i - Σe/m)/|T| with e_i = +1 at a tied maximum, -1 at a tied minimum, 0 elsewhere.
 * Both are {@code dx = k*dy + r + steps(x)}: {@link Primitives#gradApplySteps}.
 */
public final class LpBatchNormOps {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;
    /** Floats per channel of the backward's element-wise coefficients: p, r, hi, u, lo, v. */
    static final int STEP_COEFS = 6;

    private LpBatchNormOps() {
    }

    /** Training forward for p in {1, 2, inf}: saves the mean and the inverse spread. */
    public static void forward(Primitives pr, double p, long n, long cs, long s, MemorySegment x, MemorySegment y,
                               MemorySegment gamma, MemorySegment beta, MemorySegment saveMean,
                               MemorySegment saveInvSpread, double eps, Loop loop) {
        if (p == 2) {
            BatchNormOps.forwardTraining(pr, n, cs, s, x, y, gamma, beta, saveMean, saveInvSpread,
                    null, null, 0, eps, loop);
            return;
        }
        float[] coef = Scratch.floats(BatchNormOps.scratchFloats(n, cs, s));
        loop.forEach(cs, c -> stats(pr, p, n, cs, s, c, x, gamma, beta, saveMean, saveInvSpread, eps, coef));
        BatchNormOps.applyAffine(pr, n, cs, s, x, y, coef, true, loop);
    }

    /** Backward for p in {1, 2, inf} from the saved mean and inverse spread; null outputs are not computed. */
    public static void backward(Primitives pr, double p, long n, long cs, long s, MemorySegment dy, MemorySegment x,
                                MemorySegment gamma, MemorySegment saveMean, MemorySegment saveInvSpread,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        if (p == 2) {
            BatchNormOps.backward(pr, n, cs, s, dy, x, gamma, saveMean, saveInvSpread, dx, dgamma, dbeta, loop);
            return;
        }
        if (dx == null && dgamma == null && dbeta == null) return;
        float[] coef = dx == null ? null : Scratch.floats(STEP_COEFS * cs);
        // Σdy and Σdy*(x - mean) in memory order where BatchNorm takes them so (then per channel from these)
        boolean memoryOrder = BatchNormOps.memoryOrder(s);
        double[] sumDy = null, sumDyXc = null;
        if (memoryOrder) {
            sumDy = Scratch.doubles(0, cs);
            sumDyXc = Scratch.doubles(1, cs);
            BatchNormOps.memoryOrderSums(pr, n, cs, s, dy, x, saveMean, B, sumDy, sumDyXc, loop);
        }
        double[] fromDy = sumDy, fromDyXc = sumDyXc;
        loop.forEach(cs, c -> backwardSums(pr, p, n, cs, s, c, dy, x, gamma, saveMean, saveInvSpread,
                dgamma, dbeta, coef, fromDy, fromDyXc));
        if (dx == null) return;
        if (memoryOrder) {
            long b = BatchNormOps.blockChannels(cs, loop);
            loop.forEach(BatchNormOps.runItems(n, cs, b), j -> {
                long c0 = BatchNormOps.firstChannel(j, n, b), c1 = Math.min(cs, c0 + b);
                long r0 = BatchNormOps.firstRun(j, n, cs);
                for (long c = c0; c < c1; c++) applySteps(pr, dy, x, dx, (r0 + c) * s * B, 1, s, 0, coef, (int) (STEP_COEFS * c));
            });
        } else {
            loop.forEach(cs, c -> applySteps(pr, dy, x, dx, c * s * B, n, s, cs * s * B, coef, (int) (STEP_COEFS * c)));
        }
    }

    /**
     * Statistics of channel c: the mean (Welford, as BatchNorm), then the spread in a second pass over the
     * channel; saves mean and invSpread and leaves the affine (center, a, b) in coef.
     */
    static void stats(Primitives pr, double p, long n, long cs, long s, long c, MemorySegment x,
                      MemorySegment gamma, MemorySegment beta, MemorySegment saveMean, MemorySegment saveInvSpread,
                      double eps, float[] coef) {
        long off = c * s * B, stride = cs * s * B;
        double m = (double) n * s;
        Scratch.Task task = Scratch.task();
        Moments acc = task.moments.reset();
        BatchNormOps.shiftedMoments(pr, x, off, n, s, stride, acc);
        double mean = acc.mean();
        float meanF = (float) mean;
        double spread;
        if (p == 1) {
            // |x - mean| with the mean as two floats: no first-order error from rounding the mean
            float lo = (float) (mean - meanF);
            double sum;
            if (s <= BatchNormOps.MAX_RUN) {
                // the usual case: no lambda, no array for the sum
                sum = pr.sumAbsDiff(x, off, n, (int) s, stride, meanF, lo);
            } else {
                double[] parts = {0};
                runs(off, n, s, stride, (o, r, len, st) -> parts[0] += pr.sumAbsDiff(x, o, r, len, st, meanF, lo));
                sum = parts[0];
            }
            spread = sum / m;
        } else {
            float[] mm = minMax(pr, x, off, n, s, stride, task.minMax);
            spread = Math.max(mm[1] - mean, mean - mm[0]);
        }
        double inv = 1.0 / (spread + eps);
        double a = inv * BatchNormOps.at(gamma, c, 1f);
        int k = (int) (BatchNormOps.COEFS * c);
        coef[k] = meanF;
        coef[k + 1] = (float) a;
        coef[k + 2] = (float) (BatchNormOps.at(beta, c, 0f) - (mean - meanF) * a);
        saveMean.set(F, c * B, meanF);
        saveInvSpread.set(F, c * B, (float) inv);
    }

    /**
     * Backward sums of channel c: Σdy and Σdy*(x - mean) (from sumsDy/sumsDyXc when not null, taken in
     * memory order before) and the sign or tie counts when dx is wanted;
     * writes dgamma[c], dbeta[c] and leaves (k, r, hi, u, lo, v) of dx = k*dy + r + steps in coef.
     */
    static void backwardSums(Primitives pr, double p, long n, long cs, long s, long c, MemorySegment dy,
                             MemorySegment x, MemorySegment gamma, MemorySegment saveMean,
                             MemorySegment saveInvSpread, MemorySegment dgamma, MemorySegment dbeta, float[] coef,
                             double[] sumsDy, double[] sumsDyXc) {
        long off = c * s * B, stride = cs * s * B;
        float meanF = saveMean.get(F, c * B);
        double inv = saveInvSpread.get(F, c * B);
        Scratch.Task task = Scratch.task();
        double sumDy, g;
        if (sumsDy != null) {
            sumDy = sumsDy[(int) c];
            g = sumsDyXc[(int) c] * inv;
        } else {
            GradSums sums = task.grads.reset();
            BatchNormOps.gradSums(pr, dy, off, x, off, n, s, stride, meanF, sums);
            sumDy = sums.sumDy;
            g = sums.sumDyXc * inv;
        }
        if (dgamma != null) dgamma.set(F, c * B, (float) g);
        if (dbeta != null) dbeta.set(F, c * B, (float) sumDy);
        if (coef == null) return;
        double m = (double) n * s;
        double k = BatchNormOps.at(gamma, c, 1f) * inv;
        int i = (int) (STEP_COEFS * c);
        coef[i] = (float) k;
        long[] counts = task.counts;
        counts[0] = 0;
        counts[1] = 0;
        if (p == 1) {
            // sign(x - mean) = [x >= mean] - [x <= mean]
            countSteps(pr, x, off, n, s, stride, meanF, meanF, counts);
            double sumSign = counts[0] - counts[1];
            double q = -k * g / m;
            coef[i + 1] = (float) (-k * (sumDy - g * sumSign / m) / m);
            coef[i + 2] = meanF;
            coef[i + 3] = (float) q;
            coef[i + 4] = meanF;
            coef[i + 5] = (float) -q;
        } else {
            float[] mm = minMax(pr, x, off, n, s, stride, task.minMax);
            countSteps(pr, x, off, n, s, stride, mm[1], mm[0], counts);
            // which extreme is farther from the (saved) mean; both when equally far
            double dMax = (double) mm[1] - meanF, dMin = meanF - (double) mm[0];
            boolean useMax = dMax >= dMin, useMin = dMin >= dMax;
            double nMax = useMax ? counts[0] : 0, nMin = useMin ? counts[1] : 0;
            double ties = nMax + nMin, sumE = nMax - nMin;
            double q = -k * g / ties;
            coef[i + 1] = (float) (-k * sumDy / m + k * g * sumE / (m * ties));
            coef[i + 2] = mm[1];
            coef[i + 3] = useMax ? (float) q : 0f;
            coef[i + 4] = mm[0];
            coef[i + 5] = useMin ? (float) -q : 0f;
        }
    }

    /** The minimum and maximum of a channel into {@code mm} (2 floats, overwritten), which it returns. */
    private static float[] minMax(Primitives pr, MemorySegment x, long off, long n, long s, long stride, float[] mm) {
        mm[0] = Float.POSITIVE_INFINITY;
        mm[1] = Float.NEGATIVE_INFINITY;
        if (s <= BatchNormOps.MAX_RUN) {
            // the usual case: no lambda
            pr.minMax(x, off, n, (int) s, stride, mm);
        } else {
            runs(off, n, s, stride, (o, r, len, st) -> pr.minMax(x, o, r, len, st, mm));
        }
        return mm;
    }

    /** {@link Primitives#countSteps} over a channel, added into counts. */
    private static void countSteps(Primitives pr, MemorySegment x, long off, long n, long s, long stride,
                                   float hi, float lo, long[] counts) {
        if (s <= BatchNormOps.MAX_RUN) {
            // the usual case: no lambda
            pr.countSteps(x, off, n, (int) s, stride, hi, lo, counts);
        } else {
            runs(off, n, s, stride, (o, r, len, st) -> pr.countSteps(x, o, r, len, st, hi, lo, counts));
        }
    }

    private static void applySteps(Primitives pr, MemorySegment dy, MemorySegment x, MemorySegment dx,
                                   long off, long n, long s, long stride, float[] coef, int i) {
        float k = coef[i], r = coef[i + 1], hi = coef[i + 2], u = coef[i + 3], lo = coef[i + 4], v = coef[i + 5];
        if (s <= BatchNormOps.MAX_RUN) {
            // the usual case, called once per run in memory order: no lambda
            pr.gradApplySteps(dy, off, x, off, dx, off, n, (int) s, stride, k, r, hi, u, lo, v);
            return;
        }
        runs(off, n, s, stride, (o, rr, len, st) -> pr.gradApplySteps(dy, o, x, o, dx, o, rr, len, st, k, r, hi, u, lo, v));
    }

    /** A primitive call over runs: same offsets in every tensor. */
    @FunctionalInterface
    private interface RunsBody {
        void run(long off, long runs, int len, long stride);
    }

    /** n runs of s floats from off, stride apart; runs longer than MAX_RUN are handed over in pieces. */
    private static void runs(long off, long n, long s, long stride, RunsBody body) {
        if (s <= BatchNormOps.MAX_RUN) {
            body.run(off, n, (int) s, stride);
            return;
        }
        for (long r = 0; r < n; r++) {
            for (long i = 0; i < s; i += BatchNormOps.MAX_RUN) {
                body.run(off + r * stride + i * B, 1, (int) Math.min(BatchNormOps.MAX_RUN, s - i), 0);
            }
        }
    }
}
