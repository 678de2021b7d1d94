package io.github.vecnorm;

import io.github.vecnorm.internal.Checks;
import io.github.vecnorm.internal.GroupNormOps;
import io.github.vecnorm.internal.Kernels;
import java.lang.foreign.MemorySegment;

/**
 * Group Normalization (Wu and He, 2018) over float32 NCHW tensors in caller-owned memory segments, with
 * the semantics of PyTorch's {@code native_group_norm} and {@code native_group_norm_backward}.
 *
 * <p>A tensor of shape (N, C, *spatial) is seen as (N, C, S) (see {@link Shape}); its C channels form G
 * groups of C/G consecutive channels (G must divide C). Each (sample, group) is normalized over its
 * (C/G)*S values, which are contiguous: mean, biased variance var, {@code rstd = 1/sqrt(var + eps)},
 * then per channel {@code y = (x - mean) * rstd * gamma[c] + beta[c]}. gamma, beta, dgamma and dbeta are
 * C floats; mean and rstd are N*G floats, index {@code n*G + g}. Every segment must be exactly the size
 * its shape implies.
 *
 * <h2>Aliasing</h2>
 * {@code y} may be exactly {@code x}, {@code dx} may be exactly {@code dy}; any other overlap between a
 * written segment and another argument is rejected.
 *
 * <h2>Threads</h2>
 * (sample, group) pairs are spread over the tasks of a {@link Parallelism} (groups of fewer than 64 values:
 * a sample's groups, or a block of them, a task); dgamma and dbeta are summed over the batch in an order
 * fixed by the shape alone (per channel in the order n = 0, 1, ...; for small S with longer groups, or one
 * group, in fixed blocks of samples added in block order), so results are bitwise the same for every
 * thread count (ATen adds per-thread partials).
 *
 * <h2>Differences from ATen, on purpose</h2>
 * <ul>
 *   <li>Statistics come from Σ(x - x0) and Σ(x - x0)² about the group's first value x0 (float lanes,
 *   totals in double), taken once more about the mean when x0 lies more than two standard deviations
 *   from it; groups over 512 KiB use Welford accumulators shifted by x0 (ATen: Welford in float; its
 *   channels-last path uses E[x²] - E[x]²). The variance is clamped at 0 as ATen does.</li>
 *   <li>eps must be finite and positive (ATen does not check).</li>
 *   <li>mean and rstd are optional outputs (null: not saved); ATen always returns them.</li>
 *   <li>Empty tensors cannot be described by {@link Shape} (ATen returns NaN rstd for them).</li>
 * </ul>
 *
 * <h2>Errors</h2>
 * Every argument is checked before anything is written: {@link IllegalArgumentException} for a null
 * required argument, groups not positive or not dividing C (ATen's messages), a wrong size, a read-only
 * output, forbidden aliasing or a bad eps; {@link IllegalStateException} for a segment whose arena is
 * closed or that is confined to another thread.
 */
public final class GroupNorm {

    /** PyTorch's default eps. */
    public static final double DEFAULT_EPS = 1e-5;

    private GroupNorm() {
    }

    /** {@link #forward(Shape, long, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, double, Parallelism)} on the calling thread. */
    public static void forward(Shape shape, long groups, MemorySegment x, MemorySegment y,
                               MemorySegment gamma, MemorySegment beta, MemorySegment mean, MemorySegment rstd,
                               double eps) {
        forward(shape, groups, x, y, gamma, beta, mean, rstd, eps, Parallelism.serial());
    }

    /**
     * Forward ({@code native_group_norm}): per (n, group), mean and {@code rstd = 1/sqrt(var + eps)} over
     * its (C/G)*S values, then {@code y = (x - mean) * rstd * gamma[c] + beta[c]}.
     *
     * @param shape       (N, C, S)
     * @param groups      G, at least 1 and dividing C
     * @param x           input, N*C*S floats, read
     * @param y           output, N*C*S floats, written; may be exactly {@code x}
     * @param gamma       C floats, or null for 1 (affine off)
     * @param beta        C floats, or null for 0
     * @param mean        N*G floats written (for backward), or null
     * @param rstd        N*G floats written (for backward), or null
     * @param eps         added to the variance; finite and {@code > 0}
     * @param parallelism how (n, group) pairs are spread over threads
     * @throws IllegalArgumentException for a bad argument (see the class documentation)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void forward(Shape shape, long groups, MemorySegment x, MemorySegment y,
                               MemorySegment gamma, MemorySegment beta, MemorySegment mean, MemorySegment rstd,
                               double eps, Parallelism parallelism) {
        BatchNorm.requireShape(shape);
        BatchNorm.requireParallelism(parallelism);
        requireGroups(shape, groups);
        String what = shape.toString();
        long numel = shape.numel(), c = shape.c(), ng = shape.n() * groups;
        Checks.tensor("x", x, numel, what, false);
        Checks.tensor("y", y, numel, what, true);
        Checks.optionalTensor("gamma", gamma, c, "one per channel", false);
        Checks.optionalTensor("beta", beta, c, "one per channel", false);
        Checks.optionalTensor("mean", mean, ng, "one per (sample, group)", true);
        Checks.optionalTensor("rstd", rstd, ng, "one per (sample, group)", true);
        Checks.eps(eps);
        Checks.noOverlap("y", y, x, "x", x, "gamma", gamma, "beta", beta, "mean", mean, "rstd", rstd);
        Checks.noOverlap("mean", mean, null, "x", x, "gamma", gamma, "beta", beta, "rstd", rstd);
        Checks.noOverlap("rstd", rstd, null, "x", x, "gamma", gamma, "beta", beta);

        GroupNormOps.forward(Kernels.primitives(), shape.n(), c, shape.s(), groups, x, y, gamma, beta, mean, rstd,
                eps, null, BatchNorm.loop(parallelism, x, y, gamma, beta, mean, rstd));
    }

    /** {@link #backward(Shape, long, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, Parallelism)} on the calling thread. */
    public static void backward(Shape shape, long groups, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                MemorySegment mean, MemorySegment rstd,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        backward(shape, groups, dy, x, gamma, mean, rstd, dx, dgamma, dbeta, Parallelism.serial());
    }

