package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;

/**
 * The L_p short-run primitives ({@link Primitives#sumAbsDiffRuns}, {@link Primitives#minMaxRuns},
 * {@link Primitives#countStepsRuns}, {@link Primitives#gradApplyStepsRuns}) as their definitions: the one-run
 * primitive of the same implementation, run by run. The scalar twin is exactly this; the Vector API one falls
 * back to it for runs shorter than a vector.
 */
public final class RunsByRun {

    private static final long B = Float.BYTES;

    private RunsByRun() {
    }

    /** {@link Primitives#sumAbsDiffRuns} run by run, sample by sample. */
    public static void sumAbsDiff(Primitives p, MemorySegment x, long off, long samples, long sampleStride, int len,
                                  int from, int to, float[] coef, int coefOff, int coefStride, double[] out,
                                  int outOff) {
        for (long i = 0; i < samples; i++) {
            for (int r = from; r < to; r++) {
                int k = coefOff + r * coefStride;
                out[outOff + r] += p.sumAbsDiff(x, off + i * sampleStride + (long) r * len * B, 1, len, 0, coef[k],
                        coef[k + 1]);
            }
        }
    }

    /** {@link Primitives#minMaxRuns}: each run's minMax over the samples, merged by Math.min/max. */
    public static void minMax(Primitives p, MemorySegment x, long off, long samples, long sampleStride, int len,
                              int from, int to, double[] lo, double[] hi, int outOff) {
        float[] mm = new float[2];
        for (int r = from; r < to; r++) {
            mm[0] = Float.POSITIVE_INFINITY;
            mm[1] = Float.NEGATIVE_INFINITY;
            p.minMax(x, off + (long) r * len * B, samples, len, sampleStride, mm);
            lo[outOff + r] = Math.min(lo[outOff + r], mm[0]);
            hi[outOff + r] = Math.max(hi[outOff + r], mm[1]);
        }
    }

    /** {@link Primitives#countStepsRuns}: each run's countSteps over the samples. */
    public static void countSteps(Primitives p, MemorySegment x, long off, long samples, long sampleStride, int len,
                                  int from, int to, float[] coef, int coefOff, int coefStride, double[] atHi,
                                  double[] atLo, int outOff) {
        long[] counts = new long[2];
        for (int r = from; r < to; r++) {
            int k = coefOff + r * coefStride;
            counts[0] = 0;
            counts[1] = 0;
            p.countSteps(x, off + (long) r * len * B, samples, len, sampleStride, coef[k], coef[k + 2], counts);
            atHi[outOff + r] += counts[0];
            atLo[outOff + r] += counts[1];
        }
    }

    /** {@link Primitives#gradApplyStepsRuns}: gradApplySteps run by run. */
    public static void gradApplySteps(Primitives p, MemorySegment dy, long dyOff, MemorySegment x, long xOff,
                                      MemorySegment dx, long dxOff, int runs, int len, float[] coef, int coefOff,
                                      int coefStride) {
        for (int r = 0; r < runs; r++) {
            int k = coefOff + r * coefStride;
            long d = (long) r * len * B;
            p.gradApplySteps(dy, dyOff + d, x, xOff + d, dx, dxOff + d, 1, len, 0, coef[k], coef[k + 1], coef[k + 2],
                    coef[k + 3], coef[k + 4], coef[k + 5]);
        }
    }
}
