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
    public void centredSums(MemorySegment x, long off, long runs, int len, long stride, float c, CentredSums acc) {
        double sum = 0, squares = 0;
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride;
            for (int i = 0; i < len; i++) {
                double v = (double) x.get(F, base + i * B) - c;
                sum += v;
                squares += v * v;
            }
        }
        acc.sum += sum;
        acc.sumSquares += squares;
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
    public void affineRuns(MemorySegment x, long xOff, MemorySegment y, long yOff, int runs, int len,
                           float[] coef, int coefOff, int coefStride) {
        for (int r = 0; r < runs; r++) {
            int k = coefOff + r * coefStride;
            long d = (long) r * len * B;
            affine(x, xOff + d, y, yOff + d, 1, len, 0, coef[k], coef[k + 1], coef[k + 2]);
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

    @Override
    public void centredSumsRuns(MemorySegment x, long off, long samples, long sampleStride, int runs, int len, int from,
                                int to, MemorySegment centres, long centreOff, long centreStride, double[] a,
                                double[] b, int outOff) {
        for (long i = 0; i < samples; i++) {
            for (int r = from; r < to; r++) {
                // centredSums of one run
                float c = centres.get(F, centreOff + r * centreStride);
                long base = off + i * sampleStride + (long) r * len * B;
                double sum = 0, squares = 0;
                for (int e = 0; e < len; e++) {
                    double v = (double) x.get(F, base + e * B) - c;
                    sum += v;
                    squares += v * v;
                }
                a[outOff + r] += sum;
                b[outOff + r] += squares;
            }
        }
    }

    @Override
    public void gradSumsRuns(MemorySegment dy, long dyOff, MemorySegment x, long xOff, long samples, long sampleStride,
                             int runs, int len, int from, int to, MemorySegment centres, long centreOff,
                             long centreStride, double[] a, double[] b, int outOff) {
        for (long i = 0; i < samples; i++) {
            for (int r = from; r < to; r++) {
                // gradSums of one run
                float c = centres.get(F, centreOff + r * centreStride);
                long d = i * sampleStride + (long) r * len * B;
                double sumDy = 0, sumDyXc = 0;
                for (int e = 0; e < len; e++) {
                    double g = dy.get(F, dyOff + d + e * B);
                    sumDy += g;
                    sumDyXc += g * (x.get(F, xOff + d + e * B) - c);
                }
                a[outOff + r] += sumDy;
                b[outOff + r] += sumDyXc;
            }
        }
    }

    @Override
    public void gradApplyRuns(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                              int runs, int len, float[] coef, int coefOff, int coefStride) {
        for (int r = 0; r < runs; r++) {
            int k = coefOff + r * coefStride;
            long d = (long) r * len * B;
            gradApply(dy, dyOff + d, x, xOff + d, dx, dxOff + d, 1, len, 0, coef[k], coef[k + 1], coef[k + 2],
                    coef[k + 3]);
        }
    }

    // --- row primitives (LayerNorm, RMSNorm)

    @Override
    public double sumSquares(MemorySegment x, long off, long runs, int len, long stride) {
        double sum = 0;
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride;
            for (int i = 0; i < len; i++) {
                double v = x.get(F, base + i * B);
                sum += v * v;
            }
        }
        return sum;
    }

    @Override
    public void rowAffine(MemorySegment x, long xOff, MemorySegment y, long yOff, int len, float c, float a, float b,
                          MemorySegment w, long wOff, MemorySegment beta, long betaOff) {
        for (int i = 0; i < len; i++) {
            float t = Math.fma(x.get(F, xOff + i * B) - c, a, b);
            if (w == null) {
                y.set(F, yOff + i * B, beta == null ? t : t + beta.get(F, betaOff + i * B));
            } else {
                float g = w.get(F, wOff + i * B);
                y.set(F, yOff + i * B, beta == null ? t * g : Math.fma(t, g, beta.get(F, betaOff + i * B)));
            }
        }
    }

    @Override
    public void rowGradSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment w, long wOff,
                            int len, float c, GradSums acc) {
        double sumDy = 0, sumDyXc = 0;
        for (int i = 0; i < len; i++) {
            // float * float is exact in double
            double g = (double) w.get(F, wOff + i * B) * dy.get(F, dyOff + i * B);
            sumDy += g;
            sumDyXc += g * (x.get(F, xOff + i * B) - c);
        }
        acc.sumDy += sumDy;
        acc.sumDyXc += sumDyXc;
    }

    @Override
    public void rowGradApply(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment w, long wOff,
                             MemorySegment dx, long dxOff, int len, float p, float q, float c, float r) {
        for (int i = 0; i < len; i++) {
            float g = dy.get(F, dyOff + i * B);
            float v = x.get(F, xOff + i * B);
            float pw = p * w.get(F, wOff + i * B);
            dx.set(F, dxOff + i * B, Math.fma(pw, g, Math.fma(v - c, q, r)));
        }
    }

    @Override
    public void columnGradSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff, int len, float c, float a,
                               float[] sumDy, float[] sumDyXhat, int accOff) {
        // float on purpose: the same operations as the vector lanes, so both give the same bits
        for (int i = 0; i < len; i++) {
            float g = dy.get(F, dyOff + i * B);
            if (sumDy != null) sumDy[accOff + i] += g;
            if (sumDyXhat != null) {
                float xhat = (x.get(F, xOff + i * B) - c) * a;
                sumDyXhat[accOff + i] = Math.fma(g, xhat, sumDyXhat[accOff + i]);
            }
        }
    }

    // --- WeightNorm / Lp primitives

    @Override
    public double sumAbsDiff(MemorySegment x, long off, long runs, int len, long stride, float c, float c2) {
        double sum = 0;
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride;
            for (int i = 0; i < len; i++) {
                // each term in float, like the lanes; the sum in double
                sum += Math.abs((x.get(F, base + i * B) - c) - c2);
            }
        }
        return sum;
    }

    @Override
    public void minMax(MemorySegment x, long off, long runs, int len, long stride, float[] minMax) {
        float lo = minMax[0], hi = minMax[1];
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride;
            for (int i = 0; i < len; i++) {
                float v = x.get(F, base + i * B);
                lo = Math.min(lo, v);
                hi = Math.max(hi, v);
            }
        }
        minMax[0] = lo;
        minMax[1] = hi;
    }

    @Override
    public void countSteps(MemorySegment x, long off, long runs, int len, long stride, float hi, float lo, long[] counts) {
        long nHi = 0, nLo = 0;
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride;
            for (int i = 0; i < len; i++) {
                float v = x.get(F, base + i * B);
                if (v >= hi) nHi++;
                if (v <= lo) nLo++;
            }
        }
        counts[0] += nHi;
        counts[1] += nLo;
    }

    @Override
    public void gradApplySteps(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                               long runs, int len, long stride, float p, float r, float hi, float u, float lo, float v) {
        // each step as u (or v) masked to +0 by an int select: C2 turns that into a conditional move, while
        // (xv >= hi ? u : 0f) became a branch, mispredicted half the time about the mean (p = 1): 30 ms
        // against 5 over the headline tensor (scalar p = 1 backward 36.6 -> 12.0 ms; p = inf, whose branches
        // predicted well, 11.8-12.2 -> 12.9-13.1); the same bits
        int uBits = Float.floatToRawIntBits(u), vBits = Float.floatToRawIntBits(v);
        for (long k = 0; k < runs; k++) {
            long db = dyOff + k * stride, xb = xOff + k * stride, ob = dxOff + k * stride;
            for (int i = 0; i < len; i++) {
                float xv = x.get(F, xb + i * B);
                int onHi = xv >= hi ? -1 : 0, onLo = xv <= lo ? -1 : 0;
                float steps = Float.intBitsToFloat(uBits & onHi) + Float.intBitsToFloat(vBits & onLo);
                dx.set(F, ob + i * B, Math.fma(p, dy.get(F, db + i * B), r + steps));
            }
        }
    }

    @Override
    public void sumAbsDiffRuns(MemorySegment x, long off, long samples, long sampleStride, int runs, int len, int from,
                               int to, float[] coef, int coefOff, int coefStride, double[] out, int outOff) {
        RunsByRun.sumAbsDiff(this, x, off, samples, sampleStride, len, from, to, coef, coefOff, coefStride, out, outOff);
    }

    @Override
    public void minMaxRuns(MemorySegment x, long off, long samples, long sampleStride, int runs, int len, int from,
                           int to, double[] lo, double[] hi, int outOff) {
        RunsByRun.minMax(this, x, off, samples, sampleStride, len, from, to, lo, hi, outOff);
    }

    @Override
    public void countStepsRuns(MemorySegment x, long off, long samples, long sampleStride, int runs, int len, int from,
                               int to, float[] coef, int coefOff, int coefStride, double[] atHi, double[] atLo,
                               int outOff) {
        RunsByRun.countSteps(this, x, off, samples, sampleStride, len, from, to, coef, coefOff, coefStride, atHi, atLo,
                outOff);
    }

    @Override
    public void gradApplyStepsRuns(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx,
                                   long dxOff, int runs, int len, float[] coef, int coefOff, int coefStride) {
        RunsByRun.gradApplySteps(this, dy, dyOff, x, xOff, dx, dxOff, runs, len, coef, coefOff, coefStride);
    }

    @Override
    public void rowLinear(MemorySegment u, long uOff, MemorySegment v, long vOff, MemorySegment out, long outOff, int len,
                          float[] a, float[] b, int coefOff) {
        for (int i = 0; i < len; i++) {
            float uv = u.get(F, uOff + i * B);
            float o = b == null ? a[coefOff + i] * uv
                    : Math.fma(a[coefOff + i], uv, b[coefOff + i] * v.get(F, vOff + i * B));
            out.set(F, outOff + i * B, o);
        }
    }

    // --- column primitives (BatchNorm with small S)

    @Override
    public void columnMoments(MemorySegment x, long xOff, int rows, int len, long stride, float[] shift, int shiftOff,
                              float[] sum, float[] sumSq, int accOff) {
        // float on purpose: the same operations as the vector lanes, so both give the same bits
        for (int r = 0; r < rows; r++) {
            long base = xOff + r * stride;
            for (int i = 0; i < len; i++) {
                float v = x.get(F, base + i * B) - shift[shiftOff + i];
                sum[accOff + i] += v;
                sumSq[accOff + i] = Math.fma(v, v, sumSq[accOff + i]);
            }
        }
    }

    @Override
    public void columnCenteredSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff, int rows, int len,
                                   long stride, float[] center, int cOff, float[] sumDy, float[] sumDyXc, int accOff) {
        // float on purpose, as columnMoments
        for (int r = 0; r < rows; r++) {
            long db = dyOff + r * stride, xb = xOff + r * stride;
            for (int i = 0; i < len; i++) {
                float g = dy.get(F, db + i * B);
                sumDy[accOff + i] += g;
                sumDyXc[accOff + i] = Math.fma(g, x.get(F, xb + i * B) - center[cOff + i], sumDyXc[accOff + i]);
            }
        }
    }

    @Override
    public void columnAffine(MemorySegment x, long xOff, MemorySegment y, long yOff, int rows, int len, long stride,
                             float[] coef, int off, int cStride) {
        for (int r = 0; r < rows; r++) {
            long xb = xOff + r * stride, yb = yOff + r * stride;
            for (int i = 0; i < len; i++) {
                int k = off + i;
                y.set(F, yb + i * B, Math.fma(x.get(F, xb + i * B) - coef[k], coef[k + cStride], coef[k + 2 * cStride]));
            }
        }
    }

    @Override
    public void columnGradApply(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                                int rows, int len, long stride, float[] coef, int off, int cStride) {
        for (int r = 0; r < rows; r++) {
            long db = dyOff + r * stride, xb = xOff + r * stride, ob = dxOff + r * stride;
            for (int i = 0; i < len; i++) {
                int k = off + i;
                float g = dy.get(F, db + i * B);
                float v = x.get(F, xb + i * B);
                dx.set(F, ob + i * B, Math.fma(coef[k], g,
                        Math.fma(coef[k + cStride], v - coef[k + 2 * cStride], coef[k + 3 * cStride])));
            }
        }
    }

    @Override
    public void rowGradApplyColumns(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment w, long wOff,
                                    MemorySegment dx, long dxOff, int len, float p, float q, float c, float r, float a,
                                    float[] sumDy, float[] sumDyXhat, int accOff) {
        // float on purpose: the operations of columnGradSums and rowGradApply
        for (int i = 0; i < len; i++) {
            float g = dy.get(F, dyOff + i * B);
            float xc = x.get(F, xOff + i * B) - c;
            if (sumDy != null) sumDy[accOff + i] += g;
            sumDyXhat[accOff + i] = Math.fma(g, xc * a, sumDyXhat[accOff + i]);
            float pw = p * w.get(F, wOff + i * B);
            dx.set(F, dxOff + i * B, Math.fma(pw, g, Math.fma(xc, q, r)));
        }
    }
}
