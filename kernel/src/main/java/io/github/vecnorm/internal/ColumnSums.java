package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Per-element parameter gradients summed over rows, for an (M, D) matrix whose rows are cut into
 * segments of {@code seg} columns, each segment with its own statistics (center, scale) — one segment
 * per row for LayerNorm and RMSNorm, one per group for GroupNorm with small S:
 * {@code sumG[j] = Σ_r dy[r,j] * (x[r,j] - center[r,j/seg]) * scale[r,j/seg]} and {@code sumB[j] = Σ_r dy[r,j]}.
 *
 * <p>Deterministic whatever the thread count: the matrix is cut into tiles of {@link #COLS} columns by
 * a row band whose height depends only on (M, D); a tile is one work item. Inside a tile, rows are summed
 * in float, {@link #ROW_BLOCK} at a time (every column through the same float operations,
 * {@link Primitives#columnGradSums}), each block flushed into a double partial; the partials of the bands
 * are then added in band order. Bands let many rows of a narrow D spread over threads; columns let a
 * wide D do the same.
 */
final class ColumnSums {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;
    /** Columns per tile: two float accumulators of this width stay in L1. */
    static final int COLS = 2048;
    /** Rows summed in float before a flush to double: float error grows with at most this many terms. */
    static final int ROW_BLOCK = 32;
    /** Bands aimed at: enough work items for the row pass fused with these sums ({@link RowGrads}). */
    static final long TARGET_BANDS = 64;

    private ColumnSums() {
    }

    /**
     * Rows per band for an (m, d) matrix, a function of (m, d) only, a multiple of ROW_BLOCK: about
     * m / TARGET_BANDS, at least ROW_BLOCK, and large enough that the bands' double partials fit an
     * array. Partials then cost at most 1/16 of the bytes of dy and x.
     */
    static long band(long m, long d) {
        long maxBands = Math.max(1, (Integer.MAX_VALUE - 8) / d);
        long band = Math.max(ROW_BLOCK, Math.max(ceilDiv(m, TARGET_BANDS), ceilDiv(m, maxBands)));
        return ceilDiv(band, ROW_BLOCK) * ROW_BLOCK;
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    /**
     * The row layers' dgamma and dbeta (D floats each, either may be null): one segment per row,
     * {@code center} may be null (0); center and scale hold one float per row.
     */
    static void run(Primitives p, long m, long d, MemorySegment dy, MemorySegment x,
                    MemorySegment center, MemorySegment scale, MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        if (dgamma == null && dbeta == null) return;
        write(sums(p, m, d, d, dy, x, center, scale, dgamma != null, dbeta != null, loop), d, dgamma, dbeta);
    }

    /**
     * The column sums in double, {sumG, sumB} (null where not wanted). center (null = 0) and scale hold
     * one float per segment, {@code r * (d/seg) + j/seg}; seg divides d.
     */
    static double[][] sums(Primitives p, long m, long d, long seg, MemorySegment dy, MemorySegment x,
                           MemorySegment center, MemorySegment scale, boolean wantG, boolean wantB, Loop loop) {
        assert d % seg == 0 : "segments tile the row";
        long band = band(m, d);
        long bands = (m + band - 1) / band;
        long tilesPerBand = (d + COLS - 1) / COLS;
        double[] partG = wantG ? Scratch.zeroedDoubles(0, bands * d) : null;
        double[] partB = wantB ? Scratch.zeroedDoubles(1, bands * d) : null;
        loop.forEach(bands * tilesPerBand, t -> tile(p, m, d, seg, band, t / tilesPerBand, t % tilesPerBand,
                dy, x, center, scale, partG, partB));
        return combine(partG, partB, bands, d, loop);
    }

    /** The bands' partials added in band order, column by column: the same order for any split. */
    static double[][] combine(double[] partG, double[] partB, long bands, long d, Loop loop) {
        double[] sumG = partG != null ? new double[(int) d] : null, sumB = partB != null ? new double[(int) d] : null;
        loop.forEach(ceilDiv(d, COLS), t -> {
            long j0 = t * COLS, j1 = Math.min(d, j0 + COLS);
            for (long j = j0; j < j1; j++) {
                if (partG != null) sumG[(int) j] = sumOverBands(partG, bands, d, j);
                if (partB != null) sumB[(int) j] = sumOverBands(partB, bands, d, j);
            }
        });
        return new double[][] {sumG, sumB};
    }

    /** Writes column sums as floats into dgamma and dbeta (either may be null). */
    static void write(double[][] sums, long d, MemorySegment dgamma, MemorySegment dbeta) {
        for (long j = 0; j < d; j++) {
            if (dgamma != null) dgamma.set(F, j * B, (float) sums[0][(int) j]);
            if (dbeta != null) dbeta.set(F, j * B, (float) sums[1][(int) j]);
        }
    }

    private static double sumOverBands(double[] part, long bands, long d, long j) {
        double s = 0;
        for (long b = 0; b < bands; b++) s += part[(int) (b * d + j)];
        return s;
    }

    /** One tile: rows of band {@code b}, columns of tile {@code t}; leaves its sums in the band's partials. */
    private static void tile(Primitives p, long m, long d, long seg, long band, long b, long t,
                             MemorySegment dy, MemorySegment x, MemorySegment center, MemorySegment scale,
                             double[] partG, double[] partB) {
        long j0 = t * COLS, j1 = Math.min(d, j0 + COLS), segs = d / seg;
        int w = (int) (j1 - j0);
        float[] accG = partG == null ? null : Scratch.taskFloats(0, w);
        float[] accB = partB == null ? null : Scratch.taskFloats(1, w);
        long r0 = b * band, r1 = Math.min(m, r0 + band);
        int base = (int) (b * d + j0);
        for (long r = r0; r < r1; r++) {
            // the tile's columns of row r, one piece per segment they cross
            for (long j = j0; j < j1; ) {
                long s = j / seg, end = Math.min(j1, (s + 1) * seg);
                long k = r * segs + s;
                float c = center == null ? 0f : center.get(F, k * B);
                long off = (r * d + j) * B;
                p.columnGradSums(dy, off, x, off, (int) (end - j), c, scale.get(F, k * B), accB, accG, (int) (j - j0));
                j = end;
            }
            if ((r - r0) % ROW_BLOCK == ROW_BLOCK - 1 || r == r1 - 1) {
                flush(accG, partG, base, w);
                flush(accB, partB, base, w);
            }
        }
    }

    /** Adds a block's float sums to the band's double partials and clears them. */
    static void flush(float[] acc, double[] part, int base, int w) {
        if (acc == null) return;
        for (int j = 0; j < w; j++) {
            part[base + j] += acc[j];
            acc[j] = 0f;
        }
    }
}
