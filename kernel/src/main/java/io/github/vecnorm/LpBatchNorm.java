package io.github.vecnorm;

import io.github.vecnorm.internal.Checks;
import io.github.vecnorm.internal.Kernels;
import io.github.vecnorm.internal.LpBatchNormOps;
import java.lang.foreign.MemorySegment;

/**
 * L_p Batch Normalization over float32 NCHW tensors in caller-owned memory segments: BatchNorm whose
 * spread is an L_p average of the deviations from the mean instead of the standard deviation, for
 * p = 1, 2 and infinity. These are the "L_p normalization" variants of Santurkar, Tsipras, Ilyas and
 * Madry, "How Does Batch Normalization Help Optimization?" (NeurIPS 2018): their L_p-normalization
 * experiments normalize activations by the average of their L_p norm, and train as well as BatchNorm.
 *
 * <p>A tensor (N, C, *spatial) is seen as (N, C, S) (see {@link Shape}); per channel c, over its
 * {@code m = N*S} values with {@code d = x - mean}:
 * <pre>
 *   p = 1:   spread = mean |d|                invSpread = 1 / (spread + eps)
 *   p = 2:   var    = mean d²                 invSpread = 1 / sqrt(var + eps)      (BatchNorm exactly)
 *   p = inf: spread = max |d|                 invSpread = 1 / (spread + eps)
 *   y = d * invSpread * gamma + beta
 * </pre>
 * That is, the spread is the power mean {@code (mean |d|^p)^(1/p)} and eps is added to the quantity
 * under the 1/p-th root, {@code (mean |d|^p + eps)^(1/p)}: for p = 2 this is BatchNorm's training
 * forward ({@link BatchNorm#forwardTraining}, bit for bit, since p = 2 runs BatchNorm's kernel), for
 * p = 1 it adds eps to the mean absolute deviation; for p = inf, where no power mean exists, eps is
 * added to the maximum directly. The paper fixes the family, not the placement of eps: that choice
 * is vecnorm's. The mean and invSpread (C floats each) are saved for the backward. Only training
 * mode (batch statistics) is provided; there are no running statistics.
 *
 * <p>The mean is taken as BatchNorm's is on its channel paths (see its "Differences from ATen"): for runs
 * (S) of at least 16 floats, sums about each channel's first value with x read in memory order (runs under
 * 64 floats a sample's block of channels at a time), otherwise Welford channel by channel (BatchNorm's column
 * path for small S has no L_p counterpart). The maximum and minimum (p = inf) come from the same pass for runs
 * of at least 64 floats, from a second one for shorter runs; mean |d| (p = 1) from a second pass, about the
 * mean held as two floats so that rounding the mean costs no precision.
 *
 * <h2>Backward</h2>
 * With {@code xhat = d * invSpread}, {@code dbeta = Σ dy}, {@code dgamma = Σ dy * xhat} and
 * <pre>
 *   dx_i = gamma * invSpread * (dy_i - dbeta/m - dgamma * D_i),   D_i = d spread / d x_i
 *   p = 2:   D_i = xhat_i / m                                   (BatchNorm's backward)
 *   p = 1:   D_i = (sign(d_i) - mean_j sign(d_j)) / m           (sign(0) = 0)
 *   p = inf: D_i = (e_i - mean_j e_j) / |T|
 * </pre>
 * For p = 1, {@code d} is taken against the saved (float) mean. For p = inf, the maximum of |d| is
 * not differentiable where it is tied, and the subgradient used is the average over the tied set:
 * T is the set of elements equal to max x if {@code max x - mean >= mean - min x}, plus those equal to
 * min x if {@code mean - min x >= max x - mean} (comparisons in double with the saved mean);
 * {@code e_i = +1} for an element of T at the maximum, {@code -1} at the minimum, 0 otherwise. This
 * splits the gradient equally among ties (independent of their order in memory); a channel whose values
 * are all equal gets {@code D = 0}.
 *
 * <h2>Aliasing</h2>
 * {@code y} may be exactly {@code x}, {@code dx} may be exactly {@code dy}; any other overlap between a
 * written segment and another argument is rejected.
 *
 * <h2>Threads</h2>
 * Each channel's statistics are computed by one task in a fixed order, so results are bitwise the same
 * for every thread count.
 *
 * <h2>Errors</h2>
 * Every argument is checked before anything is written: {@link IllegalArgumentException} for a null
 * required argument, p not 1, 2 or {@link Double#POSITIVE_INFINITY}, a wrong size, a read-only output,
 * forbidden aliasing, eps not finite and {@code > 0}, or a single value per channel (as BatchNorm in
 * training); {@link IllegalStateException} for a segment whose arena is closed or that is confined to
 * another thread.
 */
public final class LpBatchNorm {

    /** PyTorch's BatchNorm default eps. */
    public static final double DEFAULT_EPS = 1e-5;

    private LpBatchNorm() {
    }

    /** {@link #forward(Shape, double, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, double, Parallelism)} on the calling thread. */
    public static void forward(Shape shape, double p, MemorySegment x, MemorySegment y,
                               MemorySegment gamma, MemorySegment beta,
                               MemorySegment saveMean, MemorySegment saveInvSpread, double eps) {
        forward(shape, p, x, y, gamma, beta, saveMean, saveInvSpread, eps, Parallelism.serial());
    }

