package io.github.vecnorm;

import io.github.vecnorm.internal.BatchNormOps;
import io.github.vecnorm.internal.Checks;
import io.github.vecnorm.internal.Kernels;
import io.github.vecnorm.internal.Loop;
import java.lang.foreign.MemorySegment;

/**
 * Batch Normalization (Ioffe and Szegedy, 2015) over float32 NCHW tensors in caller-owned memory
 * segments, with the semantics of PyTorch's {@code native_batch_norm} and
 * {@code native_batch_norm_backward}.
 *
 * <p>A tensor of shape (N, C, *spatial) is seen as (N, C, S) (see {@link Shape}); each channel is
 * normalized over its {@code m = N*S} values. Per-channel tensors (gamma, beta, running and saved
 * statistics, dgamma, dbeta) are C floats. Every segment must be exactly the size its shape implies.
 *
 * <h2>Aliasing</h2>
 * In place is allowed where the math is element-wise: {@code y} may be exactly {@code x} (same start
 * and size), {@code dx} may be exactly {@code dy}. Any other overlap between a written segment and
 * any other argument is rejected.
 *
 * <h2>Differences from ATen, on purpose</h2>
 * <ul>
 *   <li>Statistics come from one pass over x, not ATen's two; they agree to float rounding. x is read
 *   in memory order and each channel's Σ(x - x0) and Σ(x - x0)² about its first value x0 are added up
 *   (float lanes per run, or per run across the samples for short runs, totals in double); a channel
 *   whose x0 lies more than two standard deviations from its mean is summed once more about the mean.
 *   For S below 16 (or below 32 with many samples) the same sums run down the columns of x seen as an
 *   (N, C*S) matrix.</li>
 *   <li>eps must be finite and positive (ATen accepts 0, giving invstd 0 for a constant channel);
 *   momentum must lie in [0, 1] (ATen does not check).</li>
 *   <li>One value per channel in training is rejected here, with PyTorch's Python-level message;
 *   ATen itself would produce a NaN running variance.</li>
 *   <li>Results do not depend on the number of threads.</li>
 *   <li>A NaN or an infinity in x propagates as in ATen, within its channel only: that channel's y is NaN
 *   and its saved mean not finite (NaN where ATen's sum / N would give an infinity, when the infinity is
 *   the channel's first value, x0); every other channel is computed as if it were not there.</li>
 * </ul>
 *
 * <h2>Errors</h2>
 * Every argument is checked before anything is written: {@link IllegalArgumentException} for a null
 * required segment, a wrong size, a read-only output, forbidden aliasing, a bad eps or a single value
 * per channel in training; {@link IllegalStateException} for a segment whose arena is closed or that
 * is confined to another thread.
 */
public final class BatchNorm {

    /** PyTorch's default eps. */
    public static final double DEFAULT_EPS = 1e-5;

    private BatchNorm() {
    }

    /** {@link #forwardTraining(Shape, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, RunningStats, double, Parallelism)} on the calling thread. */
    public static void forwardTraining(Shape shape, MemorySegment x, MemorySegment y,
                                       MemorySegment gamma, MemorySegment beta,
                                       MemorySegment saveMean, MemorySegment saveInvstd,
                                       RunningStats running, double eps) {
        forwardTraining(shape, x, y, gamma, beta, saveMean, saveInvstd, running, eps, Parallelism.serial());
    }

