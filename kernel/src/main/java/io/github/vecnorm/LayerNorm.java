package io.github.vecnorm;

import io.github.vecnorm.internal.Checks;
import io.github.vecnorm.internal.Kernels;
import io.github.vecnorm.internal.LayerNormOps;
import java.lang.foreign.MemorySegment;

/**
 * Layer Normalization (Ba, Kiros and Hinton, 2016) over float32 tensors in caller-owned memory
 * segments, with the semantics of PyTorch's {@code native_layer_norm} and {@code native_layer_norm_backward}.
 *
 * <p>The input is seen as {@link Rows}: M rows of D contiguous floats, D the product of the normalized
 * (trailing) dimensions ({@link Rows#normalizing} checks them as ATen does). Each row is normalized over
 * its D values: mean, biased variance var, {@code rstd = 1/sqrt(var + eps)},
 * {@code y = (x - mean) * rstd * gamma + beta} with gamma and beta of D floats applied element by element.
 * Per-row tensors (mean, rstd) are M floats. Every segment must be exactly the size its shape implies.
 *
 * <h2>Aliasing</h2>
 * {@code y} may be exactly {@code x} (same start and size), {@code dx} may be exactly {@code dy}. Any
 * other overlap between a written segment and any other argument is rejected.
 *
 * <h2>Threads</h2>
 * Rows are spread over the tasks of a {@link Parallelism}; dgamma and dbeta are summed over fixed tiles
 * of rows and columns whose partial sums are added in a fixed order, so every result is bitwise the same
 * for every thread count.
 *
 * <h2>Differences from ATen, on purpose</h2>
 * <ul>
 *   <li>Statistics come from Σ(x - x0) and Σ(x - x0)² about the row's first value x0 (float lanes, totals
 *   in double), taken once more about the mean when x0 lies more than two standard deviations from it;
 *   rows too large for the caches (over 512 KiB) use Welford accumulators shifted by x0 instead. ATen
 *   accumulates in float without a shift. They agree to float rounding, and here a large common offset
 *   costs no precision. The variance is clamped at 0 before adding eps.</li>
 *   <li>eps must be finite and positive (ATen does not check).</li>
 *   <li>mean and rstd are optional outputs (null: not saved, e.g. for inference); ATen always returns them.</li>
 *   <li>Empty tensors (M = 0 or D = 0) cannot be described by {@link Rows}.</li>
 *   <li>Results do not depend on the number of threads.</li>
 * </ul>
 *
 * <h2>Errors</h2>
 * Every argument is checked before anything is written: {@link IllegalArgumentException} for a null
 * required argument, a wrong size, a read-only output, forbidden aliasing or a bad eps;
 * {@link IllegalStateException} for a segment whose arena is closed or that is confined to another thread.
 */
public final class LayerNorm {

    /** PyTorch's default eps. */
    public static final double DEFAULT_EPS = 1e-5;

    private LayerNorm() {
    }

    /** {@link #forward(Rows, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, double, Parallelism)} on the calling thread. */
    public static void forward(Rows rows, MemorySegment x, MemorySegment y, MemorySegment gamma, MemorySegment beta,
                               MemorySegment mean, MemorySegment rstd, double eps) {
        forward(rows, x, y, gamma, beta, mean, rstd, eps, Parallelism.serial());
    }

    /**
     * Forward ({@code native_layer_norm}): per row, mean and {@code rstd = 1/sqrt(var + eps)} over its D
     * values, and {@code y = (x - mean) * rstd * gamma + beta}.
     *
     * @param rows        (M, D)
     * @param x           input, M*D floats, read
     * @param y           output, M*D floats, written; may be exactly {@code x}
     * @param gamma       D floats, or null for 1 (no elementwise affine)
     * @param beta        D floats, or null for 0
     * @param mean        M floats written (the row means, for backward), or null
     * @param rstd        M floats written ({@code 1/sqrt(var + eps)}, for backward), or null
     * @param eps         added to the variance; finite and {@code > 0}
     * @param parallelism how rows are spread over threads
     * @throws IllegalArgumentException for a bad argument (see the class documentation)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void forward(Rows rows, MemorySegment x, MemorySegment y, MemorySegment gamma, MemorySegment beta,
                               MemorySegment mean, MemorySegment rstd, double eps, Parallelism parallelism) {
        requireRows(rows);
        BatchNorm.requireParallelism(parallelism);
        String what = rows.toString();
        long numel = rows.numel(), m = rows.m(), d = rows.d();
        Checks.tensor("x", x, numel, what, false);
        Checks.tensor("y", y, numel, what, true);
        Checks.optionalTensor("gamma", gamma, d, "one per normalized element", false);
        Checks.optionalTensor("beta", beta, d, "one per normalized element", false);
        Checks.optionalTensor("mean", mean, m, "one per row", true);
        Checks.optionalTensor("rstd", rstd, m, "one per row", true);
        Checks.eps(eps);
        Checks.noOverlap("y", y, x, "x", x, "gamma", gamma, "beta", beta, "mean", mean, "rstd", rstd);
        Checks.noOverlap("mean", mean, null, "x", x, "gamma", gamma, "beta", beta, "rstd", rstd);
        Checks.noOverlap("rstd", rstd, null, "x", x, "gamma", gamma, "beta", beta);

        LayerNormOps.forward(Kernels.primitives(), m, d, x, y, gamma, beta, mean, rstd, eps,
                BatchNorm.loop(parallelism, x, y, gamma, beta, mean, rstd));
    }

    /** {@link #backward(Rows, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, Parallelism)} on the calling thread. */
    public static void backward(Rows rows, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                MemorySegment mean, MemorySegment rstd,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        backward(rows, dy, x, gamma, mean, rstd, dx, dgamma, dbeta, Parallelism.serial());
    }

