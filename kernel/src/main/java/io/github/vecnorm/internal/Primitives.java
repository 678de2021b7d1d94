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
}