    /**
     * Training-mode forward ({@code native_batch_norm(..., training=true, ...)}): per channel c, the mean
     * and biased variance over its m = N*S values, {@code invstd = 1/sqrt(var + eps)}, and
     * {@code y = (x - mean) * invstd * gamma + beta}.
     *
     * @param shape      (N, C, S); N*S must be at least 2
     * @param x          input, N*C*S floats, read
     * @param y          output, N*C*S floats, written; may be exactly {@code x}
     * @param gamma      scale, C floats, or null for 1 (affine off)
     * @param beta       shift, C floats, or null for 0
     * @param saveMean   C floats, written: the batch mean, for backward
     * @param saveInvstd C floats, written: {@code 1/sqrt(var + eps)}, for backward
     * @param running    running statistics to update (momentum or cumulative average, unbiased variance
     *                   {@code var * m/(m-1)}), or null to leave none
     * @param eps        added to the variance; finite and {@code > 0}
     * @param parallelism how channels are spread over threads
     */
    public static void forwardTraining(Shape shape, MemorySegment x, MemorySegment y,
                                       MemorySegment gamma, MemorySegment beta,
                                       MemorySegment saveMean, MemorySegment saveInvstd,
                                       RunningStats running, double eps, Parallelism parallelism) {
        requireShape(shape);
        requireParallelism(parallelism);
        String what = shape.toString();
        long numel = shape.numel(), c = shape.c();
        Checks.tensor("x", x, numel, what, false);
        Checks.tensor("y", y, numel, what, true);
        Checks.optionalTensor("gamma", gamma, c, "one per channel", false);
        Checks.optionalTensor("beta", beta, c, "one per channel", false);
        Checks.tensor("saveMean", saveMean, c, "one per channel", true);
        Checks.tensor("saveInvstd", saveInvstd, c, "one per channel", true);
        MemorySegment rm = running == null ? null : running.mean();
        MemorySegment rv = running == null ? null : running.var();
        Checks.optionalTensor("runningMean", rm, c, "one per channel", true);
        Checks.optionalTensor("runningVar", rv, c, "one per channel", true);
        Checks.eps(eps);
        if (shape.perChannel() < 2) {
            throw new IllegalArgumentException("Expected more than 1 value per channel when training, got input size "
                    + "[" + shape.n() + ", " + shape.c() + (shape.s() == 1 ? "" : ", " + shape.s()) + "]");
        }
        Checks.noOverlap("y", y, x, "x", x, "gamma", gamma, "beta", beta, "saveMean", saveMean,
                "saveInvstd", saveInvstd, "runningMean", rm, "runningVar", rv);
        Checks.noOverlap("saveMean", saveMean, null, "x", x, "gamma", gamma, "beta", beta,
                "saveInvstd", saveInvstd, "runningMean", rm, "runningVar", rv);
        Checks.noOverlap("saveInvstd", saveInvstd, null, "x", x, "gamma", gamma, "beta", beta,
                "runningMean", rm, "runningVar", rv);
        Checks.noOverlap("runningMean", rm, null, "x", x, "gamma", gamma, "beta", beta, "runningVar", rv);
        Checks.noOverlap("runningVar", rv, null, "x", x, "gamma", gamma, "beta", beta);

        double factor = running == null ? 0 : running.nextFactor();
        BatchNormOps.forwardTraining(Kernels.primitives(), shape.n(), c, shape.s(), x, y, gamma, beta,
                saveMean, saveInvstd, rm, rv, factor, eps, loop(parallelism, x, y, gamma, beta, saveMean, saveInvstd, rm, rv));
        if (running != null) running.countBatch();
    }

    /** {@link #forwardInference(Shape, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, double, Parallelism)} on the calling thread. */
    public static void forwardInference(Shape shape, MemorySegment x, MemorySegment y,
                                        MemorySegment gamma, MemorySegment beta,
                                        MemorySegment runningMean, MemorySegment runningVar, double eps) {
        forwardInference(shape, x, y, gamma, beta, runningMean, runningVar, eps, Parallelism.serial());
    }

    /**
     * Inference-mode forward ({@code native_batch_norm(..., training=false, ...)}): the running statistics
     * folded per channel into {@code y = (x - running_mean) * a + beta} with
     * {@code a = gamma / sqrt(running_var + eps)}: one read of x, one write of y.
     *
     * @param shape       (N, C, S)
     * @param x           input, N*C*S floats
     * @param y           output, N*C*S floats; may be exactly {@code x}
     * @param gamma       C floats or null (1)
     * @param beta        C floats or null (0)
     * @param runningMean C floats, read
     * @param runningVar  C floats, read
     * @param eps         finite and {@code > 0}
     * @param parallelism how channels are spread over threads
     */
    public static void forwardInference(Shape shape, MemorySegment x, MemorySegment y,
                                        MemorySegment gamma, MemorySegment beta,
                                        MemorySegment runningMean, MemorySegment runningVar, double eps,
                                        Parallelism parallelism) {
        requireShape(shape);
        requireParallelism(parallelism);
        String what = shape.toString();
        long numel = shape.numel(), c = shape.c();
        Checks.tensor("x", x, numel, what, false);
        Checks.tensor("y", y, numel, what, true);
        Checks.optionalTensor("gamma", gamma, c, "one per channel", false);
        Checks.optionalTensor("beta", beta, c, "one per channel", false);
        Checks.tensor("runningMean", runningMean, c, "one per channel", false);
        Checks.tensor("runningVar", runningVar, c, "one per channel", false);
        Checks.eps(eps);
        Checks.noOverlap("y", y, x, "x", x, "gamma", gamma, "beta", beta,
                "runningMean", runningMean, "runningVar", runningVar);

        BatchNormOps.forwardInference(Kernels.primitives(), shape.n(), c, shape.s(), x, y, gamma, beta,
                runningMean, runningVar, eps, loop(parallelism, x, y, gamma, beta, runningMean, runningVar));
    }

    /** {@link #backward(Shape, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, Parallelism)} on the calling thread. */
    public static void backward(Shape shape, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                MemorySegment saveMean, MemorySegment saveInvstd,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        backward(shape, dy, x, gamma, saveMean, saveInvstd, dx, dgamma, dbeta, Parallelism.serial());
    }

