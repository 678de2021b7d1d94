package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * LayerNorm bodies composed of the {@link Primitives}. No validation here: {@code io.github.vecnorm.LayerNorm}
 * guards every argument first. The input is M rows of D contiguous floats; a work item is a band of rows
 * (a function of D only), each row's statistics then its element-wise pass while the row is in cache. A
 * row's result depends only on the row, so results do not depend on the {@link Loop}. The backward is
 * {@link RowGrads}.
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
        long band = band(d);
        loop.forEach(ColumnSums.ceilDiv(m, band), k -> {
            long r0 = k * band, r1 = Math.min(m, r0 + band);
            Scratch.Task task = Scratch.task();
            if (!SetStats.twoPass(d)) {
                // a row too large for the caches: Welford in one pass, then the row (nothing to pipeline)
                for (long r = r0; r < r1; r++) {
                    Moments acc = task.moments.reset();
                    SetStats.moments(p, x, r * d * B, 1, d, 0, acc, task.centred);
                    writeRow(p, d, r, x, y, gamma, beta, mean, rstd, eps, acc.mean(), acc.varBiased());
                }
                return;
            }
            // software pipelined: the sums of row r + 1 are taken before row r is written, so the latency of
            // their reductions overlaps the (independent) element-wise pass of row r; the sums about a value
            // of the row (SetStats.centredSums) stay in locals (through Moments: ~2% slower, JMH 2048x768)
            CentredSums sums = task.centred;
            float c = SetStats.centredSums(p, x, r0 * d * B, 1, d, 0, sums);
            double sum = sums.sum, squares = sums.sumSquares;
            for (long r = r0; r < r1; r++) {
                double dm = sum / d, mu = c + dm, var = Math.max(0.0, squares - sum * dm) / d;
                if (r + 1 < r1) {
                    c = SetStats.centredSums(p, x, (r + 1) * d * B, 1, d, 0, sums);
                    sum = sums.sum;
                    squares = sums.sumSquares;
                }
                writeRow(p, d, r, x, y, gamma, beta, mean, rstd, eps, mu, var);
            }
        });
    }

    /** Rows per work item: a band's rows are pipelined; about 64 KiB of input, at least one row. */
    static long band(long d) {
        return Math.max(1, Math.min(64, (64 * 1024) / (d * B)));
    }

    /** One row's element-wise pass from its moments (mean mu, biased variance var), and its saved statistics. */
    private static void writeRow(Primitives p, long d, long r, MemorySegment x, MemorySegment y,
                                 MemorySegment gamma, MemorySegment beta, MemorySegment mean, MemorySegment rstd,
                                 double eps, double mu, double var) {
        long off = r * d * B;
        double rs = 1.0 / Math.sqrt(Math.max(var, 0.0) + eps);
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
