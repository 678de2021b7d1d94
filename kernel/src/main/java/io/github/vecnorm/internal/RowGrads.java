package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Backward of the row layers: LayerNorm (center = saved mean, with the mean term) and RMSNorm
 * (center 0, no mean term). dx row by row from the saved statistics; dgamma and dbeta as
 * {@link ColumnSums} defines them. When both are wanted and a row's accumulators fit in L2, one pass
 * does both (each row read once from memory): a work item is a row band of {@link ColumnSums#band}, whose
 * rows are accumulated exactly as a ColumnSums tile would, so dgamma and dbeta have the same bits
 * whether or not dx is requested, and for every thread count.
 */
final class RowGrads {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;
    /** Widest row fused: two float accumulators of 8192 columns (64 KiB) stay in L2 while a band is walked. */
    static final long FUSE_MAX_D = 8192;

    private RowGrads() {
    }

    /**
     * dx = rs*(w*dy - meanTerm*Σ(w*dy)/D) - rs³*(x - c)*Σ(w*dy*(x - c))/D per row, with c = center[r] (null: 0)
     * and rs = scale[r]; dgamma = Σ_r dy*(x - c)*rs, dbeta = Σ_r dy. Null outputs are not computed.
     */
    static void backward(Primitives p, long m, long d, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                         MemorySegment center, MemorySegment scale, boolean meanTerm,
                         MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        boolean sums = dgamma != null || dbeta != null;
        if (dx != null && sums && d <= FUSE_MAX_D) {
            fused(p, m, d, dy, x, gamma, center, scale, meanTerm, dx, dgamma, dbeta, loop);
            return;
        }
        // parameter gradients first: dx may overwrite dy
        ColumnSums.run(p, m, d, dy, x, center, scale, dgamma, dbeta, loop);
        if (dx == null) return;
        // bands of rows (a row's dx depends only on the row), so that a work item takes its scratch once
        long band = LayerNormOps.band(d);
        loop.forEach(ColumnSums.ceilDiv(m, band), b -> {
            GradSums s = Scratch.task().grads;
            for (long r = b * band, r1 = Math.min(m, r + band); r < r1; r++) {
                rowDx(p, d, r, dy, x, gamma, at(center, r), scale.get(F, r * B), meanTerm, dx, s);
            }
        });
    }

    private static float at(MemorySegment center, long r) {
        return center == null ? 0f : center.get(F, r * B);
    }

    private static void fused(Primitives p, long m, long d, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                              MemorySegment center, MemorySegment scale, boolean meanTerm,
                              MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        long band = ColumnSums.band(m, d), bands = ColumnSums.ceilDiv(m, band);
        double[] partG = dgamma == null ? null : Scratch.doubles(0, bands * d);
        double[] partB = dbeta == null ? null : Scratch.doubles(1, bands * d);
        loop.forEach(bands, b -> {
            int w = (int) d, base = (int) (b * d);
            float[] accG = partG == null ? null : Scratch.taskFloats(0, w);
            float[] accB = partB == null ? null : Scratch.taskFloats(1, w);
            // the band clears its own partials (in its task, in parallel, and into its cache)
            if (partG != null) Arrays.fill(partG, base, base + w, 0.0);
            if (partB != null) Arrays.fill(partB, base, base + w, 0.0);
            long r0 = b * band, r1 = Math.min(m, r0 + band);
            GradSums sums = Scratch.task().grads;
            for (long r = r0; r < r1; r++) {
                float c = at(center, r), rs = scale.get(F, r * B);
                long off = r * d * B;
                if (gamma != null && accG != null) {
                    // one pass for dx and the column sums (each dy read before its dx is written); accB may be
                    // null (RMSNorm, no dbeta). RMSNorm had taken three passes (column sums, dx's sums, dx).
                    GradSums s = Runs.rowGradSums(p, dy, off, x, off, gamma, 0, d, c, sums.reset());
                    p.rowGradApplyColumns(dy, off, x, off, gamma, 0, dx, off, w, rs, q(s, rs, d), c,
                            k(s, rs, d, meanTerm), rs, accB, accG, 0);
                } else {
                    // the column sums read dy before dx may overwrite it
                    p.columnGradSums(dy, off, x, off, w, c, rs, accB, accG, 0);
                    rowDx(p, d, r, dy, x, gamma, c, rs, meanTerm, dx, sums);
                }
                if ((r - r0) % ColumnSums.ROW_BLOCK == ColumnSums.ROW_BLOCK - 1 || r == r1 - 1) {
                    ColumnSums.flush(accG, partG, base, w);
                    ColumnSums.flush(accB, partB, base, w);
                }
            }
        });
        ColumnSums.combineInto(partG, partB, bands, d, dgamma, dbeta, loop);
    }

    /**
     * dx of one row from its center {@code c} and scale {@code rs}: sums (into {@code s}, scratch: reset
     * here), then the element-wise pass.
     */
    static void rowDx(Primitives p, long d, long r, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                      float c, double rs, boolean meanTerm, MemorySegment dx, GradSums s) {
        long off = r * d * B;
        s.reset();
        if (gamma == null) {
            Runs.gradSums(p, dy, off, x, off, d, c, s);
        } else {
            Runs.rowGradSums(p, dy, off, x, off, gamma, 0, d, c, s);
        }
        float q = q(s, rs, d);
        float k = k(s, rs, d, meanTerm);
        if (gamma == null) {
            Runs.gradApply(p, dy, off, x, off, dx, off, d, (float) rs, q, c, k);
        } else {
            Runs.rowGradApply(p, dy, off, x, off, gamma, 0, dx, off, d, (float) rs, q, c, k);
        }
    }

    /** dx's coefficient of (x - c): -rs³ * Σ g*(x - c) / d. */
    private static float q(GradSums s, double rs, long d) {
        return (float) (-rs * rs * rs * s.sumDyXc / d);
    }

    /** dx's constant: -rs * Σ g / d with the mean term (LayerNorm), 0 without (RMSNorm). */
    private static float k(GradSums s, double rs, long d, boolean meanTerm) {
        return meanTerm ? (float) (-rs * s.sumDy / d) : 0f;
    }
}