    /**
     * Backward ({@code native_layer_norm_backward}) from the mean and rstd saved by {@link #forward}: with
     * {@code xhat = (x - mean) * rstd} and {@code g = gamma * dy}, per row
     * <pre>
     *   dx     = rstd * (g - mean(g) - xhat * mean(g * xhat))      (means over the row's D values)
     *   dgamma = Σ_rows dy * xhat
     *   dbeta  = Σ_rows dy
     * </pre>
     * Each output is optional (ATen's output mask): pass null for what is not wanted.
     *
     * @param rows        (M, D)
     * @param dy          gradient of y, M*D floats
     * @param x           the forward input, M*D floats
     * @param gamma       D floats or null (1)
     * @param mean        M floats from the forward
     * @param rstd        M floats from the forward
     * @param dx          M*D floats written, or null; may be exactly {@code dy}
     * @param dgamma      D floats written, or null
     * @param dbeta       D floats written, or null
     * @param parallelism how rows (and tiles of the parameter gradients) are spread over threads
     * @throws IllegalArgumentException for a bad argument (see the class documentation)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void backward(Rows rows, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                MemorySegment mean, MemorySegment rstd,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Parallelism parallelism) {
        requireRows(rows);
        BatchNorm.requireParallelism(parallelism);
        String what = rows.toString();
        long numel = rows.numel(), m = rows.m(), d = rows.d();
        Checks.tensor("dy", dy, numel, what, false);
        Checks.tensor("x", x, numel, what, false);
        Checks.optionalTensor("gamma", gamma, d, "one per normalized element", false);
        Checks.tensor("mean", mean, m, "one per row", false);
        Checks.tensor("rstd", rstd, m, "one per row", false);
        checkGradOutputs(rows, dy, x, gamma, "mean", mean, rstd, dx, dgamma, dbeta);

        LayerNormOps.backward(Kernels.primitives(), m, d, dy, x, gamma, mean, rstd, dx, dgamma, dbeta,
                BatchNorm.loop(parallelism, dy, x, gamma, mean, rstd, dx, dgamma, dbeta));
    }

    static void requireRows(Rows rows) {
        if (rows == null) throw new IllegalArgumentException("rows must not be null");
    }

    /** The outputs of a row layer's backward: sizes, writability, aliasing (dx may be exactly dy). */
    static void checkGradOutputs(Rows rows, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                 String statName, MemorySegment stat, MemorySegment rstd,
                                 MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        String what = rows.toString();
        long d = rows.d();
        Checks.optionalTensor("dx", dx, rows.numel(), what, true);
        Checks.optionalTensor("dgamma", dgamma, d, "one per normalized element", true);
        Checks.optionalTensor("dbeta", dbeta, d, "one per normalized element", true);
        if ((dgamma != null || dbeta != null) && d > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("dgamma/dbeta: D = " + d + " exceeds the " + (Integer.MAX_VALUE - 8)
                    + " columns the parameter-gradient reduction supports");
        }
        Checks.noOverlap("dx", dx, dy, "dy", dy, "x", x, "gamma", gamma, statName, stat, "rstd", rstd,
                "dgamma", dgamma, "dbeta", dbeta);
        Checks.noOverlap("dgamma", dgamma, null, "dy", dy, "x", x, "gamma", gamma, statName, stat, "rstd", rstd,
                "dbeta", dbeta);
        Checks.noOverlap("dbeta", dbeta, null, "dy", dy, "x", x, "gamma", gamma, statName, stat, "rstd", rstd);
    }
}
