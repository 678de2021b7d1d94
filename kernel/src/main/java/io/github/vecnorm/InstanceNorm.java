package io.github.vecnorm;

import io.github.vecnorm.internal.BatchNormOps;
import io.github.vecnorm.internal.Checks;
import io.github.vecnorm.internal.InstanceNormOps;
import io.github.vecnorm.internal.Kernels;
import java.lang.foreign.MemorySegment;

/**
 * Instance Normalization (Ulyanov, Vedaldi and Lempitsky, 2016) over float32 NCHW tensors in
 * caller-owned memory segments, with the semantics of PyTorch's {@code F.instance_norm} /
 * {@code nn.InstanceNorm2d}.
 *
 * <p>A tensor of shape (N, C, *spatial) is seen as (N, C, S) (see {@link Shape}). With input statistics
 * ({@link #forwardTraining}: PyTorch's {@code use_input_stats}, i.e. training, or no tracked running
 * statistics) every (sample, channel) is normalized over its S values — GroupNorm with one group per
 * channel: mean, biased variance var, {@code invstd = 1/sqrt(var + eps)},
 * {@code y = (x - mean) * invstd * gamma[c] + beta[c]}. With running statistics
 * ({@link #forwardInference}) every sample uses the same per-channel constants, as BatchNorm inference.
 * gamma, beta, running statistics, dgamma and dbeta are C floats (affine and running statistics are
 * optional, off by default in PyTorch); saved statistics are N*C floats, index {@code n*C + c}.
 *
 * <h2>Running statistics</h2>
 * ATen updates one copy of the running statistics per instance (unbiased variance over S values,
 * {@code var * S/(S-1)}) and then averages the copies over the batch, so with factor f (the
 * momentum, see {@link RunningStats}):
 * <pre>
 *   running_mean = (1 - f) * running_mean + f * mean_n(mean[n, c])
 *   running_var  = (1 - f) * running_var  + f * mean_n(var[n, c] * S/(S-1))
 * </pre>
 *
 * <h2>Aliasing</h2>
 * {@code y} may be exactly {@code x}, {@code dx} may be exactly {@code dy}; any other overlap between a
 * written segment and another argument is rejected.
 *
 * <h2>Threads</h2>
 * (sample, channel) pairs, or channels, are spread over the tasks of a {@link Parallelism}; sums over
 * the batch run in the fixed order n = 0, 1, ..., so results are bitwise the same for every thread count.
 *
 * <h2>Differences from PyTorch, on purpose</h2>
 * <ul>
 *   <li>Statistics come from Σ(x - x0) and Σ(x - x0)² about the instance's first value x0 (float lanes,
 *   totals in double), taken once more about the mean when x0 lies more than two standard deviations
 *   from it; instances over 512 KiB use Welford accumulators shifted by x0. ATen's batch_norm path
 *   differs by float rounding.</li>
 *   <li>eps must be finite and positive; momentum in [0, 1] (PyTorch checks neither).</li>
 *   <li>A cumulative average ({@link RunningStats#cumulative}) is accepted and works as for BatchNorm;
 *   PyTorch's InstanceNorm has no {@code momentum=None} mode.</li>
 *   <li>Saved statistics are optional outputs here (PyTorch's instance_norm returns only y).</li>
 * </ul>
 *
 * <h2>Errors</h2>
 * Every argument is checked before anything is written: {@link IllegalArgumentException} for a null
 * required argument, a wrong size, a read-only output, forbidden aliasing, a bad eps or a single spatial
 * element with input statistics (PyTorch's message); {@link IllegalStateException} for a segment whose
 * arena is closed or that is confined to another thread.
 */
public final class InstanceNorm {

    /** PyTorch's default eps. */
    public static final double DEFAULT_EPS = 1e-5;

    private InstanceNorm() {
    }

    /** {@link #forwardTraining(Shape, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, RunningStats, double, Parallelism)} on the calling thread. */
    public static void forwardTraining(Shape shape, MemorySegment x, MemorySegment y,
                                       MemorySegment gamma, MemorySegment beta,
                                       MemorySegment saveMean, MemorySegment saveInvstd,
                                       RunningStats running, double eps) {
        forwardTraining(shape, x, y, gamma, beta, saveMean, saveInvstd, running, eps, Parallelism.serial());
    }

