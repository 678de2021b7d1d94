package io.github.vecnorm;

import io.github.vecnorm.internal.Checks;
import io.github.vecnorm.internal.Kernels;
import io.github.vecnorm.internal.RMSNormOps;
import java.lang.foreign.MemorySegment;

/**
 * Root Mean Square Layer Normalization (Zhang and Sennrich, 2019) over float32 tensors in caller-owned
 * memory segments, with the semantics of PyTorch's {@code torch.nn.functional.rms_norm} on float input.
 *
 * <p>The input is seen as {@link Rows}: M rows of D contiguous floats, D the product of the normalized
 * (trailing) dimensions. Per row, {@code rstd = 1/sqrt(mean(x²) + eps)} over its D values and
 * {@code y = x * rstd * gamma}, gamma of D floats applied element by element (RMSNorm has no bias). The
 * rstd of every row (M floats) can be saved for the backward. Every segment must be exactly the size its
 * shape implies.
 *
 * <p>eps: the overloads without it use {@link #DEFAULT_EPS}, float32's machine epsilon, which is what
 * PyTorch uses for {@code eps=None} on float input ({@code torch.finfo(torch.float32).eps}).
 *
 * <h2>Aliasing</h2>
 * {@code y} may be exactly {@code x}, {@code dx} may be exactly {@code dy}; any other overlap between a
 * written segment and another argument is rejected.
 *
 * <h2>Threads</h2>
 * Rows are spread over the tasks of a {@link Parallelism}; dgamma is summed over fixed tiles whose
 * partial sums are added in a fixed order, so results are bitwise the same for every thread count.
 *
 * <h2>Differences from ATen, on purpose</h2>
 * <ul>
 *   <li>{@code Σ x²} is accumulated in float vector lanes, the mean and eps are added in double
 *   (ATen's composite computes {@code pow(x,2).mean()} in float).</li>
 *   <li>The backward is an explicit kernel: ATen's composite RMSNorm is differentiated through its
 *   primitive ops (same formula, different rounding). The fused CPU kernel was not compared.</li>
 *   <li>eps, when given, must be finite and positive (ATen does not check).</li>
 *   <li>Results do not depend on the number of threads.</li>
 * </ul>
 *
 * <h2>Errors</h2>
 * Every argument is checked before anything is written: {@link IllegalArgumentException} for a null
 * required argument, a wrong size, a read-only output, forbidden aliasing or a bad eps;
 * {@link IllegalStateException} for a segment whose arena is closed or that is confined to another thread.
 */
public final class RMSNorm {

    /** PyTorch's default for float input: float32's machine epsilon, 2^-23 = 1.1920929e-7. */
    public static final double DEFAULT_EPS = Math.ulp(1.0f);

    private RMSNorm() {
    }

    /** {@link #forward(Rows, MemorySegment, MemorySegment, MemorySegment, MemorySegment, double, Parallelism)} with {@link #DEFAULT_EPS}, on the calling thread. */
    public static void forward(Rows rows, MemorySegment x, MemorySegment y, MemorySegment gamma, MemorySegment rstd) {
        forward(rows, x, y, gamma, rstd, DEFAULT_EPS, Parallelism.serial());
    }

    /** {@link #forward(Rows, MemorySegment, MemorySegment, MemorySegment, MemorySegment, double, Parallelism)} with {@link #DEFAULT_EPS}. */
    public static void forward(Rows rows, MemorySegment x, MemorySegment y, MemorySegment gamma, MemorySegment rstd,
                               Parallelism parallelism) {
        forward(rows, x, y, gamma, rstd, DEFAULT_EPS, parallelism);
    }

    /** {@link #forward(Rows, MemorySegment, MemorySegment, MemorySegment, MemorySegment, double, Parallelism)} on the calling thread. */
    public static void forward(Rows rows, MemorySegment x, MemorySegment y, MemorySegment gamma, MemorySegment rstd,
                               double eps) {
        forward(rows, x, y, gamma, rstd, eps, Parallelism.serial());
    }

