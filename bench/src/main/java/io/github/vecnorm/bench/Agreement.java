package io.github.vecnorm.bench;

import io.github.vecnorm.internal.BatchNormOps;
import io.github.vecnorm.internal.Kernels;
import io.github.vecnorm.internal.Loop;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;

/**
 * The check every benchmark makes before timing: the implementation's outputs against vecnorm's
 * scalar twin (run serially on the same problem), element by element.
 *
 * <p>Tolerance, per channel: {@code K * ulp(1f) * sqrt(m) * scale}, where m = N*S is the channel's
 * reduction length (float summation errors grow about as sqrt(m)) and scale is the magnitude of the
 * terms that make up the output before cancellation, e.g. for the training forward
 * {@code |gamma| * invstd * (max|x| + max|x - mean|) + |beta|}: an error of a few ulps in the mean
 * (a sum of values up to max|x|) and in invstd moves y by that much. Inference has no reduction, so
 * its tolerance is {@code K * ulp(1f) * scale}. NaN anywhere fails.
 */
public final class Agreement {

    /** "A few ulps". */
    static final double K = 4;
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final double ULP = Math.ulp(1f);

    private Agreement() {
    }

    /**
     * Rejects a kernel/shape pair the kernel cannot take (training needs at least two values per
     * channel), with the reason.
     */
    public static void requireValid(Problem p, Kernel k) {
        if (k != Kernel.BATCHNORM_FORWARD_INFERENCE && p.shape.perChannel() < 2) {
            throw new IllegalArgumentException(k.id() + " needs at least 2 values per channel (N*S), shape "
                    + String.join("x", dimsText(p)) + " has " + p.shape.perChannel() + "; it is an inference-only shape");
        }
    }

    /** Fills the inputs a kernel reads that a previous kernel produces: backward reads the saved statistics. */
    public static void prepareInputs(Problem p, Kernel k) {
        if (k == Kernel.BATCHNORM_BACKWARD) {
            BatchNormOps.forwardTraining(Kernels.scalar(), p.shape.n(), p.shape.c(), p.shape.s(), p.x, p.y,
                    p.gamma, p.beta, p.saveMean, p.saveInvstd, null, null, 0, p.eps, Loop.SERIAL);
        }
    }

    /**
     * Runs {@code impl} once on {@code p} and compares its outputs with the scalar twin's.
     *
     * @return a one-line summary: the worst error as a fraction of its tolerance
     * @throws IllegalStateException naming the output, channel and index of the first disagreement
     */
    public static String check(Problem p, Kernel k, Impl impl) {
        long n = p.shape.n(), c = p.shape.c(), s = p.shape.s(), m = n * s;
        // shared, like the problem's tensors: one confined segment through the kernels in this JVM
        // made the Vector API code 25x slower on shared ones afterwards (LayerNorm 2048x768: 0.29 -> 7.5 ms)
        try (Arena arena = Arena.ofShared()) {
            Checker ck = new Checker(impl.name(), k, m);
            switch (k) {
                case BATCHNORM_FORWARD_TRAINING -> {
                    fill(p.y, Float.NaN);
                    fill(p.saveMean, Float.NaN);
                    fill(p.saveInvstd, Float.NaN);
                    Impls.runAndPublish(impl, k);
                    MemorySegment y = arena.allocate(p.y.byteSize(), 64);
                    MemorySegment mean = arena.allocate(c * 4L), invstd = arena.allocate(c * 4L);
                    BatchNormOps.forwardTraining(Kernels.scalar(), n, c, s, p.x, y, p.gamma, p.beta, mean, invstd,
                            null, null, 0, p.eps, Loop.SERIAL);
                    for (long ch = 0; ch < c; ch++) {
                        float mu = mean.getAtIndex(F, ch), is = invstd.getAtIndex(F, ch);
                        float g = p.gamma.getAtIndex(F, ch), b = p.beta.getAtIndex(F, ch);
                        double maxX = maxAbs(p.x, p.shape, ch, 0), maxDev = maxAbs(p.x, p.shape, ch, mu);
                        ck.scalar("saveMean", ch, p.saveMean.getAtIndex(F, ch), mu, maxX, true);
                        // invstd = 1/sqrt(var): var inherits the mean's error relative to (max|x| * invstd)
                        ck.scalar("saveInvstd", ch, p.saveInvstd.getAtIndex(F, ch), is, is * Math.max(1, maxX * is), true);
                        ck.run("y", ch, p.y, y, p.shape, Math.abs(g) * is * (maxX + maxDev) + Math.abs(b), true);
                    }
                }
                case BATCHNORM_FORWARD_INFERENCE -> {
                    fill(p.y, Float.NaN);
                    Impls.runAndPublish(impl, k);
                    MemorySegment y = arena.allocate(p.y.byteSize(), 64);
                    BatchNormOps.forwardInference(Kernels.scalar(), n, c, s, p.x, y, p.gamma, p.beta,
                            p.runningMean, p.runningVar, p.eps, Loop.SERIAL);
                    for (long ch = 0; ch < c; ch++) {
                        double a = Math.abs(p.gamma.getAtIndex(F, ch)) / Math.sqrt(p.runningVar.getAtIndex(F, ch) + p.eps);
                        double scale = a * (maxAbs(p.x, p.shape, ch, 0) + Math.abs(p.runningMean.getAtIndex(F, ch)))
                                + Math.abs(p.beta.getAtIndex(F, ch));
                        ck.run("y", ch, p.y, y, p.shape, scale, false);
                    }
                }
                case BATCHNORM_BACKWARD -> {
                    fill(p.dx, Float.NaN);
                    fill(p.dgamma, Float.NaN);
                    fill(p.dbeta, Float.NaN);
                    Impls.runAndPublish(impl, k);
                    MemorySegment dx = arena.allocate(p.dx.byteSize(), 64);
                    MemorySegment dgamma = arena.allocate(c * 4L), dbeta = arena.allocate(c * 4L);
                    BatchNormOps.backward(Kernels.scalar(), n, c, s, p.dy, p.x, p.gamma, p.saveMean, p.saveInvstd,
                            dx, dgamma, dbeta, Loop.SERIAL);
                    for (long ch = 0; ch < c; ch++) {
                        double mu = p.saveMean.getAtIndex(F, ch), is = p.saveInvstd.getAtIndex(F, ch);
                        double g = Math.abs(p.gamma.getAtIndex(F, ch));
                        double sumAbsDy = 0, sumAbsDyXhat = 0, maxDy = 0, maxXhat = 0, maxX = 0;
                        for (long i = 0; i < n; i++) {
                            long base = (i * c + ch) * s;
                            for (long j = 0; j < s; j++) {
                                double d = p.dy.getAtIndex(F, base + j), xv = p.x.getAtIndex(F, base + j);
                                double xh = Math.abs((xv - mu) * is);
                                sumAbsDy += Math.abs(d);
                                sumAbsDyXhat += Math.abs(d) * xh;
                                maxDy = Math.max(maxDy, Math.abs(d));
                                maxXhat = Math.max(maxXhat, xh);
                                maxX = Math.max(maxX, Math.abs(xv));
                            }
                        }
                        ck.scalar("dbeta", ch, p.dbeta.getAtIndex(F, ch), dbeta.getAtIndex(F, ch), sumAbsDy, true);
                        // xhat carries the mean's error, relative to max|x| * invstd
                        double dgScale = sumAbsDyXhat + sumAbsDy * maxX * is;
                        ck.scalar("dgamma", ch, p.dgamma.getAtIndex(F, ch), dgamma.getAtIndex(F, ch), dgScale, true);
                        double dxScale = g * is * (maxDy + sumAbsDy / m + (maxXhat + maxX * is) * dgScale / m);
                        ck.run("dx", ch, p.dx, dx, p.shape, dxScale, true);
                    }
                }
                // never time a kernel whose results nobody checked
                default -> throw new UnsupportedOperationException("no agreement check for " + k.id() + " yet");
            }
            return ck.summary();
        }
    }