    /**
     * Forward with input statistics: per (n, c), mean and {@code invstd = 1/sqrt(var + eps)} over its S
     * values, {@code y = (x - mean) * invstd * gamma[c] + beta[c]}; the running statistics, if given, are
     * updated as described above.
     *
     * @param shape       (N, C, S); S must be at least 2
     * @param x           input, N*C*S floats, read
     * @param y           output, N*C*S floats, written; may be exactly {@code x}
     * @param gamma       C floats, or null for 1 (affine off)
     * @param beta        C floats, or null for 0
     * @param saveMean    N*C floats written (for backward), or null
     * @param saveInvstd  N*C floats written (for backward), or null
     * @param running     running statistics (C floats each) to update, or null
     * @param eps         added to the variance; finite and {@code > 0}
     * @param parallelism how (n, c) pairs are spread over threads
     * @throws IllegalArgumentException for a bad argument (see the class documentation)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void forwardTraining(Shape shape, MemorySegment x, MemorySegment y,
                                       MemorySegment gamma, MemorySegment beta,
                                       MemorySegment saveMean, MemorySegment saveInvstd,
                                       RunningStats running, double eps, Parallelism parallelism) {
        BatchNorm.requireShape(shape);
        BatchNorm.requireParallelism(parallelism);
        String what = shape.toString();
        long numel = shape.numel(), c = shape.c(), nc = shape.n() * c;
        Checks.tensor("x", x, numel, what, false);
        Checks.tensor("y", y, numel, what, true);
        Checks.optionalTensor("gamma", gamma, c, "one per channel", false);
        Checks.optionalTensor("beta", beta, c, "one per channel", false);
        Checks.optionalTensor("saveMean", saveMean, nc, "one per (sample, channel)", true);
        Checks.optionalTensor("saveInvstd", saveInvstd, nc, "one per (sample, channel)", true);
        MemorySegment rm = running == null ? null : running.mean();
        MemorySegment rv = running == null ? null : running.var();
        Checks.optionalTensor("runningMean", rm, c, "one per channel", true);
        Checks.optionalTensor("runningVar", rv, c, "one per channel", true);
        Checks.eps(eps);
        if (shape.s() < 2) {
            throw new IllegalArgumentException("Expected more than 1 spatial element when training, got input size "
                    + "[" + shape.n() + ", " + c + ", " + shape.s() + "]");
        }
        if (running != null && nc > (Integer.MAX_VALUE - 8) / 2) {
            throw new IllegalArgumentException("shape: N*C = " + nc + " exceeds the " + (Integer.MAX_VALUE - 8) / 2
                    + " per-instance statistics a running-statistics update can hold");
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
        InstanceNormOps.forwardTraining(Kernels.primitives(), shape.n(), c, shape.s(), x, y, gamma, beta,
                saveMean, saveInvstd, rm, rv, factor, eps,
                BatchNorm.loop(parallelism, x, y, gamma, beta, saveMean, saveInvstd, rm, rv));
        if (running != null) running.countBatch();
    }

    /** {@link #forwardInference(Shape, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, double, Parallelism)} on the calling thread. */
    public static void forwardInference(Shape shape, MemorySegment x, MemorySegment y,
                                        MemorySegment gamma, MemorySegment beta,
                                        MemorySegment runningMean, MemorySegment runningVar, double eps) {
        forwardInference(shape, x, y, gamma, beta, runningMean, runningVar, eps, Parallelism.serial());
    }

    /**
     * Forward with the running statistics ({@code use_input_stats=False}):
     * {@code y = (x - running_mean[c]) / sqrt(running_var[c] + eps) * gamma[c] + beta[c]} for every sample.
     *
     * @param shape       (N, C, S)
     * @param x           input, N*C*S floats
     * @param y           output, N*C*S floats; may be exactly {@code x}
     * @param gamma       C floats or null (1)
     * @param beta        C floats or null (0)
     * @param runningMean C floats, read; required
     * @param runningVar  C floats, read; required
     * @param eps         finite and {@code > 0}
     * @param parallelism how the work is spread over threads
     * @throws IllegalArgumentException for a bad argument, e.g. missing running statistics (PyTorch's message)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void forwardInference(Shape shape, MemorySegment x, MemorySegment y,
                                        MemorySegment gamma, MemorySegment beta,
                                        MemorySegment runningMean, MemorySegment runningVar, double eps,
                                        Parallelism parallelism) {
        BatchNorm.requireShape(shape);
        BatchNorm.requireParallelism(parallelism);
        requireRunning(runningMean, runningVar);
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

        // the same per-channel constants for every sample: exactly BatchNorm's inference body
        BatchNormOps.forwardInference(Kernels.primitives(), shape.n(), c, shape.s(), x, y, gamma, beta,
                runningMean, runningVar, eps, BatchNorm.loop(parallelism, x, y, gamma, beta, runningMean, runningVar));
    }

    /** {@link #backward(Shape, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, Parallelism)} on the calling thread. */
    public static void backward(Shape shape, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                MemorySegment saveMean, MemorySegment saveInvstd,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        backward(shape, dy, x, gamma, saveMean, saveInvstd, dx, dgamma, dbeta, Parallelism.serial());
    }