    /**
     * Training forward: per channel, the batch mean and L_p spread, then
     * {@code y = (x - mean) * invSpread * gamma + beta} (see the class documentation for invSpread).
     *
     * @param shape         (N, C, S); N*S must be at least 2
     * @param p             1, 2 or {@link Double#POSITIVE_INFINITY}
     * @param x             input, N*C*S floats, read
     * @param y             output, N*C*S floats, written; may be exactly {@code x}
     * @param gamma         scale, C floats, or null for 1
     * @param beta          shift, C floats, or null for 0
     * @param saveMean      C floats, written: the batch mean, for backward
     * @param saveInvSpread C floats, written: the inverse spread (eps included), for backward
     * @param eps           finite and {@code > 0}
     * @param parallelism   how channels are spread over threads
     * @throws IllegalArgumentException for a bad argument (see the class documentation)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void forward(Shape shape, double p, MemorySegment x, MemorySegment y,
                               MemorySegment gamma, MemorySegment beta,
                               MemorySegment saveMean, MemorySegment saveInvSpread, double eps,
                               Parallelism parallelism) {
        BatchNorm.requireShape(shape);
        requireP(p);
        BatchNorm.requireParallelism(parallelism);
        String what = shape.toString();
        long numel = shape.numel(), c = shape.c();
        Checks.tensor("x", x, numel, what, false);
        Checks.tensor("y", y, numel, what, true);
        Checks.optionalTensor("gamma", gamma, c, "one per channel", false);
        Checks.optionalTensor("beta", beta, c, "one per channel", false);
        Checks.tensor("saveMean", saveMean, c, "one per channel", true);
        Checks.tensor("saveInvSpread", saveInvSpread, c, "one per channel", true);
        Checks.eps(eps);
        if (shape.perChannel() < 2) {
            throw new IllegalArgumentException("Expected more than 1 value per channel when training, got input size "
                    + "[" + shape.n() + ", " + shape.c() + (shape.s() == 1 ? "" : ", " + shape.s()) + "]");
        }
        Checks.noOverlap("y", y, x, "x", x, "gamma", gamma, "beta", beta, "saveMean", saveMean,
                "saveInvSpread", saveInvSpread);
        Checks.noOverlap("saveMean", saveMean, null, "x", x, "gamma", gamma, "beta", beta,
                "saveInvSpread", saveInvSpread);
        Checks.noOverlap("saveInvSpread", saveInvSpread, null, "x", x, "gamma", gamma, "beta", beta);

        LpBatchNormOps.forward(Kernels.primitives(), p, shape.n(), c, shape.s(), x, y, gamma, beta,
                saveMean, saveInvSpread, eps, BatchNorm.loop(parallelism, x, y, gamma, beta, saveMean, saveInvSpread));
    }

    /** {@link #backward(Shape, double, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, Parallelism)} on the calling thread. */
    public static void backward(Shape shape, double p, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                MemorySegment saveMean, MemorySegment saveInvSpread,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        backward(shape, p, dy, x, gamma, saveMean, saveInvSpread, dx, dgamma, dbeta, Parallelism.serial());
    }

    /**
     * Backward of {@link #forward} from its saved mean and inverse spread (formulas in the class
     * documentation). Each output is optional (an output mask): pass null for what is not wanted.
     *
     * @param shape         (N, C, S)
     * @param p             the forward's p: 1, 2 or {@link Double#POSITIVE_INFINITY}
     * @param dy            gradient of y, N*C*S floats
     * @param x             the forward input, N*C*S floats
     * @param gamma         C floats or null (1)
     * @param saveMean      C floats from the forward
     * @param saveInvSpread C floats from the forward
     * @param dx            N*C*S floats written, or null; may be exactly {@code dy}
     * @param dgamma        C floats written, or null
     * @param dbeta         C floats written, or null
     * @param parallelism   how channels are spread over threads
     * @throws IllegalArgumentException for a bad argument (see the class documentation)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void backward(Shape shape, double p, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                MemorySegment saveMean, MemorySegment saveInvSpread,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta,
                                Parallelism parallelism) {
        BatchNorm.requireShape(shape);
        requireP(p);
        BatchNorm.requireParallelism(parallelism);
        String what = shape.toString();
        long numel = shape.numel(), c = shape.c();
        Checks.tensor("dy", dy, numel, what, false);
        Checks.tensor("x", x, numel, what, false);
        Checks.optionalTensor("gamma", gamma, c, "one per channel", false);
        Checks.tensor("saveMean", saveMean, c, "one per channel", false);
        Checks.tensor("saveInvSpread", saveInvSpread, c, "one per channel", false);
        Checks.optionalTensor("dx", dx, numel, what, true);
        Checks.optionalTensor("dgamma", dgamma, c, "one per channel", true);
        Checks.optionalTensor("dbeta", dbeta, c, "one per channel", true);
        Checks.noOverlap("dx", dx, dy, "dy", dy, "x", x, "gamma", gamma, "saveMean", saveMean,
                "saveInvSpread", saveInvSpread, "dgamma", dgamma, "dbeta", dbeta);
        Checks.noOverlap("dgamma", dgamma, null, "dy", dy, "x", x, "gamma", gamma, "saveMean", saveMean,
                "saveInvSpread", saveInvSpread, "dbeta", dbeta);
        Checks.noOverlap("dbeta", dbeta, null, "dy", dy, "x", x, "gamma", gamma, "saveMean", saveMean,
                "saveInvSpread", saveInvSpread);

        LpBatchNormOps.backward(Kernels.primitives(), p, shape.n(), c, shape.s(), dy, x, gamma, saveMean,
                saveInvSpread, dx, dgamma, dbeta,
                BatchNorm.loop(parallelism, dy, x, gamma, saveMean, saveInvSpread, dx, dgamma, dbeta));
    }

    private static void requireP(double p) {
        if (!(p == 1 || p == 2 || p == Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("p must be 1, 2 or Infinity (Double.POSITIVE_INFINITY), got " + p);
        }
    }
}
