package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * LayerNorm bodies composed of the {@link Primitives}. No validation here: {@code io.github.vecnorm.LayerNorm}
 * guards every argument first. The input is M rows of D contiguous floats; each row is one work item
 * (statistics, then the element-wise pass while the row is still in cache), so results do not depend on
 * the {@link Loop}. The backward is {@link RowGrads}.
 */
public final class LayerNormOps {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;

    private LayerNormOps() {
    }

    /** Forward: per row, mean and rstd = 1/sqrt(var + eps), y = (x - mean) * rstd * gamma + beta; mean/rstd saved if not null. */
    public static void forward(Primitives p, long m, long d, MemorySegment x, MemorySegment y,
                               MemorySegment gamma, MemorySegment beta, MemorySegment mean, MemorySegment rstd,
                               double eps, Loop loop) {
        loop.forEach(m, r -> forwardRow(p, d, r, x, y, gamma, beta, mean, rstd, eps));
    }

    /** One row: Welford moments shifted by the row's first value, then the affine pass. */
    static void forwardRow(Primitives p, long d, long r, MemorySegment x, MemorySegment y,
                           MemorySegment gamma, MemorySegment beta, MemorySegment mean, MemorySegment rstd, double eps) {
        long off = r * d * B;
        Moments acc = new Moments();
        BatchNormOps.shiftedMoments(p, x, off, 1, d, 0, acc);
        double mu = acc.mean();
        double rs = 1.0 / Math.sqrt(Math.max(acc.varBiased(), 0.0) + eps);
        float muF = (float) mu;
        float a = (float) rs;
        // (x - muF) is exact near the mean; what float rounding took from the mean goes into b
        float b = (float) (-(mu - muF) * rs);
        if (gamma == null && beta == null) {
            Runs.affine(p, x, off, y, off, d, muF, a, b);
        } else {
            Runs.rowAffine(p, x, off, y, off, d, muF, a, b, gamma, beta, 0);
        }
        if (mean != null) mean.set(F, r * B, muF);
        if (rstd != null) rstd.set(F, r * B, a);
    }

    /**
     * Backward from the saved mean and rstd: with g = gamma*dy and xhat = (x - mean)*rstd,
     * dx = rstd * (g - mean(g) - xhat * mean(g*xhat)), dgamma = Σ_rows dy*xhat, dbeta = Σ_rows dy.
     * Null outputs are not computed.
     */
    public static void backward(Primitives p, long m, long d, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                MemorySegment mean, MemorySegment rstd,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        RowGrads.backward(p, m, d, dy, x, gamma, mean, rstd, true, dx, dgamma, dbeta, loop);
    }
}