    /**
     * Backward with the input statistics saved by {@link #forwardTraining}: with
     * {@code xhat = (x - mean) * invstd} and {@code g = gamma[c] * dy}, per (n, c)
     * <pre>
     *   dx        = invstd * (g - mean_s(g) - xhat * mean_s(g * xhat))
     *   dgamma[c] = Σ_n Σ_s dy * xhat
     *   dbeta[c]  = Σ_n Σ_s dy
     * </pre>
     * Each output optional (null). The running statistics play no part.
     *
     * @param shape       (N, C, S)
     * @param dy          gradient of y, N*C*S floats
     * @param x           the forward input, N*C*S floats
     * @param gamma       C floats or null (1)
     * @param saveMean    N*C floats from the forward
     * @param saveInvstd  N*C floats from the forward
     * @param dx          N*C*S floats written, or null; may be exactly {@code dy}
     * @param dgamma      C floats written, or null
     * @param dbeta       C floats written, or null
     * @param parallelism how (n, c) pairs and channels are spread over threads
     * @throws IllegalArgumentException for a bad argument (see the class documentation)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void backward(Shape shape, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                MemorySegment saveMean, MemorySegment saveInvstd,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Parallelism parallelism) {
        BatchNorm.requireShape(shape);
        BatchNorm.requireParallelism(parallelism);
        GroupNorm.checkBackward(shape, dy, x, gamma, "saveMean", saveMean, "saveInvstd", saveInvstd,
                shape.n() * shape.c(), "one per (sample, channel)", dx, dgamma, dbeta);

        InstanceNormOps.backward(Kernels.primitives(), shape.n(), shape.c(), shape.s(), dy, x, gamma,
                saveMean, saveInvstd, dx, dgamma, dbeta,
                BatchNorm.loop(parallelism, dy, x, gamma, saveMean, saveInvstd, dx, dgamma, dbeta));
    }

    /** {@link #backwardInference(Shape, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, double, MemorySegment, MemorySegment, MemorySegment, Parallelism)} on the calling thread. */
    public static void backwardInference(Shape shape, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                         MemorySegment runningMean, MemorySegment runningVar, double eps,
                                         MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta) {
        backwardInference(shape, dy, x, gamma, runningMean, runningVar, eps, dx, dgamma, dbeta, Parallelism.serial());
    }

    /**
     * Backward of {@link #forwardInference} (the running statistics are constants): with
     * {@code invstd = 1/sqrt(running_var + eps)}, {@code dx = dy * gamma * invstd},
     * {@code dgamma = Σ dy * (x - running_mean) * invstd}, {@code dbeta = Σ dy}. Each output optional (null).
     *
     * @param x the forward input; read only when dgamma is requested, but always required and checked
     */
    public static void backwardInference(Shape shape, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                                         MemorySegment runningMean, MemorySegment runningVar, double eps,
                                         MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta,
                                         Parallelism parallelism) {
        BatchNorm.requireShape(shape);
        BatchNorm.requireParallelism(parallelism);
        requireRunning(runningMean, runningVar);
        String what = shape.toString();
        long numel = shape.numel(), c = shape.c();
        Checks.tensor("dy", dy, numel, what, false);
        Checks.tensor("x", x, numel, what, false);
        Checks.optionalTensor("gamma", gamma, c, "one per channel", false);
        Checks.tensor("runningMean", runningMean, c, "one per channel", false);
        Checks.tensor("runningVar", runningVar, c, "one per channel", false);
        Checks.eps(eps);
        Checks.optionalTensor("dx", dx, numel, what, true);
        Checks.optionalTensor("dgamma", dgamma, c, "one per channel", true);
        Checks.optionalTensor("dbeta", dbeta, c, "one per channel", true);
        Checks.noOverlap("dx", dx, dy, "dy", dy, "x", x, "gamma", gamma, "runningMean", runningMean,
                "runningVar", runningVar, "dgamma", dgamma, "dbeta", dbeta);
        Checks.noOverlap("dgamma", dgamma, null, "dy", dy, "x", x, "gamma", gamma, "runningMean", runningMean,
                "runningVar", runningVar, "dbeta", dbeta);
        Checks.noOverlap("dbeta", dbeta, null, "dy", dy, "x", x, "gamma", gamma, "runningMean", runningMean,
                "runningVar", runningVar);

        BatchNormOps.backwardInference(Kernels.primitives(), shape.n(), c, shape.s(), dy, x, gamma,
                runningMean, runningVar, eps, dx, dgamma, dbeta,
                BatchNorm.loop(parallelism, dy, x, gamma, runningMean, runningVar, dx, dgamma, dbeta));
    }

    private static void requireRunning(MemorySegment runningMean, MemorySegment runningVar) {
        if (runningMean == null || runningVar == null) {
            throw new IllegalArgumentException(
                    "Expected running_mean and running_var to be defined when use_input_stats is false");
        }
    }
}
