package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * BatchNorm bodies, one channel at a time, composed of the {@link Primitives}. No validation here:
 * {@code io.github.vecnorm.BatchNorm} guards every argument first. A channel of an (N, C, S) tensor
 * is N runs of S floats, {@code C*S} floats apart.
 */
public final class BatchNormOps {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;
    /** Longest run handed to a primitive in one piece: keeps the hot loops int-counted. */
    static final int MAX_RUN = 1 << 30;

    private BatchNormOps() {
    }

    /** Reads float {@code i} of a C-vector, or {@code absent} if the segment is null. */
    public static float at(MemorySegment seg, long i, float absent) {
        return seg == null ? absent : seg.get(F, i * B);
    }

    /**
     * Training forward of channel {@code c}: moments in one pass over x, then y = (x - mean) * invstd *
     * gamma + beta re-reading x (from cache when the channel fits). Writes save_mean[c], save_invstd[c]
     * and, if runMean is not null, the running statistics with {@code factor}.
     */
    public static void trainingChannel(Primitives p, long n, long cs, long s, long c,
                                       MemorySegment x, MemorySegment y, MemorySegment gamma, MemorySegment beta,
                                       MemorySegment saveMean, MemorySegment saveInvstd,
                                       MemorySegment runMean, MemorySegment runVar, double factor, double eps) {
        long off = c * s * B, stride = cs * s * B;
        Moments acc = new Moments();
        // shift by the channel's first value: a large common offset then costs no float precision
        moments(p, x, off, n, s, stride, x.get(F, off), acc);
        double mean = acc.mean(), var = acc.varBiased();
        double invstd = 1.0 / Math.sqrt(var + eps);
        float meanF = (float) mean;
        double a = invstd * at(gamma, c, 1f);
        // (x - meanF) is exact near the mean; what float rounding took from the mean goes into b
        double b = at(beta, c, 0f) - (mean - meanF) * a;
        affine(p, x, off, y, off, n, s, stride, meanF, (float) a, (float) b);
        saveMean.set(F, c * B, meanF);
        saveInvstd.set(F, c * B, (float) invstd);
        if (runMean != null) {
            double m = acc.count();
            double unbiased = acc.m2() / (m - 1);
            runMean.set(F, c * B, (float) ((1 - factor) * runMean.get(F, c * B) + factor * mean));
            runVar.set(F, c * B, (float) ((1 - factor) * runVar.get(F, c * B) + factor * unbiased));
        }
    }

    /** Inference forward of channel {@code c}: y = (x - running_mean) * a + beta, a = gamma / sqrt(running_var + eps). */
    public static void inferenceChannel(Primitives p, long n, long cs, long s, long c,
                                        MemorySegment x, MemorySegment y, MemorySegment gamma, MemorySegment beta,
                                        MemorySegment runMean, MemorySegment runVar, double eps) {
        long off = c * s * B, stride = cs * s * B;
        float rm = runMean.get(F, c * B);
        double a = at(gamma, c, 1f) / Math.sqrt(runVar.get(F, c * B) + eps);
        affine(p, x, off, y, off, n, s, stride, rm, (float) a, at(beta, c, 0f));
    }

    /**
     * Backward of channel {@code c}, training mode, from the saved mean and invstd: Σdy and Σdy*(x - mean)
     * in one pass, then dx = gamma*invstd*(dy - Σdy/m - xhat*Σ(dy*xhat)/m) in a second. Null outputs
     * are skipped.
     */
    public static void backwardChannel(Primitives p, long n, long cs, long s, long c,
                                       MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                       float mean, float invstd,
                                       MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        long off = c * s * B, stride = cs * s * B;
        GradSums sums = new GradSums();
        gradSums(p, dy, off, x, off, n, s, stride, mean, sums);
        if (dgamma != null) dgamma.set(F, c * B, (float) (sums.sumDyXc * invstd));
        if (dbeta != null) dbeta.set(F, c * B, (float) sums.sumDy);
        if (dx != null) {
            double m = (double) n * s;
            double k = at(gamma, c, 1f) * (double) invstd;
            double q = -k * invstd * invstd * sums.sumDyXc / m;
            double r = -k * sums.sumDy / m;
            gradApply(p, dy, off, x, off, dx, off, n, s, stride, (float) k, (float) q, mean, (float) r);
        }
    }

