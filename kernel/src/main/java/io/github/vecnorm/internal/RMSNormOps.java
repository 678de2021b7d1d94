package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * RMSNorm bodies composed of the {@link Primitives}: {@code y = x * rstd * gamma} with
 * {@code rstd = 1/sqrt(mean(x²) + eps)} over each row of D floats. No validation here
 * ({@code io.github.vecnorm.RMSNorm} guards). One row per work item.
 */
public final class RMSNormOps {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;

    private RMSNormOps() {
    }

    /** Forward; rstd saved per row when not null. */
    public static void forward(Primitives p, long m, long d, MemorySegment x, MemorySegment y, MemorySegment gamma,
                               MemorySegment rstd, double eps, Loop loop) {
        loop.forEach(m, r -> {
            long off = r * d * B;
            // Σx² of non-negative terms: no cancellation, float lanes are fine; the mean and eps in double
            double rs = 1.0 / Math.sqrt(Runs.sumSquares(p, x, off, d) / d + eps);
            float a = (float) rs;
            if (gamma == null) {
                Runs.affine(p, x, off, y, off, d, 0f, a, 0f);
            } else {
                Runs.rowAffine(p, x, off, y, off, d, 0f, a, 0f, gamma, null, 0);
            }
            if (rstd != null) rstd.set(F, r * B, a);
        });
    }

    /**
     * Backward from the saved rstd: with g = gamma*dy, dx = rstd*g - rstd³/D * x * Σ(g*x),
     * dgamma = Σ_rows dy * x * rstd. Null outputs are not computed.
     */
    public static void backward(Primitives p, long m, long d, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                MemorySegment rstd, MemorySegment dx, MemorySegment dgamma, Loop loop) {
        // the LayerNorm formula without the mean terms: center 0, no Σg term
        RowGrads.backward(p, m, d, dy, x, gamma, null, rstd, false, dx, dgamma, null, loop);
    }
}