    private static String[] dimsText(Problem p) {
        String[] d = new String[p.dims.length];
        for (int i = 0; i < d.length; i++) d[i] = Long.toString(p.dims[i]);
        return d;
    }

    private static void fill(MemorySegment seg, float v) {
        for (long i = 0, e = seg.byteSize() / 4; i < e; i++) seg.setAtIndex(F, i, v);
    }

    /** max |x - center| over channel ch. */
    private static double maxAbs(MemorySegment x, io.github.vecnorm.Shape sh, long ch, double center) {
        double mx = 0;
        for (long i = 0; i < sh.n(); i++) {
            long base = (i * sh.c() + ch) * sh.s();
            for (long j = 0; j < sh.s(); j++) mx = Math.max(mx, Math.abs(x.getAtIndex(F, base + j) - center));
        }
        return mx;
    }

    /** Accumulates the worst error/tolerance ratio; throws on the first value out of tolerance. */
    private static final class Checker {
        final String impl;
        final Kernel kernel;
        final long m;
        double worst;
        String worstWhat = "-";

        Checker(String impl, Kernel kernel, long m) {
            this.impl = impl;
            this.kernel = kernel;
            this.m = m;
        }

        double tol(double scale, boolean reduction) {
            return K * ULP * (reduction ? Math.sqrt(m) : 1) * scale;
        }

        void scalar(String what, long ch, float got, float want, double scale, boolean reduction) {
            compare(what, ch, -1, got, want, tol(scale, reduction));
        }

        void run(String what, long ch, MemorySegment got, MemorySegment want, io.github.vecnorm.Shape sh,
                 double scale, boolean reduction) {
            double tol = tol(scale, reduction);
            for (long i = 0; i < sh.n(); i++) {
                long base = (i * sh.c() + ch) * sh.s();
                for (long j = 0; j < sh.s(); j++) {
                    compare(what, ch, base + j, got.getAtIndex(F, base + j), want.getAtIndex(F, base + j), tol);
                }
            }
        }

        void compare(String what, long ch, long index, float got, float want, double tol) {
            double err = Math.abs((double) got - want);
            if (!(err <= tol)) {
                throw new IllegalStateException(String.format(Locale.ROOT,
                        "%s disagrees with vecnorm's scalar twin on %s: %s[%s] = %s, expected %s "
                                + "(|error| %.3g > tolerance %.3g = %.0f ulps * sqrt(m=%d) * scale)",
                        impl, kernel.id(), what, index < 0 ? "channel " + ch : "channel " + ch + ", index " + index,
                        got, want, err, tol, K, m));
            }
            double r = tol == 0 ? 0 : err / tol;
            if (r > worst) {
                worst = r;
                worstWhat = what;
            }
        }

        String summary() {
            return String.format(Locale.ROOT, "%s %s agrees with the scalar twin: worst error %.3f of tolerance (%s)",
                    impl, kernel.id(), worst, worstWhat);
        }
    }
}