    /**
     * Training-mode backward ({@code native_batch_norm_backward(..., train=true, ...)}) from the statistics
     * saved by {@link #forwardTraining}: with {@code xhat = (x - mean) * invstd},
     * <pre>
     *   dbeta  = Σ dy
     *   dgamma = Σ dy * xhat
     *   dx     = gamma * invstd / m * (m * dy - dbeta - xhat * dgamma)
     * </pre>
     * Each output is optional (ATen's output mask): pass null for what is not wanted.
     *
     * @param shape      (N, C, S)
     * @param dy         gradient of y, N*C*S floats
     * @param x          the forward input, N*C*S floats
     * @param gamma      C floats or null (1)
     * @param saveMean   C floats from the forward
     * @param saveInvstd C floats from the forward
     * @param dx         N*C*S floats written, or null; may be exactly {@code dy}
     * @param dgamma     C floats written, or null
     * @param dbeta      C floats written, or null
     * @param parallelism how channels are spread over threads
     */
    public static void backward(Shape shape, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                MemorySegment saveMean, MemorySegment saveInvstd,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta,
                                Parallelism parallelism) {
        requireShape(shape);
        requireParallelism(parallelism);
        String what = shape.toString();
        long numel = shape.numel(), c = shape.c();
        Checks.tensor("dy", dy, numel, what, false);
        Checks.tensor("x", x, numel, what, false);
        Checks.optionalTensor("gamma", gamma, c, "one per channel", false);
        Checks.tensor("saveMean", saveMean, c, "one per channel", false);
        Checks.tensor("saveInvstd", saveInvstd, c, "one per channel", false);
        checkGradOutputs(numel, what, c, dy, x, gamma, "saveMean", saveMean, "saveInvstd", saveInvstd, dx, dgamma, dbeta);

        BatchNormOps.backward(Kernels.primitives(), shape.n(), c, shape.s(), dy, x, gamma, saveMean, saveInvstd,
                dx, dgamma, dbeta, loop(parallelism, dy, x, gamma, saveMean, saveInvstd, dx, dgamma, dbeta));
    }

    /** {@link #backwardInference(Shape, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, double, MemorySegment, MemorySegment, MemorySegment, Parallelism)} on the calling thread. */
    public static void backwardInference(Shape shape, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                         MemorySegment runningMean, MemorySegment runningVar, double eps,
                                         MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        backwardInference(shape, dy, x, gamma, runningMean, runningVar, eps, dx, dgamma, dbeta, Parallelism.serial());
    }

    /**
     * Inference-mode backward ({@code native_batch_norm_backward(..., train=false, ...)}): the statistics
     * are constants, so with {@code invstd = 1/sqrt(running_var + eps)},
     * {@code dx = dy * gamma * invstd}, {@code dgamma = Σ dy * (x - running_mean) * invstd},
     * {@code dbeta = Σ dy}. Each output optional (null).
     *
     * @param x the forward input; read only when dgamma is requested, but always required and checked
     */
    public static void backwardInference(Shape shape, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                         MemorySegment runningMean, MemorySegment runningVar, double eps,
                                         MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta,
                                         Parallelism parallelism) {
        requireShape(shape);
        requireParallelism(parallelism);
        String what = shape.toString();
        long numel = shape.numel(), c = shape.c();
        Checks.tensor("dy", dy, numel, what, false);
        Checks.tensor("x", x, numel, what, false);
        Checks.optionalTensor("gamma", gamma, c, "one per channel", false);
        Checks.tensor("runningMean", runningMean, c, "one per channel", false);
        Checks.tensor("runningVar", runningVar, c, "one per channel", false);
        Checks.eps(eps);
        checkGradOutputs(numel, what, c, dy, x, gamma, "runningMean", runningMean, "runningVar", runningVar, dx, dgamma, dbeta);

        BatchNormOps.backwardInference(Kernels.primitives(), shape.n(), c, shape.s(), dy, x, gamma,
                runningMean, runningVar, eps, dx, dgamma, dbeta,
                loop(parallelism, dy, x, gamma, runningMean, runningVar, dx, dgamma, dbeta));
    }

    private static void checkGradOutputs(long numel, String what, long c, MemorySegment dy, MemorySegment x,
                                         MemorySegment gamma, String statA, MemorySegment a, String statB,
                                         MemorySegment b, MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        Checks.optionalTensor("dx", dx, numel, what, true);
        Checks.optionalTensor("dgamma", dgamma, c, "one per channel", true);
        Checks.optionalTensor("dbeta", dbeta, c, "one per channel", true);
        Checks.noOverlap("dx", dx, dy, "dy", dy, "x", x, "gamma", gamma, statA, a, statB, b,
                "dgamma", dgamma, "dbeta", dbeta);
        Checks.noOverlap("dgamma", dgamma, null, "dy", dy, "x", x, "gamma", gamma, statA, a, statB, b, "dbeta", dbeta);
        Checks.noOverlap("dbeta", dbeta, null, "dy", dy, "x", x, "gamma", gamma, statA, a, statB, b);
    }

    static void requireShape(Shape shape) {
        if (shape == null) throw new IllegalArgumentException("shape must not be null");
    }

    static void requireParallelism(Parallelism parallelism) {
        if (parallelism == null) throw new IllegalArgumentException("parallelism must not be null (use Parallelism.serial())");
    }

    /** The loop for a call: spread over threads only when every segment may be touched by them. */
    static Loop loop(Parallelism par, MemorySegment... segs) {
        return par.isSerial() || !Checks.shareable(segs) ? Loop.SERIAL : par.loop();
    }
}
