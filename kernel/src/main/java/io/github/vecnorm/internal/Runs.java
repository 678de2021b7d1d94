package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;

/**
 * The primitives over one contiguous run of any (long) length: a run longer than {@link #MAX_PIECE}
 * floats is handed over in pieces, so the primitives' hot loops stay int-counted. Offsets in bytes.
 * Used by the row and group bodies (LayerNorm, RMSNorm, GroupNorm, InstanceNorm).
 */
final class Runs {

    private static final long B = Float.BYTES;
    /** Longest piece handed to a primitive (a multiple of every vector width). */
    static final int MAX_PIECE = 1 << 30;

    private Runs() {
    }

    private static int piece(long len, long i) {
        return (int) Math.min(MAX_PIECE, len - i);
    }

    /** {@code Σ x²} of {@code len} floats from {@code off}. */
    static double sumSquares(Primitives p, MemorySegment x, long off, long len) {
        double s = 0;
        for (long i = 0; i < len; i += MAX_PIECE) s += p.sumSquares(x, off + i * B, 1, piece(len, i), 0);
        return s;
    }

    /** {@code y = (x - c) * a + b}. */
    static void affine(Primitives p, MemorySegment x, long xOff, MemorySegment y, long yOff, long len,
                       float c, float a, float b) {
        for (long i = 0; i < len; i += MAX_PIECE) p.affine(x, xOff + i * B, y, yOff + i * B, 1, piece(len, i), 0, c, a, b);
    }

    /** {@code y = ((x - c) * a + b) * w + beta}; w and beta (either may be null) read from byte {@code wOff} on. */
    static void rowAffine(Primitives p, MemorySegment x, long xOff, MemorySegment y, long yOff, long len,
                          float c, float a, float b, MemorySegment w, MemorySegment beta, long wOff) {
        for (long i = 0; i < len; i += MAX_PIECE) {
            p.rowAffine(x, xOff + i * B, y, yOff + i * B, piece(len, i), c, a, b, w, wOff + i * B, beta, wOff + i * B);
        }
    }

    /** {@code Σ dy} and {@code Σ dy*(x - c)} into acc. */
    static void gradSums(Primitives p, MemorySegment dy, long dyOff, MemorySegment x, long xOff, long len,
                         float c, GradSums acc) {
        for (long i = 0; i < len; i += MAX_PIECE) p.gradSums(dy, dyOff + i * B, x, xOff + i * B, 1, piece(len, i), 0, c, acc);
    }

    /** {@code Σ w*dy} and {@code Σ w*dy*(x - c)} into acc (returned); w read from byte {@code wOff} on. */
    static GradSums rowGradSums(Primitives p, MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment w,
                                long wOff, long len, float c, GradSums acc) {
        for (long i = 0; i < len; i += MAX_PIECE) {
            p.rowGradSums(dy, dyOff + i * B, x, xOff + i * B, w, wOff + i * B, piece(len, i), c, acc);
        }
        return acc;
    }

    /** {@code dx = k*dy + q*(x - c) + r}. */
    static void gradApply(Primitives p, MemorySegment dy, long dyOff, MemorySegment x, long xOff,
                          MemorySegment dx, long dxOff, long len, float k, float q, float c, float r) {
        for (long i = 0; i < len; i += MAX_PIECE) {
            p.gradApply(dy, dyOff + i * B, x, xOff + i * B, dx, dxOff + i * B, 1, piece(len, i), 0, k, q, c, r);
        }
    }

    /** {@code dx = k*w*dy + q*(x - c) + r}; w read from byte {@code wOff} on. */
    static void rowGradApply(Primitives p, MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment w,
                             long wOff, MemorySegment dx, long dxOff, long len, float k, float q, float c, float r) {
        for (long i = 0; i < len; i += MAX_PIECE) {
            p.rowGradApply(dy, dyOff + i * B, x, xOff + i * B, w, wOff + i * B, dx, dxOff + i * B, piece(len, i), k, q, c, r);
        }
    }
}
