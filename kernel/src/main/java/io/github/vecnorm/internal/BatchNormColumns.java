package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * BatchNorm with a small spatial size S (BatchNorm1d on (N, C) has S = 1), every pass in memory order.
 * Channel by channel, a channel is N runs of S floats, C*S floats apart, so with S below a cache line
 * every channel touches every line of x: 65536x256x1 training forward took 460 ms that way, 6.7 ms
 * here (single thread). Here x is an (N, D = C*S) row-major matrix:
 * <ul>
 *   <li>reductions add down the columns with {@link ColumnSums#accumulate}: vector lanes across
 *   consecutive columns, float per column for {@link ColumnSums#ROW_BLOCK} rows, then into per-band
 *   double partials; a channel's total is its S columns' partials added in double, band by band within
 *   a column, column by column;</li>
 *   <li>element-wise passes run row by row with per-column coefficient vectors, the per-channel ones
 *   expanded once per call into the calling thread's {@link Scratch}.</li>
 * </ul>
 * Work items (tiles, groups of rows) depend only on the shape, so results do not depend on the
 * {@link Loop}; every column goes through the same float operations in either implementation, so the
 * Vector API and the scalar twin give the same bits.
 *
 * <p>Statistics are sums of the values shifted by the channel's first value x[0, c, 0] (Σv, Σv² per
 * column); a large common offset then costs nothing. If that first value lies far out in its channel
 * ((mean - shift)^2 > 16 var, when Σv² - (Σv)²/m would cancel), the channel's columns are added up again,
 * shifted by the mean just found, as {@link BatchNormOps#shiftedMoments} does.
 *
 * <p>Scratch floats ({@link #scratchFloats}): the per-channel coefficients at [0, COEFS*C) as the
 * memory-order path leaves them, then four per-column vectors of D floats from {@code e = COEFS*C} on
 * (coefficient k of column j at {@code e + k*D + j}); the reductions use the first of them for the
 * per-column shift or center.
 */
final class BatchNormColumns {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;
    private static final int COEFS = BatchNormOps.COEFS;
    /** As {@link BatchNormOps#shiftedMoments}: a shift further than this many sigmas from the mean is redone. */
    private static final double RESHIFT_SIGMAS = 4;

    /** Runs shorter than this (a 64-byte cache line of floats) always take the column path. */
    static final int LINE_FLOATS = 16;
    /** Longer runs take it below this spatial size, from {@link #MIN_ROWS} rows, up to {@link #MAX_WIDE} columns. */
    static final int MAX_S = 32;
    static final long MIN_ROWS = 64;
    static final long MAX_WIDE = 1 << 15;
    /** Widest row (C*S floats) the column path takes: its per-thread scratch (4 floats a column) is kept. */
    static final long MAX_COLUMNS = 1 << 22;
    /** Floats an element-wise work item covers at least (whole rows): amortizes the per-item cost. */
    static final long ITEM_FLOATS = 1 << 14;

    private BatchNormColumns() {
    }

    /**
     * Whether an (n, cs, s) tensor takes the column path. It costs O(C*S) per call (shifts and coefficients
     * expanded, double partials cleared and flushed every 32 rows) and reads per-column coefficients on
     * every row, so it pays off when a channel's runs waste cache lines or calls, and rows are many.
     * Measured single-threaded, training forward, speed-up over the channel path of the time (inference and
     * backward gain alike or more): S = 1..15 always (65536x256x1 69x, 8192x64x4 10x, 8x8192x4 2.7x,
     * 1x65536x3 1.2x); S = 16..63 from 64 rows on (2048x64x16 2.4x, 1024x32x36 1.8x, 64x512x63 1.6x,
     * 64x256x48 0.9x) but not with few rows (16x2048x32 0.65x, 4x2048x49 0.35x) nor very wide rows
     * (64x2048x49 0.9x). Since short runs are summed in memory order a sample at a time
     * ({@link Primitives#centredSumsRuns}), the column path keeps S = 16..31 only: JMH, 1 thread, training /
     * inference / backward in ms, column path against memory order: 2048x64x16 0.49-0.62 / 0.23-0.25 /
     * 1.10-1.18 against 0.64-0.79 / 0.45 / 1.05-1.10; 256x128x25 0.24 / 0.13 / 0.33-0.35 against 0.31 / 0.16 /
     * 0.40; but 128x128x32 0.17 / 0.09 / 0.22 against 0.12 / 0.056 / 0.16, 128x128x36 0.19 / 0.10 / 0.25
     * against 0.15 / 0.077 / 0.21, 64x256x48 0.29-0.30 / 0.14 / 0.38-0.40 against 0.15 / 0.070 / 0.20-0.21,
     * 64x512x63 0.77-0.81 / 0.38 / 1.30-1.33 against 0.43 / 0.20 / 0.65-0.68 (1024x32x36: level).
     */
    static boolean applies(long n, long cs, long s) {
        long d = cs * s;
        return s < LINE_FLOATS ? d <= MAX_COLUMNS : s < MAX_S && n >= MIN_ROWS && d <= MAX_WIDE;
    }

    /** Scratch floats a call on the column path needs. */
    static long scratchFloats(long cs, long s) {
        return COEFS * cs + 4 * cs * s;
    }

    /** The per-channel value {@code coef[COEFS*c + k]} repeated over the channel's columns, at e + k*D. */
    private static void expand(float[] coef, long cs, long s, int k) {
        int e = (int) (COEFS * cs), d = (int) (cs * s);
        for (int c = 0; c < cs; c++) {
            float v = coef[COEFS * c + k];
            int from = e + k * d + (int) (c * s);
            for (int t = 0; t < s; t++) coef[from + t] = v;
        }
    }

    /** A per-channel segment value repeated over the channel's columns, at e. */
    private static void expand(MemorySegment seg, long cs, long s, float[] coef) {
        int e = (int) (COEFS * cs);
        for (int c = 0; c < cs; c++) {
            float v = seg.get(F, c * B);
            int from = e + (int) (c * s);
            for (int t = 0; t < s; t++) coef[from + t] = v;
        }
    }

    /** Σ over channel c's S columns (in order) of Σ over bands (in order) of the partials. */
    private static double total(double[] part, long bands, long d, long c, long s) {
        double sum = 0;
        for (long j = c * s; j < (c + 1) * s; j++) {
            double col = 0;
            for (long b = 0; b < bands; b++) col += part[(int) (b * d + j)];
            sum += col;
        }
        return sum;
    }

    /**
     * Training statistics of every channel (the column form of {@link BatchNormOps#memoryOrderStats}):
     * Σ(x - shift) and Σ(x - shift)² per column, shift = the channel's first value; the outputs and the
     * per-channel affine by {@link BatchNormOps#finishStats}.
     */
    static void trainingStats(Primitives p, long n, long cs, long s, MemorySegment x,
                              MemorySegment gamma, MemorySegment beta, MemorySegment saveMean, MemorySegment saveInvstd,
                              MemorySegment runMean, MemorySegment runVar, double factor, double eps,
                              float[] coef, Loop loop) {
        long d = cs * s, bands = ColumnSums.bands(n, d);
        int e = (int) (COEFS * cs);
        for (long c = 0; c < cs; c++) {
            float first = x.get(F, c * s * B);
            for (int t = 0; t < s; t++) coef[(int) (e + c * s + t)] = first;
        }
        double[] sum = Scratch.doubles(0, bands * d), sq = Scratch.doubles(1, bands * d);
        ColumnSums.Rows rows = (r0, r1, j0, w, acc0, acc1) -> p.columnMoments(x, (r0 * d + j0) * B,
                (int) (r1 - r0), w, d * B, coef, (int) (e + j0), acc0, acc1, 0);
        ColumnSums.accumulate(n, d, rows, sum, sq, null, loop);
        // coef[COEFS*c + 3] (the affine leaves it free) marks a channel whose shift must be redone
        double m = (double) n * s, inv = 1.0 / m, invUnbiased = 1.0 / (m - 1);
        loop.forEach(cs, c -> coef[(int) (COEFS * c + 3)] = finishStats(cs, s, c, bands, sum, sq, true, inv,
                invUnbiased, gamma, beta, saveMean, saveInvstd, runMean, runVar, factor, eps, coef) ? 1f : 0f);
        boolean[] tiles = null;
        for (long c = 0; c < cs; c++) {
            if (coef[(int) (COEFS * c + 3)] == 0f) continue;
            if (tiles == null) tiles = new boolean[(int) ColumnSums.ceilDiv(d, ColumnSums.COLS)];
            for (long t = c * s / ColumnSums.COLS; t <= ((c + 1) * s - 1) / ColumnSums.COLS; t++) tiles[(int) t] = true;
        }
        if (tiles == null) return;
        // rare: again over the tiles with such a channel; the other channels' columns come out as before
        ColumnSums.accumulate(n, d, rows, sum, sq, tiles, loop);
        loop.forEach(cs, c -> {
            if (coef[(int) (COEFS * c + 3)] != 0f) {
                finishStats(cs, s, c, bands, sum, sq, false, inv, invUnbiased, gamma, beta, saveMean, saveInvstd,
                        runMean, runVar, factor, eps, coef);
            }
        });
    }

    /**
     * Channel c from its shifted sums over m = N*S values ({@code inv = 1/m}, {@code invUnbiased = 1/(m - 1)},
     * taken once a call): its outputs, or, on a first pass whose shift lies too far out, nothing but the
     * channel's new shift (the mean just found); returns whether it did the latter.
     */
    private static boolean finishStats(long cs, long s, long c, long bands, double[] sum, double[] sq,
                                       boolean firstPass, double inv, double invUnbiased, MemorySegment gamma,
                                       MemorySegment beta, MemorySegment saveMean, MemorySegment saveInvstd,
                                       MemorySegment runMean, MemorySegment runVar, double factor, double eps,
                                       float[] coef) {
        long d = cs * s;
        int from = (int) (COEFS * cs + c * s);
        double sv = total(sum, bands, d, c, s), qv = total(sq, bands, d, c, s);
        double dm = sv * inv; // mean - shift
        double m2 = Math.max(0.0, qv - sv * dm);
        if (firstPass && dm * dm > RESHIFT_SIGMAS * RESHIFT_SIGMAS * (m2 * inv)) {
            float centre = (float) (coef[from] + dm);
            for (int t = 0; t < s; t++) coef[from + t] = centre;
            return true;
        }
        BatchNormOps.finishStats(c, coef[from] + dm, m2, inv, invUnbiased, gamma, beta, saveMean, saveInvstd,
                runMean, runVar, factor, eps, coef);
        return false;
    }

    /** out = fma(in - center, a, b) row by row, the per-channel (center, a, b) at coef[COEFS*c ..]. */
    static void affine(Primitives p, long n, long cs, long s, MemorySegment in, MemorySegment out,
                       float[] coef, Loop loop) {
        for (int k = 0; k < 3; k++) expand(coef, cs, s, k);
        int e = (int) (COEFS * cs), d = (int) (cs * s);
        byRows(n, d, (off, rows) -> p.columnAffine(in, off, out, off, rows, d, d * B, coef, e, d), loop);
    }

    /** dx = fma(p, dy, fma(q, x - c, r)) row by row, the per-channel (p, q, c, r) at coef[COEFS*c ..]. */
    static void gradApply(Primitives p, long n, long cs, long s, MemorySegment dy, MemorySegment x, MemorySegment dx,
                          float[] coef, Loop loop) {
        for (int k = 0; k < 4; k++) expand(coef, cs, s, k);
        int e = (int) (COEFS * cs), d = (int) (cs * s);
        byRows(n, d, (off, rows) -> p.columnGradApply(dy, off, x, off, dx, off, rows, d, d * B, coef, e, d), loop);
    }

    /** An element-wise piece: {@code rows} whole rows from byte offset {@code off}. */
    @FunctionalInterface
    private interface RowPiece {
        void run(long off, int rows);
    }

    /** The n rows of d floats in work items of whole rows, at least {@link #ITEM_FLOATS} floats each. */
    private static void byRows(long n, long d, RowPiece piece, Loop loop) {
        long rows = Math.max(1, ITEM_FLOATS / d);
        loop.forEach(ColumnSums.ceilDiv(n, rows), i -> piece.run(i * rows * d * B, (int) Math.min(rows, n - i * rows)));
    }

    /**
     * Per-band column partials of Σdy and Σdy*(x - center), center one float per channel (expanded into
     * coef's first per-column vector).
     */
    private static void centeredSums(Primitives p, long n, long cs, long s, MemorySegment dy, MemorySegment x,
                                     MemorySegment center, float[] coef, double[] sumDy, double[] sumDyXc, Loop loop) {
        long d = cs * s;
        int e = (int) (COEFS * cs);
        expand(center, cs, s, coef);
        ColumnSums.accumulate(n, d, (r0, r1, j0, w, acc0, acc1) -> {
            long off = (r0 * d + j0) * B;
            p.columnCenteredSums(dy, off, x, off, (int) (r1 - r0), w, d * B, coef, (int) (e + j0), acc0, acc1, 0);
        }, sumDy, sumDyXc, null, loop);
    }

    /**
     * Training-mode backward sums of every channel (the column form of {@link BatchNormOps#memoryOrderSums}
     * and {@link BatchNormOps#finishBackward}): dgamma, dbeta and, when coef is wanted ({@code withDx}), dx's per-channel coefficients.
     */
    static void backwardSums(Primitives p, long n, long cs, long s, MemorySegment dy, MemorySegment x,
                             MemorySegment gamma, MemorySegment saveMean, MemorySegment saveInvstd,
                             MemorySegment dgamma, MemorySegment dbeta, boolean withDx, float[] coef, Loop loop) {
        long d = cs * s, bands = ColumnSums.bands(n, d);
        double[] sumDy = Scratch.doubles(0, bands * d), sumDyXc = Scratch.doubles(1, bands * d);
        centeredSums(p, n, cs, s, dy, x, saveMean, coef, sumDy, sumDyXc, loop);
        double m = (double) n * s;
        loop.forEach(cs, c -> BatchNormOps.finishBackward(c, total(sumDy, bands, d, c, s), total(sumDyXc, bands, d, c, s),
                m, saveMean.get(F, c * B), saveInvstd.get(F, c * B), gamma, dgamma, dbeta, withDx ? coef : null));
    }

    /** Inference-mode dgamma and dbeta (the column form of {@link BatchNormOps#backwardInferenceSums}). */
    static void inferenceSums(Primitives p, long n, long cs, long s, MemorySegment dy, MemorySegment x,
                              MemorySegment runMean, MemorySegment runVar, double eps,
                              MemorySegment dgamma, MemorySegment dbeta, float[] coef, Loop loop) {
        long d = cs * s, bands = ColumnSums.bands(n, d);
        double[] sumDy = Scratch.doubles(0, bands * d), sumDyXc = Scratch.doubles(1, bands * d);
        centeredSums(p, n, cs, s, dy, x, runMean, coef, sumDy, sumDyXc, loop);
        loop.forEach(cs, c -> BatchNormOps.finishInferenceSums(c, total(sumDy, bands, d, c, s),
                total(sumDyXc, bands, d, c, s), runVar, eps, dgamma, dbeta));
    }
}
