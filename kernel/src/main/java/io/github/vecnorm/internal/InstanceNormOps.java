package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * InstanceNorm bodies: with input statistics it is GroupNorm with one group per channel (plus the
 * running statistics PyTorch keeps); with running statistics it is BatchNorm inference, the same
 * per-channel constants for every sample. No validation here ({@code io.github.vecnorm.InstanceNorm} guards).
 */
public final class InstanceNormOps {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;

    private InstanceNormOps() {
    }

    /**
     * Forward with per-(n, c) statistics; when runMean is not null, the running statistics move by
     * {@code factor} towards the batch average of the instances' means and unbiased variances
     * (what ATen's repeat / batch_norm / mean(0) amounts to), averaged over n in order n = 0, 1, ...
     */
    public static void forwardTraining(Primitives p, long n, long c, long s, MemorySegment x, MemorySegment y,
                                       MemorySegment gamma, MemorySegment beta,
                                       MemorySegment saveMean, MemorySegment saveInvstd,
                                       MemorySegment runMean, MemorySegment runVar, double factor, double eps, Loop loop) {
        // the caller's scratch (GroupNormOps.forward takes no doubles slot): every entry is written by its group
        double[] stats = runMean == null ? null : Scratch.doubles(0, 2 * n * c);
        GroupNormOps.forward(p, n, c, s, c, x, y, gamma, beta, saveMean, saveInvstd, eps, stats, loop);
        if (runMean == null) return;
        for (long ch = 0; ch < c; ch++) {
            double mu = 0, var = 0;
            for (long i = 0; i < n; i++) {
                int k = (int) (2 * (i * c + ch));
                mu += stats[k];
                var += stats[k + 1];
            }
            mu /= n;
            var /= n;
            runMean.set(F, ch * B, (float) ((1 - factor) * runMean.get(F, ch * B) + factor * mu));
            runVar.set(F, ch * B, (float) ((1 - factor) * runVar.get(F, ch * B) + factor * var));
        }
    }

    /** Backward with the saved per-(n, c) statistics: GroupNorm's with G = C. */
    public static void backward(Primitives p, long n, long c, long s, MemorySegment dy, MemorySegment x,
                                MemorySegment gamma, MemorySegment saveMean, MemorySegment saveInvstd,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        GroupNormOps.backward(p, n, c, s, c, dy, x, gamma, saveMean, saveInvstd, dx, dgamma, dbeta, loop);
    }
}
