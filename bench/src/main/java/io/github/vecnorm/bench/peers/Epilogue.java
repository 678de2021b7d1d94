package io.github.vecnorm.bench.peers;

import io.github.vecnorm.bench.Problem;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The per-channel steps (C values, next to nothing beside the N*C*S work) that turn what a peer
 * computes into the problem's contract, which is ATen's: saved inverse standard deviation rather than
 * variance, and running statistics updated with PyTorch's momentum and the unbiased variance.
 */
final class Epilogue {

    private Epilogue() {
    }

    /** saveInvstd[c] = 1/sqrt(var[c] + eps), in double as ATen does, from the biased batch variance. */
    static void invstdFromVariance(Problem p, MemorySegment variance) {
        for (long c = 0, channels = p.shape.c(); c < channels; c++) {
            double v = variance.getAtIndex(ValueLayout.JAVA_FLOAT, c);
            p.saveInvstd.setAtIndex(ValueLayout.JAVA_FLOAT, c, (float) (1 / Math.sqrt(v + p.eps)));
        }
    }

    /** var[c] = 1/saveInvstd[c]^2 - eps: the biased batch variance back, for peers that take it. */
    static void varianceFromInvstd(Problem p, MemorySegment variance) {
        for (long c = 0, channels = p.shape.c(); c < channels; c++) {
            double invstd = p.saveInvstd.getAtIndex(ValueLayout.JAVA_FLOAT, c);
            variance.setAtIndex(ValueLayout.JAVA_FLOAT, c, (float) (1 / (invstd * invstd) - p.eps));
        }
    }

    /**
     * runningMean = (1 - m) * runningMean + m * saveMean and runningVar = (1 - m) * runningVar +
     * m * var * n/(n-1), with m the problem's momentum and n = N*S (as ATen: the unbiased variance).
     */
    static void updateRunningStats(Problem p, MemorySegment biasedVariance) {
        double n = (double) p.shape.n() * p.shape.s();
        float m = (float) p.momentum;
        for (long c = 0, channels = p.shape.c(); c < channels; c++) {
            float mean = p.saveMean.getAtIndex(ValueLayout.JAVA_FLOAT, c);
            float unbiased = (float) (biasedVariance.getAtIndex(ValueLayout.JAVA_FLOAT, c) * n / (n - 1));
            float rm = p.runningMean.getAtIndex(ValueLayout.JAVA_FLOAT, c);
            float rv = p.runningVar.getAtIndex(ValueLayout.JAVA_FLOAT, c);
            p.runningMean.setAtIndex(ValueLayout.JAVA_FLOAT, c, m * mean + (1 - m) * rm);
            p.runningVar.setAtIndex(ValueLayout.JAVA_FLOAT, c, m * unbiased + (1 - m) * rv);
        }
    }
}
