package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Weight Normalization bodies ({@code torch._weight_norm}) composed of the {@link Primitives}. No
 * validation here: {@code io.github.vecnorm.WeightNorm} guards every argument first.
 *
 * <p>The tensor v is seen as (A, K, S): K the size of the kept dim, A the product of the dims before
 * it, S the product of those after it. Slice k (one norm, one g) is A runs of S floats, K*S floats
 * apart; the whole-tensor norm (dim = -1) is A = K = 1. Two walks, chosen from the shape alone, so the
 * order of every sum is fixed whatever the {@link Loop}:
 * <ul>
 *   <li>pieces: every slice cut into pieces of about {@link #PIECE} floats (whole runs, or parts of
 *   one long run); each piece is a work item whose sum becomes a double partial, and a slice's
 *   partials are added in piece order. The element-wise pass walks the same pieces.</li>
 *   <li>columns, when A > 1 and S < {@link #COLUMN_S} (e.g. dim = last, where a slice is a column):
 *   v as A rows of D = K*S floats, and narrow rows grouped into super-rows of G = max(1, COLS/D) rows
 *   (G*D floats, so that a row of 3 floats still runs whole vectors); super-columns summed in float
 *   over {@link #ROW_BLOCK} super-rows at a time ({@link Primitives#columnGradSums}), flushed into
 *   double partials per band of {@link #BAND} super-rows; then, per column, bands and the G copies of
 *   the column in order, and the S columns of a slice in order. The element-wise pass goes super-row
 *   by super-row with per-column coefficients repeated G times ({@link Primitives#rowLinear}).</li>
 * </ul>
 */
public final class WeightNormOps {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;
    /** Floats per piece: few enough that a float lane accumulates at most PIECE/lanes terms, many pieces to share. */
    static final int PIECE = 1 << 13;
    /** Runs shorter than this (with more than one run) are walked as columns. */
    static final int COLUMN_S = 64;
    /** Longest row of the column walk (its per-column coefficients are float arrays). */
    static final long COLUMN_MAX_ROW = 1L << 22;
    /** Columns per tile of the column walk: one float accumulator of this width stays in L1. */
    static final int COLS = 2048;
    /** Super-rows per band of the column walk (a multiple of ROW_BLOCK). */
    static final int BAND = 256;
    /** Rows summed in float before a flush to double. */
    static final int ROW_BLOCK = 32;

    private WeightNormOps() {
    }

    /** Forward: norm_k = sqrt(Σ v²) over slice k, w = v * (g_k / norm_k); norm written when not null. */
    public static void forward(Primitives p, long a, long k, long s, MemorySegment v, MemorySegment g,
                               MemorySegment w, MemorySegment norm, Loop loop) {
        boolean cols = columns(a, k, s);
        double[] ss = cols ? columnSums(p, a, k, s, v, v, loop) : pieceSums(p, a, k, s, v, v, loop);
        // the sums (scratch doubles) are read here, before the scratch floats are taken
        float[] scale = Scratch.floats(k);
        for (int j = 0; j < k; j++) {
            double nrm = Math.sqrt(ss[j]);
            // no eps, as ATen: a zero slice gives g/0 = inf (or NaN) and then 0 * inf = NaN
            scale[j] = (float) (g.get(F, j * B) / nrm);
            if (norm != null) norm.set(F, j * B, (float) nrm);
        }
        if (cols) {
            Rows rows = new Rows(a, k * s);
            float[] aCol = rows.perColumn(scale, 0, s);
            loop.forEach(rows.superRows, r -> p.rowLinear(v, rows.off(r), null, 0, w, rows.off(r), rows.len(r), aCol, null, 0));
        } else {
            long per = perSlice(a, s);
            grouped(loop, k * per, group(a, s), (from, to) -> {
                Piece pc = new Piece(a, k, s);
                for (long it = from; it < to; it++) {
                    pc.at(it);
                    p.affine(v, pc.off, w, pc.off, pc.runs, pc.len, pc.stride, 0f, scale[(int) (it / per)], 0f);
                }
            });
        }
    }

    /**
     * Backward from the saved norms: per slice sum_k = Σ gradW*v, gradG_k = sum_k / norm_k and
     * gradV = (g_k/norm_k) * gradW - (g_k/norm_k) * (gradG_k/norm_k) * v. Null outputs are not computed.
     */
    public static void backward(Primitives p, long a, long k, long s, MemorySegment gradW, MemorySegment v,
                                MemorySegment g, MemorySegment norm, MemorySegment gradV, MemorySegment gradG,
                                Loop loop) {
        if (gradV == null && gradG == null) return;
        boolean cols = columns(a, k, s);
        double[] sums = cols ? columnSums(p, a, k, s, gradW, v, loop) : pieceSums(p, a, k, s, gradW, v, loop);
        // coefficients a (floats 0..k-1) and b (k..2k-1) of the element-wise pass, in the scratch floats
        float[] coef = Scratch.floats(2 * k);
        int kb = (int) k;
        for (int j = 0; j < k; j++) {
            double nrm = norm.get(F, j * B);
            double gg = sums[j] / nrm;
            double sa = g.get(F, j * B) / nrm;
            if (gradG != null) gradG.set(F, j * B, (float) gg);
            coef[j] = (float) sa;
            coef[kb + j] = (float) (-sa * gg / nrm);
        }
        if (gradV == null) return;
        if (cols) {
            Rows rows = new Rows(a, k * s);
            float[] aCol = rows.perColumn(coef, 0, s), bCol = rows.perColumn(coef, kb, s);
            loop.forEach(rows.superRows, r -> p.rowLinear(gradW, rows.off(r), v, rows.off(r), gradV, rows.off(r),
                    rows.len(r), aCol, bCol, 0));
        } else {
            long per = perSlice(a, s);
            grouped(loop, k * per, group(a, s), (from, to) -> {
                Piece pc = new Piece(a, k, s);
                for (long it = from; it < to; it++) {
                    int j = (int) (it / per);
                    pc.at(it);
                    p.gradApply(gradW, pc.off, v, pc.off, gradV, pc.off, pc.runs, pc.len, pc.stride, coef[j], coef[kb + j], 0f, 0f);
                }
            });
        }
    }

    /** Whether the (a, k, s) view is walked as columns. */
    static boolean columns(long a, long k, long s) {
        long d = k * s;
        return a > 1 && s < COLUMN_S && d <= COLUMN_MAX_ROW && new Rows(a, d).partials() <= Integer.MAX_VALUE - 8;
    }

    // --- pieces walk

    /** Pieces per slice: parts of each run when runs are long, else groups of whole runs. */
    static long perSlice(long a, long s) {
        if (s >= PIECE) return a * ((s + PIECE - 1) / PIECE);
        long runsPer = PIECE / s;
        return (a + runsPer - 1) / runsPer;
    }

    /**
     * Pieces per work item: small pieces (short slices) are handed out several at a time, so a call on
     * many short rows is not dominated by per-item overhead. Each piece is still computed alone, so the
     * grouping does not change any result.
     */
    static long group(long a, long s) {
        long floats = s >= PIECE ? PIECE : Math.min(a, PIECE / s) * s;
        return Math.max(1, PIECE / floats);
    }

    /** A range of items [from, to). */
    @FunctionalInterface
    private interface RangeBody {
        void run(long from, long to);
    }

    /** {@code body} over every item in [0, items), {@code group} consecutive items per task item. */
    private static void grouped(Loop loop, long items, long group, RangeBody body) {
        loop.forEach((items + group - 1) / group, gi -> body.run(gi * group, Math.min(items, (gi + 1) * group)));
    }

    /** Where piece {@code item} lies (slice item / perSlice, piece item % perSlice): runs of len floats from off, stride apart (bytes). */
    static final class Piece {
        final long a, k, s, per, stride;
        long off, runs;
        int len;

        Piece(long a, long k, long s) {
            this.a = a;
            this.k = k;
            this.s = s;
            this.per = perSlice(a, s);
            this.stride = k * s * B;
        }

        void at(long item) {
            long kk = item / per, j = item % per;
            if (s >= PIECE) {
                // part of one long run
                long cuts = (s + PIECE - 1) / PIECE;
                long r = j / cuts, i0 = (j % cuts) * PIECE;
                off = ((r * k + kk) * s + i0) * B;
                runs = 1;
                len = (int) Math.min(PIECE, s - i0);
            } else {
                // whole runs
                long runsPer = PIECE / s;
                long r0 = j * runsPer;
                off = (r0 * k + kk) * s * B;
                runs = Math.min(runsPer, a - r0);
                len = (int) s;
            }
        }
    }

    /**
     * Σ x1*x2 per slice over the pieces (Σ x² when x1 == x2), partials added in piece order; returned in the
     * caller's scratch doubles (slot 1), valid until the call takes them again.
     */
    private static double[] pieceSums(Primitives p, long a, long k, long s, MemorySegment x1, MemorySegment x2,
                                      Loop loop) {
        long per = perSlice(a, s);
        // every partial is written by its piece before it is read
        double[] part = Scratch.doubles(0, Math.toIntExact(k * per));
        grouped(loop, k * per, group(a, s), (from, to) -> {
            Piece pc = new Piece(a, k, s);
            GradSums acc = Scratch.task().grads;
            for (long it = from; it < to; it++) {
                pc.at(it);
                if (x1 == x2) {
                    part[(int) it] = p.sumSquares(x1, pc.off, pc.runs, pc.len, pc.stride);
                } else {
                    p.gradSums(x1, pc.off, x2, pc.off, pc.runs, pc.len, pc.stride, 0f, acc.reset());
                    part[(int) it] = acc.sumDyXc;
                }
            }
        });
        double[] sums = Scratch.doubles(1, k);
        for (int j = 0; j < k; j++) {
            double t = 0;
            for (long i = 0; i < per; i++) t += part[(int) (j * per + i)];
            sums[j] = t;
        }
        return sums;
    }

    // --- columns walk

    /** The column walk's super-rows: a rows of d floats, grouped g at a time into super-rows of width = g*d floats. */
    static final class Rows {
        final long a, d, g, width, superRows, bands;

        Rows(long a, long d) {
            this.a = a;
            this.d = d;
            this.g = Math.max(1, COLS / d);
            this.width = g * d;
            this.superRows = (a + g - 1) / g;
            this.bands = (superRows + BAND - 1) / BAND;
        }

        /** Byte offset of super-row r. */
        long off(long r) {
            return r * width * B;
        }

        /** Floats in super-row r (the last may hold fewer rows). */
        int len(long r) {
            return (int) (Math.min(a, (r + 1) * g) * d - r * width);
        }

        /** Double partials the sums need: one per band and super-column. */
        long partials() {
            return bands * width;
        }

        /**
         * Per-slice coefficients ({@code perSlice[from + slice]}) spread over the super-columns: column j of a
         * row belongs to slice j / s.
         */
        float[] perColumn(float[] perSlice, int from, long s) {
            float[] c = new float[(int) width];
            for (int j = 0; j < width; j++) c[j] = perSlice[from + (int) ((j % d) / s)];
            return c;
        }
    }

    /**
     * Σ x1*x2 per slice over the columns walk: super-column partials per band; then per column the bands
     * and the column's g copies in order; then a slice's columns in order.
     */
    private static double[] columnSums(Primitives p, long a, long k, long s, MemorySegment x1, MemorySegment x2,
                                       Loop loop) {
        Rows rows = new Rows(a, k * s);
        long width = rows.width, tiles = (width + COLS - 1) / COLS;
        double[] part = new double[(int) rows.partials()];
        loop.forEach(rows.bands * tiles, t -> {
            long b = t / tiles, j0 = (t % tiles) * COLS;
            int w = (int) Math.min(COLS, width - j0);
            float[] acc = new float[w];
            long r0 = b * BAND, r1 = Math.min(rows.superRows, r0 + BAND);
            int base = (int) (b * width + j0);
            for (long r = r0; r < r1; r++) {
                int wr = (int) Math.min(w, rows.len(r) - j0);
                if (wr > 0) {
                    long off = rows.off(r) + j0 * B;
                    // x1 * ((x2 - 0) * 1): the product, exactly as in float
                    p.columnGradSums(x1, off, x2, off, wr, 0f, 1f, null, acc, 0);
                }
                if ((r - r0) % ROW_BLOCK == ROW_BLOCK - 1 || r == r1 - 1) {
                    for (int j = 0; j < w; j++) {
                        part[base + j] += acc[j];
                        acc[j] = 0f;
                    }
                }
            }
        });
        long d = rows.d;
        double[] sums = new double[(int) k];
        for (int kk = 0; kk < k; kk++) {
            double t = 0;
            for (long j = kk * s; j < (kk + 1) * s; j++) {
                double col = 0;
                for (long b = 0; b < rows.bands; b++) {
                    for (long c = 0; c < rows.g; c++) col += part[(int) (b * width + c * d + j)];
                }
                t += col;
            }
            sums[kk] = t;
        }
        return sums;
    }
}
