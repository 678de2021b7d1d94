package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

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
 * wide D do the same. {@link #accumulate} is that scheme for any per-column sums (BatchNorm's column
 * path adds its statistics and backward sums with it).
 */
final class ColumnSums {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;
    /** Columns per tile: two float accumulators of this width stay in L1. */
    static final int COLS = 2048;
    /** Rows summed in float before a flush to double: float error grows with at most this many terms. */
    static final int ROW_BLOCK = 32;
    /** Bands aimed at: enough work items for the row pass fused with these sums ({@link RowGrads}). */
    static final long TARGET_BANDS = 32;

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
     * The column sums in double, {sumG, sumB} (null where not wanted): column j's at index j of the calling
     * thread's scratch ({@link Scratch#doubles} slots 0 and 1, longer than d; valid until its next call).
     * center (null = 0) and scale hold one float per segment, {@code r * (d/seg) + j/seg}; seg divides d.
     */
    static double[][] sums(Primitives p, long m, long d, long seg, MemorySegment dy, MemorySegment x,
                           MemorySegment center, MemorySegment scale, boolean wantG, boolean wantB, Loop loop) {
        assert d % seg == 0 : "segments tile the row";
        long bands = ceilDiv(m, band(m, d)), segs = d / seg;
        double[] partG = wantG ? Scratch.doubles(0, bands * d) : null;
        double[] partB = wantB ? Scratch.doubles(1, bands * d) : null;
        accumulate(m, d, (r0, r1, j0, w, accG, accB) -> {
            long j1 = j0 + w;
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
            }
        }, partG, partB, null, loop);
        return combine(partG, partB, bands, d, loop);
    }

    /**
     * What a tile adds up from one block of rows: rows [r0, r1) (at most {@link #ROW_BLOCK}), columns
     * [j0, j0 + w), in float, into {@code acc0[i]} and {@code acc1[i]} for column j0 + i (null: not wanted).
     */
    @FunctionalInterface
    interface Rows {
        void accumulate(long r0, long r1, long j0, int w, float[] acc0, float[] acc1);
    }

    /** Bands of an (m, d) matrix. */
    static long bands(long m, long d) {
        return ceilDiv(m, band(m, d));
    }

    /**
     * Column sums of one or two quantities over the rows of an (m, d) matrix, left as per-band double
     * partials {@code part0[b*d + j]}, {@code part1[b*d + j]} (null: not wanted; otherwise at least
     * {@code bands(m, d) * d} long, any content: a tile overwrites its own). One work item per tile of
     * {@link #COLS} columns by a band of rows; a tile adds its rows {@link #ROW_BLOCK} at a time in float
     * and flushes each block into its partials. Tiles whose column tile {@code t} has {@code tiles[t]}
     * false are skipped (null: none), their partials left as they were.
     */
    static void accumulate(long m, long d, Rows rows, double[] part0, double[] part1, boolean[] tiles, Loop loop) {
        long band = band(m, d), bands = ceilDiv(m, band), tilesPerBand = ceilDiv(d, COLS);
        assert part0 == null || part0.length >= bands * d;
        assert part1 == null || part1.length >= bands * d;
        loop.forEach(bands * tilesPerBand, item -> {
            long b = item / tilesPerBand, t = item % tilesPerBand;
            if (tiles == null || tiles[(int) t]) tile(m, d, band, b, t, rows, part0, part1);
        });
    }

    /** One tile: rows of band {@code b}, columns of tile {@code t}; leaves its sums in the band's partials. */
    private static void tile(long m, long d, long band, long b, long t, Rows rows, double[] part0, double[] part1) {
        long j0 = t * COLS;
        int w = (int) Math.min(COLS, d - j0), base = (int) (b * d + j0);
        float[] acc0 = part0 == null ? null : Scratch.taskFloats(0, w);
        float[] acc1 = part1 == null ? null : Scratch.taskFloats(1, w);
        start(acc0, part0, base, w);
        start(acc1, part1, base, w);
        long r0 = b * band, r1 = Math.min(m, r0 + band);
        for (long r = r0; r < r1; r += ROW_BLOCK) {
            rows.accumulate(r, Math.min(r1, r + ROW_BLOCK), j0, w, acc0, acc1);
            flush(acc0, part0, base, w);
            flush(acc1, part1, base, w);
        }
    }

    /** Clears a tile's partials before its first block (its float accumulators come zeroed). */
    private static void start(float[] acc, double[] part, int base, int w) {
        if (acc == null) return;
        Arrays.fill(part, base, base + w, 0.0);
    }

    /** Columns per work item of {@link #combine}: a few items even for LayerNorm's rows of 768. */
    static final int COMBINE_COLS = 256;

    /**
     * The bands' partials added in band order, column by column (the same order for any split), in place: the
     * totals of column j are left in {@code part[j]} (band 0's slots) and the arrays returned, {totals of
     * partG, totals of partB} (null where null). No allocation: these are the caller's scratch.
     */
    static double[][] combine(double[] partG, double[] partB, long bands, long d, Loop loop) {
        loop.forEach(ceilDiv(d, COMBINE_COLS), t -> {
            int j0 = (int) (t * COMBINE_COLS), j1 = (int) Math.min(d, j0 + COMBINE_COLS);
            // band by band over contiguous columns (each column adds its bands in band order, from 0, as
            // combineInto does: 0 + band 0, so a -0 total comes out as +0 there too)
            if (partG != null) fromZero(partG, j0, j1);
            if (partB != null) fromZero(partB, j0, j1);
            for (long b = 1; b < bands; b++) {
                int base = (int) (b * d);
                if (partG != null) addInto(partG, 0, partG, base, j0, j1);
                if (partB != null) addInto(partB, 0, partB, base, j0, j1);
            }
        });
        return new double[][] {partG, partB};
    }

    /** {@code v[j] = 0 + v[j]}: the first step of a sum from zero (a -0 becomes +0). */
    private static void fromZero(double[] v, int j0, int j1) {
        for (int j = j0; j < j1; j++) v[j] = 0.0 + v[j];
    }

    /**
     * {@link #combine}, written as floats into dgamma and dbeta (either may be null), without the call's
     * double arrays: each work item adds its columns' band partials (in band order, from 0, as combine
     * does) into the thread's scratch and writes its columns. The same bits as combine.
     */
    static void combineInto(double[] partG, double[] partB, long bands, long d, MemorySegment dgamma,
                            MemorySegment dbeta, Loop loop) {
        loop.forEach(ceilDiv(d, COMBINE_COLS), t -> {
            int j0 = (int) (t * COMBINE_COLS), j1 = (int) Math.min(d, j0 + COMBINE_COLS);
            double[] sums = Scratch.task().columns;
            // dgamma's totals at [0, COMBINE_COLS), dbeta's at [COMBINE_COLS, 2 * COMBINE_COLS), column j at j - j0
            Arrays.fill(sums, 0.0);
            for (long b = 0; b < bands; b++) {
                int base = (int) (b * d);
                if (partG != null) addInto(sums, -j0, partG, base, j0, j1);
                if (partB != null) addInto(sums, COMBINE_COLS - j0, partB, base, j0, j1);
            }
            for (int j = j0; j < j1; j++) {
                if (dgamma != null) dgamma.set(F, j * B, (float) sums[j - j0]);
                if (dbeta != null) dbeta.set(F, j * B, (float) sums[COMBINE_COLS + j - j0]);
            }
        });
    }

    /** Writes column sums as floats into dgamma and dbeta (either may be null). */
    static void write(double[][] sums, long d, MemorySegment dgamma, MemorySegment dbeta) {
        for (long j = 0; j < d; j++) {
            if (dgamma != null) dgamma.set(F, j * B, (float) sums[0][(int) j]);
            if (dbeta != null) dbeta.set(F, j * B, (float) sums[1][(int) j]);
        }
    }

    /** {@code sum[shift + j] += part[base + j]} for j in [j0, j1). */
    private static void addInto(double[] sum, int shift, double[] part, int base, int j0, int j1) {
        for (int j = j0; j < j1; j++) sum[shift + j] += part[base + j];
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
