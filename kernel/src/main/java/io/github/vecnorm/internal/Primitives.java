package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;

/**
 * The four loops every normalization layer is made of, over float32 values in memory segments.
 * Each works on a strided set of runs: {@code runs} runs of {@code len} contiguous floats, the
 * {@code r}-th starting {@code r * stride} bytes after {@code off} (byte offsets throughout). A
 * BatchNorm channel is N runs of S values, stride C*S floats; a LayerNorm row is one run.
 *
 * <p>Two implementations with the same contract: {@link ScalarPrimitives}, the readable statement
 * of each algorithm and the fallback, and the Vector API one, chosen once by {@link Kernels}.
 * Callers have validated every argument; implementations only {@code assert}.
 */
public interface Primitives {

    /** A short name for logs and benchmark parameters: "scalar" or "vector". */
    String name();

    /** Float lanes per vector (1 for scalar). */
    int lanes();

    /**
     * Moments of the runs, merged into {@code acc}. The values are shifted by {@code shift} (a value
     * near the data, e.g. its first element) before accumulating, so that a large common offset does
     * not cost float precision; {@code acc} receives the moments of the unshifted values.
     */
    void moments(MemorySegment x, long off, long runs, int len, long stride, float shift, Moments acc);

    /** {@code y = (x - c) * a + b} over the runs; y may be x (same offsets). */
    void affine(MemorySegment x, long xOff, MemorySegment y, long yOff,
                long runs, int len, long stride, float c, float a, float b);

    /**
     * Adds {@code Σ dy} to {@code acc.sumDy} and {@code Σ dy * (x - c)} to {@code acc.sumDyXc} over the
     * runs (x and dy laid out alike).
     */
    void gradSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff,
                  long runs, int len, long stride, float c, GradSums acc);

    /** {@code dx = p * dy + q * (x - c) + r} over the runs; dx may be dy (same offsets). */
    void gradApply(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                   long runs, int len, long stride, float p, float q, float c, float r);

    // --- row primitives (LayerNorm, RMSNorm)
    // One contiguous run of len floats, with a per-element weight vector w (gamma) read from wOff on.

    /** {@code Σ x²} over the runs (same run layout as {@link #moments}). */
    double sumSquares(MemorySegment x, long off, long runs, int len, long stride);

    /**
     * {@code y = ((x - c) * a + b) * w + beta} element by element over one run of {@code len} floats:
     * a per-run affine, then a per-element one. w may be null (1), beta may be null (0); y may be x (same offsets).
     */
    void rowAffine(MemorySegment x, long xOff, MemorySegment y, long yOff, int len, float c, float a, float b,
                   MemorySegment w, long wOff, MemorySegment beta, long betaOff);

    /** Adds {@code Σ w*dy} to {@code acc.sumDy} and {@code Σ w*dy*(x - c)} to {@code acc.sumDyXc} over one run. */
    void rowGradSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment w, long wOff,
                     int len, float c, GradSums acc);

    /** {@code dx = p * w * dy + q * (x - c) + r} over one run; dx may be dy (same offsets). */
    void rowGradApply(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment w, long wOff,
                      MemorySegment dx, long dxOff, int len, float p, float q, float c, float r);

    /**
     * Column accumulation over one run (a row): {@code sumDy[accOff + i] += dy[i]} and
     * {@code sumDyXhat[accOff + i] += dy[i] * ((x[i] - c) * a)}, in float; either array may be null.
     * Every element goes through the same float operations (vector lanes and tail alike), so a column's
     * sum does not depend on where a run starts or on the implementation.
     */
    void columnGradSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff, int len, float c, float a,
                        float[] sumDy, float[] sumDyXhat, int accOff);
}
