package io.github.vecnorm;

import java.lang.foreign.MemorySegment;

/**
 * Running (population) statistics of a normalization layer, updated by training-mode forward
 * passes and read by inference: {@code running_mean} and {@code running_var}, C floats each, in
 * caller-owned segments, plus PyTorch's {@code num_batches_tracked} counter.
 *
 * <p>Each training batch with mean {@code mean} and biased variance {@code var} over {@code m} values
 * updates, with factor {@code f}:
 * <pre>
 *   running_mean = (1 - f) * running_mean + f * mean
 *   running_var  = (1 - f) * running_var  + f * var * m / (m - 1)     (unbiased)
 * </pre>
 * {@code f} is the momentum (PyTorch's default 0.1), or, for a cumulative average (PyTorch's
 * {@code momentum=None}), {@code 1 / num_batches_tracked} counted after the increment, so the first
 * batch gets {@code f = 1}. The counter is incremented by every successful update, whichever mode.
 *
 * <p>Not thread-safe: one instance belongs to one layer, updated by one call at a time.
 */
public final class RunningStats {

    /** PyTorch's default momentum. */
    public static final double DEFAULT_MOMENTUM = 0.1;

    private final MemorySegment mean;
    private final MemorySegment var;
    private final double momentum; // NaN means cumulative average
    private long numBatchesTracked;

    private RunningStats(MemorySegment mean, MemorySegment var, double momentum, long numBatchesTracked) {
        if (mean == null) throw new IllegalArgumentException("runningMean must not be null");
        if (var == null) throw new IllegalArgumentException("runningVar must not be null");
        if (numBatchesTracked < 0) {
            throw new IllegalArgumentException("numBatchesTracked must be >= 0, got " + numBatchesTracked);
        }
        this.mean = mean;
        this.var = var;
        this.momentum = momentum;
        this.numBatchesTracked = numBatchesTracked;
    }

    /**
     * Exponential moving average with the given momentum, as {@code nn.BatchNorm2d(momentum=m)}.
     *
     * @param runningMean C floats, read and written
     * @param runningVar  C floats, read and written
     * @param momentum    in [0, 1]
     * @throws IllegalArgumentException if a segment is null or momentum is NaN or outside [0, 1]
     */
    public static RunningStats withMomentum(MemorySegment runningMean, MemorySegment runningVar, double momentum) {
        if (!(momentum >= 0.0 && momentum <= 1.0)) {
            throw new IllegalArgumentException("momentum must be in [0, 1], got " + momentum);
        }
        return new RunningStats(runningMean, runningVar, momentum, 0);
    }

    /** Exponential moving average with PyTorch's default momentum, 0.1. */
    public static RunningStats of(MemorySegment runningMean, MemorySegment runningVar) {
        return withMomentum(runningMean, runningVar, DEFAULT_MOMENTUM);
    }

    /**
     * Cumulative moving average, as {@code nn.BatchNorm2d(momentum=None)}: factor
     * {@code 1 / num_batches_tracked}.
     *
     * @param numBatchesTracked batches already averaged into the segments (0 for fresh statistics)
     */
    public static RunningStats cumulative(MemorySegment runningMean, MemorySegment runningVar, long numBatchesTracked) {
        return new RunningStats(runningMean, runningVar, Double.NaN, numBatchesTracked);
    }

    /** The running mean segment, C floats. */
    public MemorySegment mean() {
        return mean;
    }

    /** The running variance segment, C floats. */
    public MemorySegment var() {
        return var;
    }

    /** True for a cumulative average (PyTorch's {@code momentum=None}). */
    public boolean isCumulative() {
        return Double.isNaN(momentum);
    }

    /** The momentum, or NaN for a cumulative average. */
    public double momentum() {
        return momentum;
    }

    /** Batches counted so far (PyTorch's {@code num_batches_tracked}). */
    public long numBatchesTracked() {
        return numBatchesTracked;
    }

    /** The factor the next update will use (counts the batch about to be added). */
    public double nextFactor() {
        return isCumulative() ? 1.0 / (numBatchesTracked + 1) : momentum;
    }

    /** Called by the kernels once a batch has been folded in. */
    void countBatch() {
        numBatchesTracked++;
    }
}