    /**
     * Backward of channel {@code c}, inference mode (statistics were constants): dx = dy * gamma *
     * invstd_running; dgamma = Σ dy * (x - running_mean) * invstd_running; dbeta = Σ dy.
     */
    public static void backwardInferenceChannel(Primitives p, long n, long cs, long s, long c,
                                                MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                                MemorySegment runMean, MemorySegment runVar, double eps,
                                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        long off = c * s * B, stride = cs * s * B;
        double invstd = 1.0 / Math.sqrt(runVar.get(F, c * B) + eps);
        if (dgamma != null || dbeta != null) {
            GradSums sums = new GradSums();
            gradSums(p, dy, off, x, off, n, s, stride, runMean.get(F, c * B), sums);
            if (dgamma != null) dgamma.set(F, c * B, (float) (sums.sumDyXc * invstd));
            if (dbeta != null) dbeta.set(F, c * B, (float) sums.sumDy);
        }
        if (dx != null) {
            affine(p, dy, off, dx, off, n, s, stride, 0f, (float) (at(gamma, c, 1f) * invstd), 0f);
        }
    }

    // The primitives over n runs of s floats; a run longer than MAX_RUN is cut into pieces.

    static void moments(Primitives p, MemorySegment x, long off, long n, long s, long stride, float shift, Moments acc) {
        if (s <= MAX_RUN) {
            p.moments(x, off, n, (int) s, stride, shift, acc);
            return;
        }
        for (long r = 0; r < n; r++) {
            for (long i = 0; i < s; i += MAX_RUN) {
                p.moments(x, off + r * stride + i * B, 1, (int) Math.min(MAX_RUN, s - i), 0, shift, acc);
            }
        }
    }

    static void affine(Primitives p, MemorySegment x, long xOff, MemorySegment y, long yOff,
                       long n, long s, long stride, float c, float a, float b) {
        if (s <= MAX_RUN) {
            p.affine(x, xOff, y, yOff, n, (int) s, stride, c, a, b);
            return;
        }
        for (long r = 0; r < n; r++) {
            for (long i = 0; i < s; i += MAX_RUN) {
                long d = r * stride + i * B;
                p.affine(x, xOff + d, y, yOff + d, 1, (int) Math.min(MAX_RUN, s - i), 0, c, a, b);
            }
        }
    }

    static void gradSums(Primitives p, MemorySegment dy, long dyOff, MemorySegment x, long xOff,
                         long n, long s, long stride, float c, GradSums acc) {
        if (s <= MAX_RUN) {
            p.gradSums(dy, dyOff, x, xOff, n, (int) s, stride, c, acc);
            return;
        }
        for (long r = 0; r < n; r++) {
            for (long i = 0; i < s; i += MAX_RUN) {
                long d = r * stride + i * B;
                p.gradSums(dy, dyOff + d, x, xOff + d, 1, (int) Math.min(MAX_RUN, s - i), 0, c, acc);
            }
        }
    }

    static void gradApply(Primitives p, MemorySegment dy, long dyOff, MemorySegment x, long xOff,
                          MemorySegment dx, long dxOff, long n, long s, long stride,
                          float k, float q, float c, float r) {
        if (s <= MAX_RUN) {
            p.gradApply(dy, dyOff, x, xOff, dx, dxOff, n, (int) s, stride, k, q, c, r);
            return;
        }
        for (long j = 0; j < n; j++) {
            for (long i = 0; i < s; i += MAX_RUN) {
                long d = j * stride + i * B;
                p.gradApply(dy, dyOff + d, x, xOff + d, dx, dxOff + d, 1, (int) Math.min(MAX_RUN, s - i), 0, k, q, c, r);
            }
        }
    }
}
