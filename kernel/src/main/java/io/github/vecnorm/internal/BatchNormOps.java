package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * BatchNorm bodies composed of the {@link Primitives}. No validation here: {@code io.github.vecnorm.BatchNorm}
 * guards every argument first. A channel of an (N, C, S) tensor is N runs of S floats, {@code C*S} floats
 * apart. Each kernel is a reduction pass in memory order (a task's block of channels, sample by sample: a
 * primitive call per run for long runs, per block for short ones), then an element-wise pass in memory
 * order (a sample's block of channels an item). Per-item work is the same whatever the {@link Loop}, so
 * results do not depend on the thread count. Small S takes {@link BatchNormColumns} instead (x as an
 * (N, C*S) matrix, reduced down its columns), with the same per-channel finishing.
 */
public final class BatchNormOps {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;
    /** Longest run handed to a primitive in one piece: keeps the hot loops int-counted. */
    static final int MAX_RUN = 1 << 30;

    private BatchNormOps() {
    }

    /** Reads float {@code i} of a C-vector, or {@code absent} if the segment is null. */
    public static float at(MemorySegment seg, long i, float absent) {
        return seg == null ? absent : seg.get(F, i * B);
    }

    /**
     * Training forward of an (n, cs, s) tensor: the statistics (read in memory order, {@link #memoryOrderStats},
     * or down the columns for small S, {@link BatchNormColumns}), then y = (x - mean) * invstd * gamma + beta.
     * Running statistics are updated when runMean is not null.
     */
    public static void forwardTraining(Primitives p, long n, long cs, long s, MemorySegment x, MemorySegment y,
                                       MemorySegment gamma, MemorySegment beta,
                                       MemorySegment saveMean, MemorySegment saveInvstd,
                                       MemorySegment runMean, MemorySegment runVar, double factor, double eps,
                                       Loop loop) {
        float[] coef = Scratch.floats(scratchFloats(n, cs, s));
        if (BatchNormColumns.applies(n, cs, s)) {
            BatchNormColumns.trainingStats(p, n, cs, s, x, gamma, beta, saveMean, saveInvstd, runMean, runVar,
                    factor, eps, coef, loop);
        } else {
            memoryOrderStats(p, n, cs, s, x, gamma, beta, saveMean, saveInvstd, runMean, runVar, factor, eps, coef,
                    loop);
        }
        applyAffine(p, n, cs, s, x, y, coef, true, loop);
    }

    /** Inference forward: y = (x - running_mean) * gamma / sqrt(running_var + eps) + beta, one read and one write. */
    public static void forwardInference(Primitives p, long n, long cs, long s, MemorySegment x, MemorySegment y,
                                        MemorySegment gamma, MemorySegment beta,
                                        MemorySegment runMean, MemorySegment runVar, double eps, Loop loop) {
        float[] coef = Scratch.floats(scratchFloats(n, cs, s));
        for (long c = 0; c < cs; c++) inferenceCoefs(c, gamma, beta, runMean, runVar, eps, coef);
        applyAffine(p, n, cs, s, x, y, coef, false, loop);
    }

    /** Training-mode backward; null outputs are not computed. */
    public static void backward(Primitives p, long n, long cs, long s, MemorySegment dy, MemorySegment x,
                                MemorySegment gamma, MemorySegment saveMean, MemorySegment saveInvstd,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        if (dx == null && dgamma == null && dbeta == null) return;
        if (BatchNormColumns.applies(n, cs, s)) {
            // the sums first: dx may overwrite dy
            float[] coef = Scratch.floats(scratchFloats(n, cs, s));
            BatchNormColumns.backwardSums(p, n, cs, s, dy, x, gamma, saveMean, saveInvstd, dgamma, dbeta, dx != null,
                    coef, loop);
            if (dx != null) BatchNormColumns.gradApply(p, n, cs, s, dy, x, dx, coef, loop);
            return;
        }
        float[] coef = dx == null ? null : Scratch.floats(COEFS * cs);
        double[] sumDy = Scratch.doubles(0, cs), sumDyXc = Scratch.doubles(1, cs);
        memoryOrderSums(p, n, cs, s, dy, x, saveMean, B, sumDy, sumDyXc, loop);
        for (long c = 0; c < cs; c++) {
            finishBackward(c, sumDy[(int) c], sumDyXc[(int) c], (double) n * s, saveMean.get(F, c * B),
                    saveInvstd.get(F, c * B), gamma, dgamma, dbeta, coef);
        }
        if (dx == null) return;
        // memory order, each task the runs of the channels whose sums it took (blockChannels), a sample's
        // block of channels in one call (gradApplyRuns: short runs as one flat range)
        long b = blockChannels(cs, loop);
        loop.forEach(runItems(n, cs, b), j -> {
            long c0 = firstChannel(j, n, b), c1 = Math.min(cs, c0 + b), r0 = firstRun(j, n, cs);
            if (s <= MAX_RUN) {
                long off = (r0 + c0) * s * B;
                p.gradApplyRuns(dy, off, x, off, dx, off, (int) (c1 - c0), (int) s, coef, (int) (COEFS * c0), COEFS);
            } else {
                for (long c = c0; c < c1; c++) gradApplyRun(p, s, r0 + c, c, dy, x, dx, coef);
            }
        });
    }

    /** Inference-mode backward (statistics were constants); null outputs are not computed. */
    public static void backwardInference(Primitives p, long n, long cs, long s, MemorySegment dy, MemorySegment x,
                                         MemorySegment gamma, MemorySegment runMean, MemorySegment runVar, double eps,
                                         MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        float[] coef = Scratch.floats(scratchFloats(n, cs, s));
        if (dgamma != null || dbeta != null) {
            if (BatchNormColumns.applies(n, cs, s)) {
                BatchNormColumns.inferenceSums(p, n, cs, s, dy, x, runMean, runVar, eps, dgamma, dbeta, coef, loop);
            } else {
                double[] sumDy = Scratch.doubles(0, cs), sumDyXc = Scratch.doubles(1, cs);
                memoryOrderSums(p, n, cs, s, dy, x, runMean, B, sumDy, sumDyXc, loop);
                for (long c = 0; c < cs; c++) {
                    finishInferenceSums(c, sumDy[(int) c], sumDyXc[(int) c], runVar, eps, dgamma, dbeta);
                }
            }
        }
        if (dx == null) return;
        for (long c = 0; c < cs; c++) backwardInferenceCoefs(c, gamma, runVar, eps, coef);
        applyAffine(p, n, cs, s, dy, dx, coef, false, loop);
    }

    /**
     * The element-wise pass out = (in - center) * a + b with per-channel coefficients, in the faster order;
     * coef holds at least {@link #scratchFloats} floats. {@code afterChannels}: the call has just read the
     * input by channels (each task its channels, {@link #blockChannels}), so each thread takes the runs of
     * its own channels ({@link #runItems}).
     */
    static void applyAffine(Primitives p, long n, long cs, long s, MemorySegment in, MemorySegment out,
                            float[] coef, boolean afterChannels, Loop loop) {
        if (BatchNormColumns.applies(n, cs, s)) {
            BatchNormColumns.affine(p, n, cs, s, in, out, coef, loop);
        } else {
            // memory order, whatever S: without a channel pass before, whole samples (each task a contiguous
            // range of the tensor: JMH, 2 threads, inference 0.40-0.43 ms against 0.43-0.46 with channel
            // blocks), unless there are fewer samples than tasks. An item's runs go to one primitive call
            // (affineRuns): with S = 49, a call per run, channel by channel, had taken 0.91 ms for inference
            // over 32x2048x7x7 where ONNX Runtime took 0.36
            long b = afterChannels || n < loop.tasks() ? blockChannels(cs, loop) : cs;
            loop.forEach(runItems(n, cs, b), j -> {
                long c0 = firstChannel(j, n, b), c1 = Math.min(cs, c0 + b), r0 = firstRun(j, n, cs);
                if (s <= MAX_RUN) {
                    long off = (r0 + c0) * s * B;
                    p.affineRuns(in, off, out, off, (int) (c1 - c0), (int) s, coef, (int) (COEFS * c0), COEFS);
                } else {
                    for (long c = c0; c < c1; c++) affineRun(p, s, r0 + c, c, in, out, coef);
                }
            });
        }
    }

    /**
     * Runs at least this long have their sums in memory order taken run by run, a primitive call each
     * ({@link #memoryOrderRuns}); shorter ones a sample's block of channels per call
     * ({@link Primitives#centredSumsRuns}, {@link Primitives#gradSumsRuns}), as L_p BatchNorm's from 16 floats on
     * ({@link LpBatchNormOps#shortRuns}). Writing y
     * channel by channel means N strided streams per channel; measured on the headline shape, the element-wise
     * pass took 1.3 ms that way against 0.8 ms in memory order.
     */
    static final int MEMORY_ORDER_MIN_RUN = 64;

    /**
     * Channels per block of {@link #runItems} after a pass that read x (and dy) a block of channels per task
     * ({@link #memoryOrderRuns}, the short-run sums, L_p's channel-by-channel passes): one block per task, so
     * that the thread that read a range of channels (the loop gives a thread the same share of items in
     * both passes) writes them too, while they are in its caches. One task: all channels, memory order.
     */
    static long blockChannels(long cs, Loop loop) {
        return ColumnSums.ceilDiv(cs, Math.max(1, loop.tasks()));
    }

    /**
     * Items of an element-wise pass in memory order (run r = sample * C + channel): the channels are cut
     * into blocks of b (the last may be narrower), and item j is block j / N of sample j % N, its
     * channels' runs contiguous in memory ({@link #firstChannel} on, from run {@link #firstRun} +
     * channel). A block's items are contiguous, so a range of items is a range of channels; with b = C
     * this is memory order. An item of runs, not of one run: the item's arithmetic (integer divides) and
     * dispatch, once per run, cost 2-5% of an inference pass over the headline tensor. Each run is
     * computed alike whatever its item.
     */
    static long runItems(long n, long cs, long b) {
        return n * ColumnSums.ceilDiv(cs, b);
    }

    /** First channel of item j of {@link #runItems}. */
    static long firstChannel(long j, long n, long b) {
        return j / n * b;
    }

    /** Run of channel 0 in the sample of item j of {@link #runItems}. */
    static long firstRun(long j, long n, long cs) {
        return j % n * cs;
    }

    /** Floats of per-channel coefficients a statistics pass leaves for its element-wise pass. */
    static final int COEFS = 4;

    /** Scratch floats a call needs: the per-channel coefficients, and the column path's per-column vectors. */
    static long scratchFloats(long n, long cs, long s) {
        return BatchNormColumns.applies(n, cs, s) ? BatchNormColumns.scratchFloats(cs, s) : COEFS * cs;
    }

    /** Whether (n, cs, s) takes the column path ({@link BatchNormColumns}): small S, every pass in memory order. */
    public static boolean columnPath(long n, long cs, long s) {
        return BatchNormColumns.applies(n, cs, s);
    }

    /**
     * Whether (n, cs, s) takes its training statistics as sums about a shift in memory order
     * ({@link #memoryOrderStats}) and its backward sums in memory order ({@link #memoryOrderSums}): every
     * shape that does not take the column path.
     */
    public static boolean sumsInMemoryOrder(long n, long cs, long s) {
        return !columnPath(n, cs, s);
    }

    /** Whether runs are long enough to be summed a primitive call each ({@link #MEMORY_ORDER_MIN_RUN}). */
    static boolean memoryOrder(long s) {
        return s >= MEMORY_ORDER_MIN_RUN;
    }

    /**
     * The training statistics read in memory order ({@link #memoryOrderSums}): Σd and Σd² per channel,
     * d = x - x0 about the channel's first value x0 = x[0, c, 0], then mean and M2 from them
     * ({@link #finishShiftedSums}). Welford channel by channel read the headline tensor's 25.7 MB at
     * ~45 GB/s; these sums at ~70 GB/s (a plain read: ~90).
     */
    static void memoryOrderStats(Primitives p, long n, long cs, long s, MemorySegment x,
                                 MemorySegment gamma, MemorySegment beta, MemorySegment saveMean,
                                 MemorySegment saveInvstd, MemorySegment runMean, MemorySegment runVar,
                                 double factor, double eps, float[] coef, Loop loop) {
        double[] sum = Scratch.doubles(0, cs), squares = Scratch.doubles(1, cs);
        memoryOrderSums(p, n, cs, s, null, x, x, s * B, sum, squares, loop);
        double count = (double) n * s, inv = 1.0 / count, invUnbiased = 1.0 / (count - 1);
        finishShiftedSums(p, n, cs, s, x, sum, squares, loop, (c, mean, m2) -> finishStats(c, mean, m2, inv,
                invUnbiased, gamma, beta, saveMean, saveInvstd, runMean, runVar, factor, eps, coef));
    }

    /** What {@link #finishShiftedSums} hands on: channel c's mean and sum of squared deviations m2. */
    @FunctionalInterface
    interface ChannelMoments {
        void accept(long c, double mean, double m2);
    }

    /**
     * From Σd and Σd² per channel about its first value x0 = x[0, c, 0] (d = x - x0, {@link #memoryOrderSums}):
     * mean = x0 + Σd/m and M2 = Σd² - (Σd)²/m, kept when x0 lies within {@link SetStats#ONE_PASS_SIGMAS}
     * deviations of the mean ({@link SetStats#keepsShift}); otherwise (x0 an outlier, rare) the channel is
     * summed once more about fl(mean), channel by channel. Hands each channel's pair to {@code to}, a block of
     * channels per work item ({@link #finishBlock}).
     */
    static void finishShiftedSums(Primitives p, long n, long cs, long s, MemorySegment x, double[] sum,
                                  double[] squares, Loop loop, ChannelMoments to) {
        double count = (double) n * s, inv = 1.0 / count;
        long block = finishBlock(cs, loop);
        loop.forEach(ColumnSums.ceilDiv(cs, block), k -> {
            for (long c = k * block, c1 = Math.min(cs, c + block); c < c1; c++) {
                double centre = x.get(F, c * s * B), sumC = sum[(int) c], squaresC = squares[(int) c];
                if (!SetStats.keepsShift(sumC, squaresC, count)) {
                    float again = (float) (centre + sumC * inv);
                    CentredSums acc = Scratch.task().centred.reset();
                    centredSums(p, x, c * s * B, n, s, cs * s * B, again, acc);
                    centre = again;
                    sumC = acc.sum;
                    squaresC = acc.sumSquares;
                }
                double dm = sumC * inv;
                to.accept(c, centre + dm, Math.max(0.0, squaresC - sumC * dm));
            }
        });
    }

    /**
     * Channels per work item of the per-channel finish: a loop over up to 256, not a work item (a call) each,
     * and at least one item per task (a channel's rare second pass then still runs on every thread).
     */
    static long finishBlock(long cs, Loop loop) {
        return Math.min(256, ColumnSums.ceilDiv(cs, Math.max(1, loop.tasks())));
    }

    /**
     * Per-channel sums over x (and dy) read in memory order, a block of channels per task: for runs of at
     * least {@link #MEMORY_ORDER_MIN_RUN} floats each run's sums ({@link #memoryOrderRuns}) about its channel's
     * centre c = centres[c * centreStride bytes] (float lanes) added into the channel's doubles a[c] and b[c]
     * (overwritten), in sample order; shorter runs go to one call of the short-run primitives per block (a
     * run's lanes reduced where it ends or every 16 samples). dy null: Σ(x - c) and Σ(x - c)²
     * ({@link Primitives#centredSums}, {@link Primitives#centredSumsRuns}); otherwise Σdy and Σdy*(x - c)
     * ({@link Primitives#gradSums}, {@link Primitives#gradSumsRuns}).
     */
    static void memoryOrderSums(Primitives p, long n, long cs, long s, MemorySegment dy, MemorySegment x,
                                MemorySegment centres, long centreStride, double[] a, double[] b, Loop loop) {
        Arrays.fill(a, 0, (int) cs, 0.0);
        Arrays.fill(b, 0, (int) cs, 0.0);
        if (!memoryOrder(s)) {
            // short runs: a sample's block of channels per call, one flat range (a call per run of 49 floats,
            // or the channel's N strided runs per call, cost more than the loads)
            long block = blockChannels(cs, loop);
            loop.forEach(ColumnSums.ceilDiv(cs, block), k -> {
                int c0 = (int) (k * block), c1 = (int) Math.min(cs, c0 + block);
                if (dy == null) {
                    p.centredSumsRuns(x, 0, n, cs * s * B, (int) cs, (int) s, c0, c1, centres, 0, centreStride, a, b,
                            0);
                } else {
                    p.gradSumsRuns(dy, 0, x, 0, n, cs * s * B, (int) cs, (int) s, c0, c1, centres, 0, centreStride,
                            a, b, 0);
                }
            });
            return;
        }
        if (dy == null) {
            memoryOrderRuns(n, cs, s, loop, (task, c, off) ->
                    addRunCentredSums(p, x, off, s, centres.get(F, c * centreStride), task, a, b, c));
        } else {
            memoryOrderRuns(n, cs, s, loop, (task, c, off) ->
                    addRunGradSums(p, dy, x, off, s, centres.get(F, c * centreStride), task, a, b, c));
        }
    }

    /** Σ(x - centre) and Σ(x - centre)² of one run at byte off, added into a[c] and b[c]. */
    static void addRunCentredSums(Primitives p, MemorySegment x, long off, long s, float centre, Scratch.Task task,
                                  double[] a, double[] b, int c) {
        CentredSums acc = task.centred.reset();
        centredSums(p, x, off, 1, s, 0, centre, acc);
        a[c] += acc.sum;
        b[c] += acc.sumSquares;
    }

    /** Σdy and Σdy*(x - centre) of one run at byte off (the same in both), added into a[c] and b[c]. */
    static void addRunGradSums(Primitives p, MemorySegment dy, MemorySegment x, long off, long s, float centre,
                               Scratch.Task task, double[] a, double[] b, int c) {
        GradSums acc = task.grads.reset();
        gradSums(p, dy, off, x, off, 1, s, 0, centre, acc);
        a[c] += acc.sumDy;
        b[c] += acc.sumDyXc;
    }

    /** One run of {@link #memoryOrderRuns}: channel c's run at byte offset off, on the item's task scratch. */
    @FunctionalInterface
    interface RunBody {
        void run(Scratch.Task task, int c, long off);
    }

    /**
     * Visits the runs of x read in memory order, sample by sample, one block of channels per task: a
     * channel's runs are visited in sample order by one task, so what a body accumulates per channel does
     * not depend on the block or the thread count. Channel by channel, a channel is N strided runs (12.5 KB
     * each on the headline shape) that the prefetchers pick up one by one; in memory order the stats pass
     * read the headline tensor at ~70 GB/s against ~45 (a plain read: ~90).
     */
    static void memoryOrderRuns(long n, long cs, long s, Loop loop, RunBody body) {
        long block = blockChannels(cs, loop);
        loop.forEach(ColumnSums.ceilDiv(cs, block), k -> {
            long c0 = k * block, c1 = Math.min(cs, c0 + block);
            Scratch.Task task = Scratch.task();
            for (long i = 0; i < n; i++) {
                for (long c = c0; c < c1; c++) body.run(task, (int) c, (i * cs + c) * s * B);
            }
        });
    }

    /**
     * From channel {@code c}'s mean and sum of squared deviations m2 over m values, with {@code inv = 1/m} and
     * {@code invUnbiased = 1/(m - 1)} (taken once a call: a divide per channel cost as much as the rest of the
     * finish): save_mean[c], save_invstd[c], the running statistics (if runMean is not null) and the affine
     * (center, a, b) in {@code coef[COEFS*c ..]}.
     */
    static void finishStats(long c, double mean, double m2, double inv, double invUnbiased, MemorySegment gamma,
                            MemorySegment beta, MemorySegment saveMean, MemorySegment saveInvstd,
                            MemorySegment runMean, MemorySegment runVar, double factor, double eps, float[] coef) {
        double var = m2 * inv;
        double invstd = 1.0 / Math.sqrt(var + eps);
        float meanF = (float) mean;
        double a = invstd * at(gamma, c, 1f);
        // (x - meanF) is exact near the mean; what float rounding took from the mean goes into b
        double b = at(beta, c, 0f) - (mean - meanF) * a;
        int k = (int) (COEFS * c);
        coef[k] = meanF;
        coef[k + 1] = (float) a;
        coef[k + 2] = (float) b;
        saveMean.set(F, c * B, meanF);
        saveInvstd.set(F, c * B, (float) invstd);
        if (runMean != null) {
            double unbiased = m2 * invUnbiased;
            runMean.set(F, c * B, (float) ((1 - factor) * runMean.get(F, c * B) + factor * mean));
            runVar.set(F, c * B, (float) ((1 - factor) * runVar.get(F, c * B) + factor * unbiased));
        }
    }

    /** Inference coefficients of channel {@code c}: y = (x - running_mean) * gamma / sqrt(running_var + eps) + beta. */
    static void inferenceCoefs(long c, MemorySegment gamma, MemorySegment beta,
                                      MemorySegment runMean, MemorySegment runVar, double eps, float[] coef) {
        int k = (int) (COEFS * c);
        coef[k] = runMean.get(F, c * B);
        coef[k + 1] = (float) (at(gamma, c, 1f) / Math.sqrt(runVar.get(F, c * B) + eps));
        coef[k + 2] = at(beta, c, 0f);
    }

    /** y = (x - center) * a + b over run {@code r} of memory order, of channel c, coefficients from {@code coef}. */
    static void affineRun(Primitives p, long s, long r, long c, MemorySegment x, MemorySegment y, float[] coef) {
        int k = (int) (COEFS * c);
        long off = r * s * B;
        affine(p, x, off, y, off, 1, s, 0, coef[k], coef[k + 1], coef[k + 2]);
    }

    /** From channel {@code c}'s Σdy and Σdy*(x - mean) over m values: dgamma[c], dbeta[c] and dx's coefficients. */
    static void finishBackward(long c, double sumDy, double sumDyXc, double m, float mean, double invstd,
                               MemorySegment gamma, MemorySegment dgamma, MemorySegment dbeta, float[] coef) {
        if (dgamma != null) dgamma.set(F, c * B, (float) (sumDyXc * invstd));
        if (dbeta != null) dbeta.set(F, c * B, (float) sumDy);
        if (coef != null) {
            double k = at(gamma, c, 1f) * invstd;
            int i = (int) (COEFS * c);
            coef[i] = (float) k;
            coef[i + 1] = (float) (-k * invstd * invstd * sumDyXc / m);
            coef[i + 2] = mean;
            coef[i + 3] = (float) (-k * sumDy / m);
        }
    }

    /** dgamma[c] = Σ dy*(x - running_mean) / sqrt(running_var + eps), dbeta[c] = Σ dy (either may be null). */
    static void finishInferenceSums(long c, double sumDy, double sumDyXc, MemorySegment runVar, double eps,
                                    MemorySegment dgamma, MemorySegment dbeta) {
        double invstd = 1.0 / Math.sqrt(runVar.get(F, c * B) + eps);
        if (dgamma != null) dgamma.set(F, c * B, (float) (sumDyXc * invstd));
        if (dbeta != null) dbeta.set(F, c * B, (float) sumDy);
    }

    /** Inference-mode dx coefficients of channel {@code c}: dx = dy * gamma / sqrt(running_var + eps), as an affine of dy. */
    static void backwardInferenceCoefs(long c, MemorySegment gamma, MemorySegment runVar, double eps, float[] coef) {
        int k = (int) (COEFS * c);
        coef[k] = 0f;
        coef[k + 1] = (float) (at(gamma, c, 1f) / Math.sqrt(runVar.get(F, c * B) + eps));
        coef[k + 2] = 0f;
    }

    /** The same over one run {@code r} of memory order. */
    static void gradApplyRun(Primitives p, long s, long r, long c,
                                    MemorySegment dy, MemorySegment x, MemorySegment dx, float[] coef) {
        int k = (int) (COEFS * c);
        long off = r * s * B;
        gradApply(p, dy, off, x, off, dx, off, 1, s, 0, coef[k], coef[k + 1], coef[k + 2], coef[k + 3]);
    }

    // The primitives over n runs of s floats; a run longer than MAX_RUN is cut into pieces.

    /** A first value further than this many standard deviations from the mean triggers a second pass. */
    private static final double RESHIFT_SIGMAS = 4;

    /**
     * Moments of n strided runs of s floats, with the float lanes shifted by a value of the data so
     * that a large common offset costs no precision: first by the first value, and, if that value lies
     * far out in the tail (an outlier leaves every lane carrying its offset), once more by the mean
     * just found. The second pass is rare and re-reads data that is still in cache; whether it happens
     * depends only on the data, so results stay independent of the thread count.
     */
    public static void shiftedMoments(Primitives p, MemorySegment x, long off, long n, long s, long stride, Moments acc) {
        float shift = x.get(F, off);
        moments(p, x, off, n, s, stride, shift, acc);
        double d = acc.mean() - shift;
        if (d * d > RESHIFT_SIGMAS * RESHIFT_SIGMAS * acc.varBiased()) {
            float centre = (float) acc.mean();
            moments(p, x, off, n, s, stride, centre, acc.reset());
        }
    }

    static void moments(Primitives p, MemorySegment x, long off, long n, long s, long stride, float shift, Moments acc) {
        if (s <= MAX_RUN) {
            p.moments(x, off, n, (int) s, stride, shift, acc);
            return;
        }
        for (long r = 0; r < n; r++) {
            for (long i = 0; i < s; i += MAX_RUN) {
                p.moments(x, off + r * stride + i * B, 1, (int) Math.min(MAX_RUN, s - i), 0, shift, acc);
            }
        }
    }

    static void centredSums(Primitives p, MemorySegment x, long off, long n, long s, long stride, float c,
                            CentredSums acc) {
        if (s <= MAX_RUN) {
            p.centredSums(x, off, n, (int) s, stride, c, acc);
            return;
        }
        for (long r = 0; r < n; r++) {
            for (long i = 0; i < s; i += MAX_RUN) {
                p.centredSums(x, off + r * stride + i * B, 1, (int) Math.min(MAX_RUN, s - i), 0, c, acc);
            }
        }
    }

    static void affine(Primitives p, MemorySegment x, long xOff, MemorySegment y, long yOff,
                       long n, long s, long stride, float c, float a, float b) {
        if (s <= MAX_RUN) {
            p.affine(x, xOff, y, yOff, n, (int) s, stride, c, a, b);
            return;
        }
        for (long r = 0; r < n; r++) {
            for (long i = 0; i < s; i += MAX_RUN) {
                long d = r * stride + i * B;
                p.affine(x, xOff + d, y, yOff + d, 1, (int) Math.min(MAX_RUN, s - i), 0, c, a, b);
            }
        }
    }

    static void gradSums(Primitives p, MemorySegment dy, long dyOff, MemorySegment x, long xOff,
                         long n, long s, long stride, float c, GradSums acc) {
        if (s <= MAX_RUN) {
            p.gradSums(dy, dyOff, x, xOff, n, (int) s, stride, c, acc);
            return;
        }
        for (long r = 0; r < n; r++) {
            for (long i = 0; i < s; i += MAX_RUN) {
                long d = r * stride + i * B;
                p.gradSums(dy, dyOff + d, x, xOff + d, 1, (int) Math.min(MAX_RUN, s - i), 0, c, acc);
            }
        }
    }

    static void gradApply(Primitives p, MemorySegment dy, long dyOff, MemorySegment x, long xOff,
                          MemorySegment dx, long dxOff, long n, long s, long stride,
                          float k, float q, float c, float r) {
        if (s <= MAX_RUN) {
            p.gradApply(dy, dyOff, x, xOff, dx, dxOff, n, (int) s, stride, k, q, c, r);
            return;
        }
        for (long j = 0; j < n; j++) {
            for (long i = 0; i < s; i += MAX_RUN) {
                long d = j * stride + i * B;
                p.gradApply(dy, dyOff + d, x, xOff + d, dx, dxOff + d, 1, (int) Math.min(MAX_RUN, s - i), 0, k, q, c, r);
            }
        }
    }
}