    /**
     * Backward ({@code native_group_norm_backward}) from the mean and rstd saved by {@link #forward}: with
     * {@code xhat = (x - mean) * rstd} and {@code g = gamma[c] * dy}, per (n, group)
     * <pre>
     *   dx        = rstd * (g - mean(g) - xhat * mean(g * xhat))   (means over the group's (C/G)*S values)
     *   dgamma[c] = Σ_n Σ_s dy * xhat
     *   dbeta[c]  = Σ_n Σ_s dy
     * </pre>
     * Each output is optional (ATen's output mask): pass null for what is not wanted.
     *
     * @param shape       (N, C, S)
     * @param groups      G, as in the forward
     * @param dy          gradient of y, N*C*S floats
     * @param x           the forward input, N*C*S floats
     * @param gamma       C floats or null (1)
     * @param mean        N*G floats from the forward
     * @param rstd        N*G floats from the forward
     * @param dx          N*C*S floats written, or null; may be exactly {@code dy}
     * @param dgamma      C floats written, or null
     * @param dbeta       C floats written, or null
     * @param parallelism how (n, group) pairs and channels are spread over threads
     * @throws IllegalArgumentException for a bad argument (see the class documentation)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void backward(Shape shape, long groups, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                MemorySegment mean, MemorySegment rstd,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Parallelism parallelism) {
        BatchNorm.requireShape(shape);
        BatchNorm.requireParallelism(parallelism);
        requireGroups(shape, groups);
        long ng = shape.n() * groups;
        checkBackward(shape, dy, x, gamma, "mean", mean, "rstd", rstd, ng, "one per (sample, group)", dx, dgamma, dbeta);

        GroupNormOps.backward(Kernels.primitives(), shape.n(), shape.c(), shape.s(), groups, dy, x, gamma, mean, rstd,
                dx, dgamma, dbeta, BatchNorm.loop(parallelism, dy, x, gamma, mean, rstd, dx, dgamma, dbeta));
    }

    /** ATen's group checks, with its messages. */
    static void requireGroups(Shape shape, long groups) {
        if (groups <= 0) throw new IllegalArgumentException("Expected num groups to be greater than 0, got " + groups);
        if (shape.c() % groups != 0) {
            throw new IllegalArgumentException("Expected number of channels in input to be divisible by num_groups, "
                    + "but got input of shape " + dims(shape) + " and num_groups=" + groups);
        }
    }

    /** The shape as PyTorch prints sizes: [N, C] or [N, C, S]. */
    static String dims(Shape shape) {
        return "[" + shape.n() + ", " + shape.c() + (shape.s() == 1 ? "" : ", " + shape.s()) + "]";
    }

    /** Inputs and outputs of a per-(sample, group) backward (GroupNorm, InstanceNorm). */
    static void checkBackward(Shape shape, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                              String meanName, MemorySegment mean, String rstdName, MemorySegment rstd,
                              long stats, String statsWhat,
                              MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        String what = shape.toString();
        long numel = shape.numel(), c = shape.c();
        Checks.tensor("dy", dy, numel, what, false);
        Checks.tensor("x", x, numel, what, false);
        Checks.optionalTensor("gamma", gamma, c, "one per channel", false);
        Checks.tensor(meanName, mean, stats, statsWhat, false);
        Checks.tensor(rstdName, rstd, stats, statsWhat, false);
        Checks.optionalTensor("dx", dx, numel, what, true);
        Checks.optionalTensor("dgamma", dgamma, c, "one per channel", true);
        Checks.optionalTensor("dbeta", dbeta, c, "one per channel", true);
        if (shape.n() * c > (Integer.MAX_VALUE - 8) / 2) {
            throw new IllegalArgumentException("shape: N*C = " + shape.n() * c + " exceeds the "
                    + (Integer.MAX_VALUE - 8) / 2 + " (sample, channel) sums the backward can hold");
        }
        Checks.noOverlap("dx", dx, dy, "dy", dy, "x", x, "gamma", gamma, meanName, mean, rstdName, rstd,
                "dgamma", dgamma, "dbeta", dbeta);
        Checks.noOverlap("dgamma", dgamma, null, "dy", dy, "x", x, "gamma", gamma, meanName, mean, rstdName, rstd,
                "dbeta", dbeta);
        Checks.noOverlap("dbeta", dbeta, null, "dy", dy, "x", x, "gamma", gamma, meanName, mean, rstdName, rstd);
    }
}
