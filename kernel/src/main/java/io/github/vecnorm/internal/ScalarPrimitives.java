package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The scalar twin: plain loops, one float at a time, statistics in double. The readable statement
 * of each primitive and the fallback when the Vector API is not available.
 */
public final class ScalarPrimitives implements Primitives {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;

    @Override
    public String name() {
        return "scalar";
    }

    @Override
    public int lanes() {
        return 1;
    }

    @Override
    public void moments(MemorySegment x, long off, long runs, int len, long stride, float shift, Moments acc) {
        // Welford in double over the shifted values: one divide per element, exact enough to be the reference twin.
        double count = 0, mean = 0, m2 = 0;
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride;
            for (int i = 0; i < len; i++) {
                double v = (double) x.get(F, base + i * B) - shift;
                count += 1;
                double delta = v - mean;
                mean += delta / count;
                m2 += delta * (v - mean);
            }
        }
        acc.merge(count, mean + shift, m2);
    }

    @Override
    public void affine(MemorySegment x, long xOff, MemorySegment y, long yOff,
                       long runs, int len, long stride, float c, float a, float b) {
        for (long r = 0; r < runs; r++) {
            long xb = xOff + r * stride, yb = yOff + r * stride;
            for (int i = 0; i < len; i++) {
                float v = x.get(F, xb + i * B);
                y.set(F, yb + i * B, Math.fma(v - c, a, b));
            }
        }
    }

    @Override
    public void gradSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff,
                         long runs, int len, long stride, float c, GradSums acc) {
        double sumDy = 0, sumDyXc = 0;
        for (long r = 0; r < runs; r++) {
            long db = dyOff + r * stride, xb = xOff + r * stride;
            for (int i = 0; i < len; i++) {
                double g = dy.get(F, db + i * B);
                sumDy += g;
                sumDyXc += g * (x.get(F, xb + i * B) - c);
            }
        }
        acc.sumDy += sumDy;
        acc.sumDyXc += sumDyXc;
    }

    @Override
    public void gradApply(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                          long runs, int len, long stride, float p, float q, float c, float r) {
        for (long k = 0; k < runs; k++) {
            long db = dyOff + k * stride, xb = xOff + k * stride, ob = dxOff + k * stride;
            for (int i = 0; i < len; i++) {
                float g = dy.get(F, db + i * B);
                float v = x.get(F, xb + i * B);
                dx.set(F, ob + i * B, Math.fma(p, g, Math.fma(q, v - c, r)));
            }
        }
    }
}
