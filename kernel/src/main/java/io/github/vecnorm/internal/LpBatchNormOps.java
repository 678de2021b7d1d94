package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * L_p BatchNorm bodies composed of the {@link Primitives}; {@code io.github.vecnorm.LpBatchNorm} guards
 * every argument first. Layout as {@link BatchNormOps}: the reductions in memory order, as BatchNorm's (runs of
 * at least {@link BatchNormOps#MEMORY_ORDER_MIN_RUN} floats a primitive call each; runs of
 * {@link #SHORT_RUNS_MIN} to 63 floats a sample's block of channels per call, {@link #shortRuns}); channel by
 * channel for shorter runs, where BatchNorm has its column path; then BatchNorm's element-wise walks. p = 2 is
 * BatchNorm itself and delegates to it.
 *
 * <p>Per channel, d = x - mean over m = N*S values:
 * <ul>
 *   <li>p = 1: spread = mean |d| (deviations from the double mean, split in two floats), invSpread = 1/(spread + eps);</li>
 *   <li>p = inf: spread = max |d| = max(max x - mean, mean - min x) in double, invSpread = 1/(spread + eps).</li>
 * </ul>
 * Backward, with xhat = d * invSpread, A = Σ dy, G = Σ dy * xhat: {@code dx = gamma*invSpread*(dy - A/m - G * dspread/dx)},
 * dspread/dx_i = (sign(d_i) - mean sign(d))/m for p = 1; for p = inf the subgradient split equally over the
 * tied extremes T: (e_i - Σe/m)/|T| with e_i = +1 at a tied maximum, -1 at a tied minimum, 0 elsewhere.
 * Both are {@code dx = k*dy + r + steps(x)}: {@link Primitives#gradApplySteps}.
 */
public final class LpBatchNormOps {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;
    /** Floats per channel of the backward's element-wise coefficients: p, r, hi, u, lo, v. */
    static final int STEP_COEFS = 6;

    private LpBatchNormOps() {
    }

    /** Training forward for p in {1, 2, inf}: saves the mean and the inverse spread. */
    public static void forward(Primitives pr, double p, long n, long cs, long s, MemorySegment x, MemorySegment y,
                               MemorySegment gamma, MemorySegment beta, MemorySegment saveMean,
                               MemorySegment saveInvSpread, double eps, Loop loop) {
        if (p == 2) {
            BatchNormOps.forwardTraining(pr, n, cs, s, x, y, gamma, beta, saveMean, saveInvSpread,
                    null, null, 0, eps, loop);
            return;
        }
        float[] coef = Scratch.floats(BatchNormOps.scratchFloats(n, cs, s));
        if (BatchNormOps.memoryOrder(s)) {
            memoryOrderStats(pr, p, n, cs, s, x, gamma, beta, saveMean, saveInvSpread, eps, coef, loop);
        } else if (shortRuns(s)) {
            shortRunStats(pr, p, n, cs, s, x, gamma, beta, saveMean, saveInvSpread, eps, coef, loop);
        } else {
            loop.forEach(cs, c -> stats(pr, p, n, cs, s, c, x, gamma, beta, saveMean, saveInvSpread, eps, coef));
        }
        BatchNormOps.applyAffine(pr, n, cs, s, x, y, coef, true, loop);
    }

    /**
     * Whether the forward takes its statistics in memory order, as sums about the channel's first value
     * ({@link #memoryOrderStats}, {@link #shortRunStats}), and the backward its sums in memory order: runs of at
     * least {@link #SHORT_RUNS_MIN} floats. Shorter runs go channel by channel (Welford): L_p has no column path.
     */
    public static boolean statsInMemoryOrder(long s) {
        return s >= SHORT_RUNS_MIN;
    }

    /** The shortest runs the short-run primitives take (a vector of 16 lanes, AVX-512's). */
    static final int SHORT_RUNS_MIN = 16;

    /**
     * Runs of {@link #SHORT_RUNS_MIN} to 63 floats: each reduction a sample's block of channels per call, in
     * memory order (the short-run primitives, {@link Primitives#centredSumsRuns} and the L_p ones), as
     * BatchNorm's. Channel by channel, each call was the channel's N strided runs of S floats, and dx was
     * written in N strided streams per channel.
     */
    static boolean shortRuns(long s) {
        return s >= SHORT_RUNS_MIN && !BatchNormOps.memoryOrder(s);
    }

    /**
     * The statistics of runs of 16 to 63 floats ({@link #shortRuns}), in memory order: the mean from Σ(x - x0)
     * and Σ(x - x0)² per channel ({@link BatchNormOps#memoryOrderSums}, {@link BatchNormOps#finishShiftedSums}),
     * then for p = 1 Σ|x - mean| ({@link Primitives#sumAbsDiffRuns}), for p = inf the minimum and maximum
     * ({@link Primitives#minMaxRuns}), a block of channels per task.
     */
    static void shortRunStats(Primitives pr, double p, long n, long cs, long s, MemorySegment x,
                              MemorySegment gamma, MemorySegment beta, MemorySegment saveMean,
                              MemorySegment saveInvSpread, double eps, float[] coef, Loop loop) {
        int k = (int) cs;
        // slot 0: Σd, then the mean, then (p = inf) the minimum at k + c; slot 1: Σd², then Σ|x - mean| or
        // (p = inf) the maximum at k + c
        double[] a = Scratch.doubles(0, p == 1 ? k : 2L * k), b = Scratch.doubles(1, p == 1 ? k : 2L * k);
        BatchNormOps.memoryOrderSums(pr, n, cs, s, null, x, x, s * B, a, b, loop);
        BatchNormOps.finishShiftedSums(pr, n, cs, s, x, a, b, loop, (c, mean, m2) -> a[(int) c] = mean);
        long stride = cs * s * B;
        if (p == 1) {
            // the mean as two floats (the centre and what rounding it left), in coef until finish
            for (int c = 0; c < k; c++) {
                float meanF = (float) a[c];
                coef[BatchNormOps.COEFS * c] = meanF;
                coef[BatchNormOps.COEFS * c + 1] = (float) (a[c] - meanF);
            }
            Arrays.fill(b, 0, k, 0.0);
            channelBlocks(cs, loop, (c0, c1) -> pr.sumAbsDiffRuns(x, 0, n, stride, k, (int) s, c0, c1, coef, 0,
                    BatchNormOps.COEFS, b, 0));
            double count = (double) n * s;
            for (long c = 0; c < cs; c++) {
                finish(c, a[(int) c], b[(int) c] / count, gamma, beta, saveMean, saveInvSpread, eps, coef);
            }
        } else {
            Arrays.fill(a, k, 2 * k, Double.POSITIVE_INFINITY);
            Arrays.fill(b, k, 2 * k, Double.NEGATIVE_INFINITY);
            channelBlocks(cs, loop, (c0, c1) -> pr.minMaxRuns(x, 0, n, stride, k, (int) s, c0, c1, a, b, k));
            for (long c = 0; c < cs; c++) {
                int i = (int) c;
                finish(c, a[i], Math.max(b[k + i] - a[i], a[i] - a[k + i]), gamma, beta, saveMean, saveInvSpread,
                        eps, coef);
            }
        }
    }

    /**
     * The statistics read in memory order, as BatchNorm's for S >= 64 ({@link BatchNormOps#memoryOrderRuns}):
     * the mean from Σ(x - x0) and Σ(x - x0)² per channel ({@link BatchNormOps#finishShiftedSums}); then for p = 1
     * Σ|x - mean| in a second pass, for p = inf the minimum and maximum in the same pass, each run read
     * again while it is in L1. Channel by channel, p = inf took 1.55 ms for its statistics over the
     * headline tensor (Welford, then min/max), and p = 1 1.3.
     */
    static void memoryOrderStats(Primitives pr, double p, long n, long cs, long s, MemorySegment x,
                                 MemorySegment gamma, MemorySegment beta, MemorySegment saveMean,
                                 MemorySegment saveInvSpread, double eps, float[] coef, Loop loop) {
        // slot 0: Σd, then the mean, then (p = inf) the minimum at cs + c; slot 1: Σd², then Σ|x - mean|
        // or (p = inf) the maximum at cs + c
        double[] a = Scratch.doubles(0, p == 1 ? cs : 2 * cs), b = Scratch.doubles(1, p == 1 ? cs : 2 * cs);
        double count = (double) n * s;
        if (p == 1) {
            BatchNormOps.memoryOrderSums(pr, n, cs, s, null, x, x, s * B, a, b, loop);
            BatchNormOps.finishShiftedSums(pr, n, cs, s, x, a, b, loop, (c, mean, m2) -> a[(int) c] = mean);
            Arrays.fill(b, 0, (int) cs, 0.0);
            BatchNormOps.memoryOrderRuns(n, cs, s, loop, (task, c, off) -> {
                float meanF = (float) a[c];
                b[c] += sumAbsDiff(pr, x, off, 1, s, 0, meanF, (float) (a[c] - meanF));
            });
            for (long c = 0; c < cs; c++) {
                finish(c, a[(int) c], b[(int) c] / count, gamma, beta, saveMean, saveInvSpread, eps, coef);
            }
        } else {
            Arrays.fill(a, 0, (int) cs, 0.0);
            Arrays.fill(b, 0, (int) cs, 0.0);
            Arrays.fill(a, (int) cs, (int) (2 * cs), Double.POSITIVE_INFINITY);
            Arrays.fill(b, (int) cs, (int) (2 * cs), Double.NEGATIVE_INFINITY);
            BatchNormOps.memoryOrderRuns(n, cs, s, loop, (task, c, off) -> {
                BatchNormOps.addRunCentredSums(pr, x, off, s, x.get(F, c * s * B), task, a, b, c);
                float[] mm = task.minMax;
                mm[0] = (float) a[(int) cs + c];
                mm[1] = (float) b[(int) cs + c];
                minMax(pr, x, off, 1, s, 0, mm);
                a[(int) cs + c] = mm[0];
                b[(int) cs + c] = mm[1];
            });
            BatchNormOps.finishShiftedSums(pr, n, cs, s, x, a, b, loop, (c, mean, m2) -> finish(c, mean,
                    Math.max(b[(int) (cs + c)] - mean, mean - a[(int) (cs + c)]), gamma, beta, saveMean, saveInvSpread,
                    eps, coef));
        }
    }

    /** Backward for p in {1, 2, inf} from the saved mean and inverse spread; null outputs are not computed. */
    public static void backward(Primitives pr, double p, long n, long cs, long s, MemorySegment dy, MemorySegment x,
                                MemorySegment gamma, MemorySegment saveMean, MemorySegment saveInvSpread,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        if (p == 2) {
            BatchNormOps.backward(pr, n, cs, s, dy, x, gamma, saveMean, saveInvSpread, dx, dgamma, dbeta, loop);
            return;
        }
        if (dx == null && dgamma == null && dbeta == null) return;
        float[] coef = dx == null ? null : Scratch.floats(STEP_COEFS * cs);
        boolean memoryOrder = BatchNormOps.memoryOrder(s), shortRuns = shortRuns(s);
        if (memoryOrder) {
            memoryOrderSums(pr, p, n, cs, s, dy, x, gamma, saveMean, saveInvSpread, dgamma, dbeta, coef, loop);
        } else if (shortRuns) {
            shortRunSums(pr, p, n, cs, s, dy, x, gamma, saveMean, saveInvSpread, dgamma, dbeta, coef, loop);
        } else {
            loop.forEach(cs, c -> backwardSums(pr, p, n, cs, s, c, dy, x, gamma, saveMean, saveInvSpread,
                    dgamma, dbeta, coef));
        }
        if (dx == null) return;
        if (memoryOrder || shortRuns) {
            // memory order, each task the runs of the channels whose sums it took, a sample's block of channels
            // in one call (gradApplyStepsRuns: the flat walk for runs that are not whole vectors)
            long b = BatchNormOps.blockChannels(cs, loop);
            loop.forEach(BatchNormOps.runItems(n, cs, b), j -> {
                long c0 = BatchNormOps.firstChannel(j, n, b), c1 = Math.min(cs, c0 + b);
                long r0 = BatchNormOps.firstRun(j, n, cs);
                if (s <= BatchNormOps.MAX_RUN) {
                    long off = (r0 + c0) * s * B;
                    pr.gradApplyStepsRuns(dy, off, x, off, dx, off, (int) (c1 - c0), (int) s, coef,
                            (int) (STEP_COEFS * c0), STEP_COEFS);
                } else {
                    for (long c = c0; c < c1; c++) {
                        applySteps(pr, dy, x, dx, (r0 + c) * s * B, 1, s, 0, coef, (int) (STEP_COEFS * c));
                    }
                }
            });
        } else {
            loop.forEach(cs, c -> applySteps(pr, dy, x, dx, c * s * B, n, s, cs * s * B, coef, (int) (STEP_COEFS * c)));
        }
    }

    /**
     * Statistics of channel c, for runs too short for memory order: the mean (Welford, as BatchNorm), then
     * the spread in a second pass over the channel; saves mean and invSpread and leaves the affine
     * (center, a, b) in coef.
     */
    static void stats(Primitives pr, double p, long n, long cs, long s, long c, MemorySegment x,
                      MemorySegment gamma, MemorySegment beta, MemorySegment saveMean, MemorySegment saveInvSpread,
                      double eps, float[] coef) {
        long off = c * s * B, stride = cs * s * B;
        double m = (double) n * s;
        Scratch.Task task = Scratch.task();
        Moments acc = task.moments.reset();
        BatchNormOps.shiftedMoments(pr, x, off, n, s, stride, acc);
        double mean = acc.mean();
        float meanF = (float) mean;
        double spread;
        if (p == 1) {
            // |x - mean| with the mean as two floats: no first-order error from rounding the mean
            spread = sumAbsDiff(pr, x, off, n, s, stride, meanF, (float) (mean - meanF)) / m;
        } else {
            float[] mm = minMaxOf(pr, x, off, n, s, stride, task.minMax);
            spread = Math.max(mm[1] - mean, mean - mm[0]);
        }
        finish(c, mean, spread, gamma, beta, saveMean, saveInvSpread, eps, coef);
    }

    /**
     * From channel c's mean and spread: save_mean[c], save_invSpread[c] and the affine (center, a, b) in
     * {@code coef[COEFS*c ..]}, the mean split in two floats as BatchNorm's.
     */
    private static void finish(long c, double mean, double spread, MemorySegment gamma, MemorySegment beta,
                               MemorySegment saveMean, MemorySegment saveInvSpread, double eps, float[] coef) {
        float meanF = (float) mean;
        double inv = 1.0 / (spread + eps);
        double a = inv * BatchNormOps.at(gamma, c, 1f);
        int k = (int) (BatchNormOps.COEFS * c);
        coef[k] = meanF;
        coef[k + 1] = (float) a;
        coef[k + 2] = (float) (BatchNormOps.at(beta, c, 0f) - (mean - meanF) * a);
        saveMean.set(F, c * B, meanF);
        saveInvSpread.set(F, c * B, (float) inv);
    }

    /**
     * The backward's sums in memory order, as BatchNorm's ({@link BatchNormOps#memoryOrderRuns}): Σdy and
     * Σdy*(x - mean) per channel, and with them (when dx is wanted) for p = 1 the sign counts about the
     * mean, each run read again while it is in L1; for p = inf the minimum and maximum of each run, then
     * the ties of the channel's extremes in the runs that hold them. Channel by channel, those counts and
     * extremes read x once or twice more.
     */
    static void memoryOrderSums(Primitives pr, double p, long n, long cs, long s, MemorySegment dy,
                                MemorySegment x, MemorySegment gamma, MemorySegment saveMean,
                                MemorySegment saveInvSpread, MemorySegment dgamma, MemorySegment dbeta,
                                float[] coef, Loop loop) {
        int k = (int) cs;
        // slot 0: Σdy at c, then (p = 1) [x >= mean] or (p = inf) the minimum at k + c and [x <= minimum] at
        // 2k + c; slot 1: Σdy*(x - mean) at c, then [x <= mean] or the maximum at k + c and [x >= maximum] at 2k + c
        long size = coef == null ? k : p == 1 ? 2L * k : 3L * k;
        double[] a = Scratch.doubles(0, size), b = Scratch.doubles(1, size);
        if (coef == null) {
            BatchNormOps.memoryOrderSums(pr, n, cs, s, dy, x, saveMean, B, a, b, loop);
            for (long c = 0; c < cs; c++) {
                finishBackward(p, n, s, c, a[(int) c], b[(int) c], 0, 0, 0, 0, gamma, saveMean, saveInvSpread,
                        dgamma, dbeta, null);
            }
            return;
        }
        Arrays.fill(a, 0, 2 * k, 0.0);
        Arrays.fill(b, 0, 2 * k, 0.0);
        if (p == 1) {
            BatchNormOps.memoryOrderRuns(n, cs, s, loop, (task, c, off) -> {
                float meanF = saveMean.get(F, c * B);
                BatchNormOps.addRunGradSums(pr, dy, x, off, s, meanF, task, a, b, c);
                long[] counts = task.counts;
                counts[0] = 0;
                counts[1] = 0;
                countSteps(pr, x, off, 1, s, 0, meanF, meanF, counts);
                a[k + c] += counts[0];
                b[k + c] += counts[1];
            });
            loop.forEach(cs, c -> {
                float meanF = saveMean.get(F, c * B);
                finishBackward(p, n, s, c, a[(int) c], b[(int) c], meanF, meanF, a[(int) (k + c)],
                        b[(int) (k + c)], gamma, saveMean, saveInvSpread, dgamma, dbeta, coef);
            });
            return;
        }
        // p = inf: the channel's extremes so far and their ties so far, from each run's own extremes: a run that
        // reaches an extreme is counted while it is in L1 (a new extreme restarts its count), one that falls
        // short is not read again; for continuous data that is the few runs that set a record (~ln N of N)
        Arrays.fill(a, k, 2 * k, Double.POSITIVE_INFINITY);
        Arrays.fill(b, k, 2 * k, Double.NEGATIVE_INFINITY);
        Arrays.fill(a, 2 * k, 3 * k, 0.0);
        Arrays.fill(b, 2 * k, 3 * k, 0.0);
        BatchNormOps.memoryOrderRuns(n, cs, s, loop, (task, c, off) -> {
            BatchNormOps.addRunGradSums(pr, dy, x, off, s, saveMean.get(F, c * B), task, a, b, c);
            float[] mm = minMaxOf(pr, x, off, 1, s, 0, task.minMax);
            tieExtremes(pr, x, off, s, mm[0], mm[1], task.counts, a, b, k, c);
        });
        loop.forEach(cs, c -> {
            int i = (int) c;
            finishBackward(p, n, s, c, a[i], b[i], (float) b[k + i], (float) a[k + i], b[2 * k + i], a[2 * k + i],
                    gamma, saveMean, saveInvSpread, dgamma, dbeta, coef);
        });
    }

    /**
     * The backward's sums for runs of 16 to 63 floats ({@link #shortRuns}), in memory order, a block of channels
     * per task: Σdy and Σdy*(x - mean) ({@link BatchNormOps#memoryOrderSums}); when dx is wanted, for p = 1 the
     * sign counts about the mean ({@link Primitives#countStepsRuns}), for p = inf the extremes
     * ({@link Primitives#minMaxRuns}) and then their ties. Each a pass over x.
     */
    static void shortRunSums(Primitives pr, double p, long n, long cs, long s, MemorySegment dy, MemorySegment x,
                             MemorySegment gamma, MemorySegment saveMean, MemorySegment saveInvSpread,
                             MemorySegment dgamma, MemorySegment dbeta, float[] coef, Loop loop) {
        int k = (int) cs;
        // as memoryOrderSums: slot 0 Σdy at c, then [x >= mean] or the minimum at k + c and [x <= minimum] at
        // 2k + c; slot 1 Σdy*(x - mean) at c, then [x <= mean] or the maximum at k + c and [x >= maximum] at 2k + c
        long size = coef == null ? k : p == 1 ? 2L * k : 3L * k;
        double[] a = Scratch.doubles(0, size), b = Scratch.doubles(1, size);
        BatchNormOps.memoryOrderSums(pr, n, cs, s, dy, x, saveMean, B, a, b, loop);
        if (coef == null) {
            for (long c = 0; c < cs; c++) {
                finishBackward(p, n, s, c, a[(int) c], b[(int) c], 0, 0, 0, 0, gamma, saveMean, saveInvSpread,
                        dgamma, dbeta, null);
            }
            return;
        }
        long stride = cs * s * B;
        // the steps in coef's hi and lo slots (countStepsRuns reads gradApplyStepsRuns' layout); finishBackward
        // writes the same values there again
        if (p == 1) {
            for (int c = 0; c < k; c++) {
                float meanF = saveMean.get(F, c * B);
                coef[STEP_COEFS * c + 2] = meanF;
                coef[STEP_COEFS * c + 4] = meanF;
            }
            Arrays.fill(a, k, 2 * k, 0.0);
            Arrays.fill(b, k, 2 * k, 0.0);
            channelBlocks(cs, loop, (c0, c1) -> pr.countStepsRuns(x, 0, n, stride, k, (int) s, c0, c1, coef, 2,
                    STEP_COEFS, a, b, k));
            loop.forEach(cs, c -> {
                float meanF = saveMean.get(F, c * B);
                finishBackward(p, n, s, c, a[(int) c], b[(int) c], meanF, meanF, a[(int) (k + c)],
                        b[(int) (k + c)], gamma, saveMean, saveInvSpread, dgamma, dbeta, coef);
            });
            return;
        }
        Arrays.fill(a, k, 2 * k, Double.POSITIVE_INFINITY);
        Arrays.fill(b, k, 2 * k, Double.NEGATIVE_INFINITY);
        Arrays.fill(a, 2 * k, 3 * k, 0.0);
        Arrays.fill(b, 2 * k, 3 * k, 0.0);
        channelBlocks(cs, loop, (c0, c1) -> pr.minMaxRuns(x, 0, n, stride, k, (int) s, c0, c1, a, b, k));
        for (int c = 0; c < k; c++) {
            coef[STEP_COEFS * c + 2] = (float) b[k + c];
            coef[STEP_COEFS * c + 4] = (float) a[k + c];
        }
        channelBlocks(cs, loop, (c0, c1) -> pr.countStepsRuns(x, 0, n, stride, k, (int) s, c0, c1, coef, 2,
                STEP_COEFS, b, a, 2 * k));
        loop.forEach(cs, c -> {
            int i = (int) c;
            finishBackward(p, n, s, c, a[i], b[i], (float) b[k + i], (float) a[k + i], b[2 * k + i], a[2 * k + i],
                    gamma, saveMean, saveInvSpread, dgamma, dbeta, coef);
        });
    }

    /**
     * Merges one run of channel c, with extremes lo and hi, into the channel's minimum a[k + c] and maximum
     * b[k + c] so far and their tie counts a[2k + c] (x <= minimum) and b[2k + c] (x >= maximum): the run's
     * values at an extreme it reaches are counted ({@link Primitives#countSteps}), replacing the count when
     * the run sets a new extreme. The counts end equal to countSteps over the channel at its final extremes;
     * a NaN makes both extremes NaN, whose counts no caller reads (nothing compares true with NaN).
     */
    private static void tieExtremes(Primitives pr, MemorySegment x, long off, long s, float lo, float hi,
                                    long[] counts, double[] a, double[] b, int k, int c) {
        double min = a[k + c], max = b[k + c];
        if (Float.isNaN(lo) || Float.isNaN(hi) || Double.isNaN(min)) {
            a[k + c] = Double.NaN;
            b[k + c] = Double.NaN;
            return;
        }
        boolean atMax = hi >= max, atMin = lo <= min;
        if (!atMax && !atMin) return;
        counts[0] = 0;
        counts[1] = 0;
        countSteps(pr, x, off, 1, s, 0, hi, lo, counts);
        if (atMax) {
            b[2 * k + c] = hi > max ? counts[0] : b[2 * k + c] + counts[0];
            b[k + c] = Math.max(max, hi);
        }
        if (atMin) {
            a[2 * k + c] = lo < min ? counts[1] : a[2 * k + c] + counts[1];
            a[k + c] = Math.min(min, lo);
        }
    }

    /**
     * Backward sums of channel c, for runs too short for memory order: Σdy, Σdy*(x - mean), and when dx is
     * wanted the sign counts (p = 1) or the extremes and their ties (p = inf), then {@link #finishBackward}.
     */
    static void backwardSums(Primitives pr, double p, long n, long cs, long s, long c, MemorySegment dy,
                             MemorySegment x, MemorySegment gamma, MemorySegment saveMean,
                             MemorySegment saveInvSpread, MemorySegment dgamma, MemorySegment dbeta, float[] coef) {
        long off = c * s * B, stride = cs * s * B;
        float meanF = saveMean.get(F, c * B);
        Scratch.Task task = Scratch.task();
        GradSums sums = task.grads.reset();
        BatchNormOps.gradSums(pr, dy, off, x, off, n, s, stride, meanF, sums);
        float hi = meanF, lo = meanF;
        long[] counts = task.counts;
        counts[0] = 0;
        counts[1] = 0;
        if (coef != null) {
            if (p != 1) {
                float[] mm = minMaxOf(pr, x, off, n, s, stride, task.minMax);
                hi = mm[1];
                lo = mm[0];
            }
            // p = 1: sign(x - mean) = [x >= mean] - [x <= mean]; p = inf: the ties of each extreme
            countSteps(pr, x, off, n, s, stride, hi, lo, counts);
        }
        finishBackward(p, n, s, c, sums.sumDy, sums.sumDyXc, hi, lo, counts[0], counts[1], gamma, saveMean,
                saveInvSpread, dgamma, dbeta, coef);
    }

    /**
     * From channel c's Σdy, Σdy*(x - mean), and (when coef is not null) the steps hi, lo with the counts
     * nHi of x >= hi and nLo of x <= lo (p = 1: hi = lo = the saved mean; p = inf: the maximum and minimum):
     * writes dgamma[c], dbeta[c] and leaves (k, r, hi, u, lo, v) of dx = k*dy + r + steps in coef.
     */
    private static void finishBackward(double p, long n, long s, long c, double sumDy, double sumDyXc, float hi,
                                       float lo, double nHi, double nLo, MemorySegment gamma, MemorySegment saveMean,
                                       MemorySegment saveInvSpread, MemorySegment dgamma, MemorySegment dbeta,
                                       float[] coef) {
        double inv = saveInvSpread.get(F, c * B);
        double g = sumDyXc * inv;
        if (dgamma != null) dgamma.set(F, c * B, (float) g);
        if (dbeta != null) dbeta.set(F, c * B, (float) sumDy);
        if (coef == null) return;
        float meanF = saveMean.get(F, c * B);
        double m = (double) n * s;
        double k = BatchNormOps.at(gamma, c, 1f) * inv;
        int i = (int) (STEP_COEFS * c);
        coef[i] = (float) k;
        if (p == 1) {
            double sumSign = nHi - nLo;
            double q = -k * g / m;
            coef[i + 1] = (float) (-k * (sumDy - g * sumSign / m) / m);
            coef[i + 2] = meanF;
            coef[i + 3] = (float) q;
            coef[i + 4] = meanF;
            coef[i + 5] = (float) -q;
        } else {
            // which extreme is farther from the (saved) mean; both when equally far
            double dMax = (double) hi - meanF, dMin = meanF - (double) lo;
            boolean useMax = dMax >= dMin, useMin = dMin >= dMax;
            double nMax = useMax ? nHi : 0, nMin = useMin ? nLo : 0;
            double ties = nMax + nMin, sumE = nMax - nMin;
            double q = -k * g / ties;
            coef[i + 1] = (float) (-k * sumDy / m + k * g * sumE / (m * ties));
            coef[i + 2] = hi;
            coef[i + 3] = useMax ? (float) q : 0f;
            coef[i + 4] = lo;
            coef[i + 5] = useMin ? (float) -q : 0f;
        }
    }

    /** {@link Primitives#sumAbsDiff} over n runs of s floats (any s). */
    private static double sumAbsDiff(Primitives pr, MemorySegment x, long off, long n, long s, long stride,
                                     float c, float c2) {
        if (s <= BatchNormOps.MAX_RUN) {
            // the usual case: no lambda, no array for the sum
            return pr.sumAbsDiff(x, off, n, (int) s, stride, c, c2);
        }
        double[] parts = {0};
        runs(off, n, s, stride, (o, r, len, st) -> parts[0] += pr.sumAbsDiff(x, o, r, len, st, c, c2));
        return parts[0];
    }

    /** The minimum and maximum of n runs of s floats (any s) into {@code mm} (overwritten), which it returns. */
    private static float[] minMaxOf(Primitives pr, MemorySegment x, long off, long n, long s, long stride,
                                    float[] mm) {
        mm[0] = Float.POSITIVE_INFINITY;
        mm[1] = Float.NEGATIVE_INFINITY;
        minMax(pr, x, off, n, s, stride, mm);
        return mm;
    }

    /** Merges the minimum and maximum of n runs of s floats (any s) into {@code mm}. */
    private static void minMax(Primitives pr, MemorySegment x, long off, long n, long s, long stride, float[] mm) {
        if (s <= BatchNormOps.MAX_RUN) {
            // the usual case: no lambda
            pr.minMax(x, off, n, (int) s, stride, mm);
        } else {
            runs(off, n, s, stride, (o, r, len, st) -> pr.minMax(x, o, r, len, st, mm));
        }
    }

    /** {@link Primitives#countSteps} over a channel, added into counts. */
    private static void countSteps(Primitives pr, MemorySegment x, long off, long n, long s, long stride,
                                   float hi, float lo, long[] counts) {
        if (s <= BatchNormOps.MAX_RUN) {
            // the usual case: no lambda
            pr.countSteps(x, off, n, (int) s, stride, hi, lo, counts);
        } else {
            runs(off, n, s, stride, (o, r, len, st) -> pr.countSteps(x, o, r, len, st, hi, lo, counts));
        }
    }

    private static void applySteps(Primitives pr, MemorySegment dy, MemorySegment x, MemorySegment dx,
                                   long off, long n, long s, long stride, float[] coef, int i) {
        float k = coef[i], r = coef[i + 1], hi = coef[i + 2], u = coef[i + 3], lo = coef[i + 4], v = coef[i + 5];
        if (s <= BatchNormOps.MAX_RUN) {
            // the usual case, called once per run in memory order: no lambda
            pr.gradApplySteps(dy, off, x, off, dx, off, n, (int) s, stride, k, r, hi, u, lo, v);
            return;
        }
        runs(off, n, s, stride, (o, rr, len, st) -> pr.gradApplySteps(dy, o, x, o, dx, o, rr, len, st, k, r, hi, u, lo, v));
    }

    /** A call over channels [c0, c1) (a sample's block of runs in each sample). */
    @FunctionalInterface
    private interface BlockBody {
        void run(int c0, int c1);
    }

    /** {@link BatchNormOps#blockChannels}' blocks of channels, one work item each. */
    private static void channelBlocks(long cs, Loop loop, BlockBody body) {
        long block = BatchNormOps.blockChannels(cs, loop);
        loop.forEach(ColumnSums.ceilDiv(cs, block),
                j -> body.run((int) (j * block), (int) Math.min(cs, (j + 1) * block)));
    }

    /** A primitive call over runs: same offsets in every tensor. */
    @FunctionalInterface
    private interface RunsBody {
        void run(long off, long runs, int len, long stride);
    }

    /** n runs of s floats from off, stride apart; runs longer than MAX_RUN are handed over in pieces. */
    private static void runs(long off, long n, long s, long stride, RunsBody body) {
        if (s <= BatchNormOps.MAX_RUN) {
            body.run(off, n, (int) s, stride);
            return;
        }
        for (long r = 0; r < n; r++) {
            for (long i = 0; i < s; i += BatchNormOps.MAX_RUN) {
                body.run(off + r * stride + i * B, 1, (int) Math.min(BatchNormOps.MAX_RUN, s - i), 0);
            }
        }
    }
}