    /**
     * Forward: per row {@code rstd = 1/sqrt(mean(x²) + eps)}, {@code y = x * rstd * gamma}.
     *
     * @param rows        (M, D)
     * @param x           input, M*D floats, read
     * @param y           output, M*D floats, written; may be exactly {@code x}
     * @param gamma       D floats, or null for 1
     * @param rstd        M floats written (for backward), or null
     * @param eps         added to the mean square; finite and {@code > 0}
     * @param parallelism how rows are spread over threads
     * @throws IllegalArgumentException for a bad argument (see the class documentation)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void forward(Rows rows, MemorySegment x, MemorySegment y, MemorySegment gamma, MemorySegment rstd,
                               double eps, Parallelism parallelism) {
        LayerNorm.requireRows(rows);
        BatchNorm.requireParallelism(parallelism);
        String what = rows.toString();
        long numel = rows.numel(), m = rows.m(), d = rows.d();
        Checks.tensor("x", x, numel, what, false);
        Checks.tensor("y", y, numel, what, true);
        Checks.optionalTensor("gamma", gamma, d, "one per normalized element", false);
        Checks.optionalTensor("rstd", rstd, m, "one per row", true);
        Checks.eps(eps);
        Checks.noOverlap("y", y, x, "x", x, "gamma", gamma, "rstd", rstd);
        Checks.noOverlap("rstd", rstd, null, "x", x, "gamma", gamma);

        RMSNormOps.forward(Kernels.primitives(), m, d, x, y, gamma, rstd, eps,
                BatchNorm.loop(parallelism, x, y, gamma, rstd));
    }

    /** {@link #backward(Rows, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, Parallelism)} on the calling thread. */
    public static void backward(Rows rows, MemorySegment dy, MemorySegment x, MemorySegment gamma, MemorySegment rstd,
                                MemorySegment dx, MemorySegment dgamma) {
        backward(rows, dy, x, gamma, rstd, dx, dgamma, Parallelism.serial());
    }

    /**
     * Backward from the rstd saved by {@link #forward}: with {@code g = gamma * dy}, per row
     * <pre>
     *   dx     = rstd * g - rstd³ / D * x * Σ(g * x)
     *   dgamma = Σ_rows dy * x * rstd
     * </pre>
     * Each output optional (null).
     *
     * @param rows        (M, D)
     * @param dy          gradient of y, M*D floats
     * @param x           the forward input, M*D floats
     * @param gamma       D floats or null (1)
     * @param rstd        M floats from the forward
     * @param dx          M*D floats written, or null; may be exactly {@code dy}
     * @param dgamma      D floats written, or null
     * @param parallelism how rows (and tiles of dgamma) are spread over threads
     * @throws IllegalArgumentException for a bad argument (see the class documentation)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void backward(Rows rows, MemorySegment dy, MemorySegment x, MemorySegment gamma, MemorySegment rstd,
                                MemorySegment dx, MemorySegment dgamma, Parallelism parallelism) {
        LayerNorm.requireRows(rows);
        BatchNorm.requireParallelism(parallelism);
        String what = rows.toString();
        long numel = rows.numel();
        Checks.tensor("dy", dy, numel, what, false);
        Checks.tensor("x", x, numel, what, false);
        Checks.optionalTensor("gamma", gamma, rows.d(), "one per normalized element", false);
        Checks.tensor("rstd", rstd, rows.m(), "one per row", false);
        LayerNorm.checkGradOutputs(rows, dy, x, gamma, "rstd", null, rstd, dx, dgamma, null);

        RMSNormOps.backward(Kernels.primitives(), rows.m(), rows.d(), dy, x, gamma, rstd, dx, dgamma,
                BatchNorm.loop(parallelism, dy, x, gamma, rstd, dx, dgamma));
    }
}
