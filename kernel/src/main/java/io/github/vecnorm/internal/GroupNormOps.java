package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * GroupNorm bodies composed of the {@link Primitives}. No validation here ({@code io.github.vecnorm.GroupNorm}
 * guards). An (N, C, S) tensor in G groups: group k = n*G + g is one contiguous run of (C/G)*S floats
 * (channels g*C/G .. (g+1)*C/G - 1 of sample n) and one work item (short groups: a sample's groups, or a
 * block of them, one work item, {@link #shortGroups}). Per-channel parameter gradients are
 * summed over n afterwards, channel by channel, in the order n = 0, 1, ...: results do not depend on
 * the {@link Loop}.
 */
public final class GroupNormOps {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;

    private GroupNormOps() {
    }

    /**
     * Spatial sizes below this take the per-element path: gamma and beta expanded to one float per
     * (channel, position) so that a whole group is one primitive call, and parameter gradients summed
     * by {@link ColumnSums}. Per-channel calls of a few floats each cost ~50x more at S = 1.
     */
    public static final int SMALL_S = 64;
    /** Largest C*S expanded (floats per parameter vector). */
    static final long MAX_EXPANDED = 1 << 24;

    static float at(MemorySegment seg, long i, float absent) {
        return seg == null ? absent : seg.get(F, i * B);
    }

    /** Whether (C, S) takes the per-element path (unless its groups are short: {@link #shortGroups}). */
    public static boolean perElement(long c, long s) {
        return s < SMALL_S && c * s <= MAX_EXPANDED;
    }

    /** Groups of fewer floats than this take the short-group path ({@link #shortGroups}). */
    static final int SHORT_GROUP = 64;

    /**
     * Whether groups of (C/G)*S floats are short enough that a work item takes a sample's groups together
     * ({@link #forwardShort}, {@link #backwardShort}): InstanceNorm and GroupNorm with small S. One group per
     * work item and primitive call cost ~70 ns a group whatever its size: JMH, 1 thread, InstanceNorm
     * 32x512x4x4 took 0.79 ms forward where libtorch took 0.42. One group a sample (G = 1) gains nothing and
     * keeps the per-group path, where it is LayerNorm over (C, S) bit for bit.
     */
    public static boolean shortGroups(long c, long s, long g) {
        return g > 1 && (c / g) * s < SHORT_GROUP && c * s <= Integer.MAX_VALUE / 2;
    }

    /**
     * Work items of the short-group path: sample i's groups [g0, g1) for item {@code i * perSample + j}, whole
     * samples unless there are fewer samples than tasks (then each sample's groups cut into blocks).
     */
    private static long groupBlock(long n, long g, Loop loop) {
        return n >= loop.tasks() ? g : ColumnSums.ceilDiv(g, ColumnSums.ceilDiv(loop.tasks(), n));
    }

    /**
     * A per-channel vector repeated over positions, {@code v[c*S + t] = seg[c]}, in the calling thread's scratch
     * segment {@code slot} ({@link Scratch#segment}: the call's tasks read it); null for null.
     */
    static MemorySegment expand(int slot, MemorySegment seg, long c, long s) {
        if (seg == null) return null;
        MemorySegment e = Scratch.segment(slot, c * s * B);
        for (long ch = 0; ch < c; ch++) {
            float v = seg.get(F, ch * B);
            for (long t = 0; t < s; t++) e.set(F, (ch * s + t) * B, v);
        }
        return e;
    }

    /**
     * Forward: per group, mean and rstd = 1/sqrt(var + eps) over its (C/G)*S values, then per channel
     * y = (x - mean) * rstd * gamma[c] + beta[c]. mean and rstd (N*G floats) are saved when not null.
     * When {@code unbiased} is not null it receives, per group, the mean and the unbiased variance in
     * double ({@code unbiased[2k]}, {@code unbiased[2k+1]}), for running statistics. Takes no caller doubles
     * slot of {@link Scratch} (InstanceNorm passes slot 0 as {@code unbiased}).
     */
    public static void forward(Primitives p, long n, long c, long s, long g, MemorySegment x, MemorySegment y,
                               MemorySegment gamma, MemorySegment beta, MemorySegment mean, MemorySegment rstd,
                               double eps, double[] unbiased, Loop loop) {
        if (shortGroups(c, s, g)) {
            forwardShort(p, n, c, s, g, x, y, gamma, beta, mean, rstd, eps, unbiased, loop);
            return;
        }
        boolean expanded = (gamma != null || beta != null) && perElement(c, s);
        MemorySegment ge = expanded ? expand(0, gamma, c, s) : null, be = expanded ? expand(1, beta, c, s) : null;
        loop.forEach(n * g, k -> forwardGroup(p, c, s, g, k, x, y, gamma, beta, ge, be, expanded, mean, rstd, eps, unbiased));
    }

    private static void forwardGroup(Primitives p, long c, long s, long g, long k, MemorySegment x, MemorySegment y,
                                     MemorySegment gamma, MemorySegment beta, MemorySegment ge, MemorySegment be,
                                     boolean expanded, MemorySegment mean, MemorySegment rstd,
                                     double eps, double[] unbiased) {
        long cg = c / g, len = cg * s, off = k * len * B;
        Scratch.Task task = Scratch.task();
        Moments acc = task.moments.reset();
        SetStats.moments(p, x, off, 1, len, 0, acc, task.centred);
        double mu = acc.mean();
        double rs = 1.0 / Math.sqrt(Math.max(acc.varBiased(), 0.0) + eps);
        float muF = (float) mu;
        if (mean != null) mean.set(F, k * B, muF);
        if (rstd != null) rstd.set(F, k * B, (float) rs);
        if (unbiased != null) {
            unbiased[(int) (2 * k)] = mu;
            unbiased[(int) (2 * k + 1)] = acc.m2() / (acc.count() - 1);
        }
        // (x - muF) is exact near the mean; what float rounding took from the mean goes into b
        if (gamma == null && beta == null) {
            Runs.affine(p, x, off, y, off, len, muF, (float) rs, (float) (-(mu - muF) * rs));
            return;
        }
        if (expanded) {
            // the group's channels are consecutive: their expanded parameters start at (k % g) * len
            Runs.rowAffine(p, x, off, y, off, len, muF, (float) rs, (float) (-(mu - muF) * rs), ge, be, (k % g) * len * B);
            return;
        }
        long c0 = (k % g) * cg;
        for (long j = 0; j < cg; j++) {
            double a = rs * at(gamma, c0 + j, 1f);
            double b = at(beta, c0 + j, 0f) - (mu - muF) * a;
            long o = off + j * s * B;
            Runs.affine(p, x, o, y, o, s, muF, (float) a, (float) b);
        }
    }

    /**
     * {@link #forward} for short groups: a work item takes a sample's groups (or a block of them): their sums
     * about each group's first value in one call ({@link Primitives#centredSumsRuns}: a run per group, the same
     * bits whatever block holds it), a group redone about its mean when that first value lies too far out
     * ({@link SetStats#keepsShift}), then the affine of the item's runs in one call ({@link
     * Primitives#affineRuns}): a run per channel with its own coefficients (a = rstd * gamma[c], b = beta[c] -
     * (mean - fl(mean)) * a), or a run per group without gamma and beta.
     */
    private static void forwardShort(Primitives p, long n, long c, long s, long g, MemorySegment x, MemorySegment y,
                                     MemorySegment gamma, MemorySegment beta, MemorySegment mean,
                                     MemorySegment rstd, double eps, double[] unbiased, Loop loop) {
        long cg = c / g, len = cg * s, block = groupBlock(n, g, loop), perSample = ColumnSums.ceilDiv(g, block);
        boolean perChannel = gamma != null || beta != null;
        double inv = 1.0 / len, invUnbiased = 1.0 / (len - 1);
        loop.forEach(n * perSample, item -> {
            long i = item / perSample, g0 = item % perSample * block, g1 = Math.min(g, g0 + block);
            int count = (int) (g1 - g0);
            long off = i * c * s * B;
            double[] sum = Scratch.taskDoubles(0, count), squares = Scratch.taskDoubles(1, count);
            p.centredSumsRuns(x, off, 1, 0, (int) g, (int) len, (int) g0, (int) g1, x, off, len * B, sum, squares,
                    (int) -g0);
            float[] coef = Scratch.taskFloats(0, (long) BatchNormOps.COEFS * (perChannel ? count * cg : count));
            for (long k = g0; k < g1; k++) {
                long o = off + k * len * B;
                int j = (int) (k - g0);
                float centre = x.get(F, o);
                double sumK = sum[j], squaresK = squares[j];
                if (!SetStats.keepsShift(sumK, squaresK, len)) {
                    // the first value lies far out: again about fl(mean), the group now in L1
                    centre = (float) (centre + sumK * inv);
                    CentredSums again = Scratch.task().centred.reset();
                    p.centredSums(x, o, 1, (int) len, 0, centre, again);
                    sumK = again.sum;
                    squaresK = again.sumSquares;
                }
                double dm = sumK * inv, mu = centre + dm, m2 = Math.max(0.0, squaresK - sumK * dm);
                double rs = 1.0 / Math.sqrt(m2 * inv + eps);
                float muF = (float) mu;
                long kk = i * g + k;
                if (mean != null) mean.set(F, kk * B, muF);
                if (rstd != null) rstd.set(F, kk * B, (float) rs);
                if (unbiased != null) {
                    unbiased[(int) (2 * kk)] = mu;
                    unbiased[(int) (2 * kk + 1)] = m2 * invUnbiased;
                }
                // (x - muF) is exact near the mean; what float rounding took from the mean goes into b
                if (!perChannel) {
                    putCoefs(coef, j, muF, rs, -(mu - muF) * rs);
                    continue;
                }
                for (long t = 0; t < cg; t++) {
                    long ch = k * cg + t;
                    double a = rs * at(gamma, ch, 1f);
                    putCoefs(coef, (int) (j * cg + t), muF, a, at(beta, ch, 0f) - (mu - muF) * a);
                }
            }
            long o = off + g0 * len * B;
            if (perChannel) {
                p.affineRuns(x, o, y, o, (int) (count * cg), (int) s, coef, 0, BatchNormOps.COEFS);
            } else {
                p.affineRuns(x, o, y, o, count, (int) len, coef, 0, BatchNormOps.COEFS);
            }
        });
    }

    /** Run r's affine (center, a, b) at {@code coef[COEFS * r]}. */
    private static void putCoefs(float[] coef, int r, float center, double a, double b) {
        int k = BatchNormOps.COEFS * r;
        coef[k] = center;
        coef[k + 1] = (float) a;
        coef[k + 2] = (float) b;
    }

    /**
     * Backward from the saved mean and rstd (N*G floats): with xhat = (x - mean)*rstd and g = gamma[c]*dy,
     * per group dx = rstd * (g - mean(g) - xhat * mean(g*xhat)); dgamma[c] = Σ_n Σ dy*xhat,
     * dbeta[c] = Σ_n Σ dy. Null outputs are not computed.
     */
    public static void backward(Primitives p, long n, long c, long s, long g, MemorySegment dy, MemorySegment x,
                                MemorySegment gamma, MemorySegment mean, MemorySegment rstd,
                                MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        if (dx == null && dgamma == null && dbeta == null) return;
        if (shortGroups(c, s, g)) {
            backwardShort(p, n, c, s, g, dy, x, gamma, mean, rstd, dx, dgamma, dbeta, loop);
            return;
        }
        if (perElement(c, s)) {
            backwardPerElement(p, n, c, s, g, dy, x, gamma, mean, rstd, dx, dgamma, dbeta, loop);
            return;
        }
        // per-(n, c) sums are needed for the parameter gradients, and for dx when gamma varies inside a group
        boolean perChannel = gamma != null || dgamma != null || dbeta != null;
        // every element is written by its group before it is read
        double[] sumDy = perChannel ? Scratch.doubles(0, n * c) : null;
        double[] sumDyXc = perChannel ? Scratch.doubles(1, n * c) : null;
        loop.forEach(n * g, k -> backwardGroup(p, c, s, g, k, dy, x, gamma, mean, rstd, dx, sumDy, sumDyXc));
        parameterGradients(n, c, g, rstd, sumDy, sumDyXc, dgamma, dbeta, loop);
    }

    /**
     * dgamma[c] = Σ_n sumDyXc[n, c] * rstd[n, group of c] and dbeta[c] = Σ_n sumDy[n, c], in the order
     * n = 0, 1, ... (either output may be null).
     */
    private static void parameterGradients(long n, long c, long g, MemorySegment rstd, double[] sumDy,
                                           double[] sumDyXc, MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        if (dgamma == null && dbeta == null) return;
        long cg = c / g;
        loop.forEach(c, ch -> {
            double dg = 0, db = 0;
            for (long i = 0; i < n; i++) {
                int idx = (int) (i * c + ch);
                dg += sumDyXc[idx] * rstd.get(F, (i * g + ch / cg) * B);
                db += sumDy[idx];
            }
            if (dgamma != null) dgamma.set(F, ch * B, (float) dg);
            if (dbeta != null) dbeta.set(F, ch * B, (float) db);
        });
    }

    /**
     * {@link #backward} for short groups, a sample's groups (or a block of them) a work item, as
     * {@link #forwardShort}: Σdy and Σdy*(x - mean) per (n, c) run in one call ({@link Primitives#gradSumsRuns},
     * about each channel's group mean), or per group when neither gamma nor a parameter gradient needs
     * channels; every item's sums first (dx may overwrite dy), then dx in one call per item ({@link
     * Primitives#gradApplyRuns}) with each run's coefficients.
     */
    private static void backwardShort(Primitives p, long n, long c, long s, long g, MemorySegment dy, MemorySegment x,
                                      MemorySegment gamma, MemorySegment mean, MemorySegment rstd, MemorySegment dx,
                                      MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        long cg = c / g, len = cg * s, block = groupBlock(n, g, loop), perSample = ColumnSums.ceilDiv(g, block);
        boolean perChannel = gamma != null || dgamma != null || dbeta != null;
        // per (n, c) run when channels matter, else per group: index i * runs + run either way
        long runs = perChannel ? c : g, runLen = perChannel ? s : len;
        double[] sumDy = Scratch.doubles(0, n * runs), sumDyXc = Scratch.doubles(1, n * runs);
        // each run's centre, its group's mean: the saved means themselves for runs of a group, else per channel
        MemorySegment centres = mean;
        if (perChannel && cg > 1) {
            centres = Scratch.segment(0, n * c * B);
            for (long r = 0; r < n * c; r++) centres.set(F, r * B, mean.get(F, r / cg * B));
        }
        MemorySegment centresF = centres;
        long runsPerGroup = perChannel ? cg : 1;
        loop.forEach(n * perSample, item -> {
            long i = item / perSample, g0 = item % perSample * block, g1 = Math.min(g, g0 + block);
            int from = (int) (g0 * runsPerGroup), to = (int) (g1 * runsPerGroup);
            Arrays.fill(sumDy, (int) (i * runs + from), (int) (i * runs + to), 0.0);
            Arrays.fill(sumDyXc, (int) (i * runs + from), (int) (i * runs + to), 0.0);
            long off = i * c * s * B;
            p.gradSumsRuns(dy, off, x, off, 1, 0, (int) runs, (int) runLen, from, to, centresF, i * runs * B, B,
                    sumDy, sumDyXc, (int) (i * runs));
        });
        if (dx != null) {
            loop.forEach(n * perSample, item -> {
                long i = item / perSample, g0 = item % perSample * block, g1 = Math.min(g, g0 + block);
                int count = (int) ((g1 - g0) * runsPerGroup);
                float[] coef = Scratch.taskFloats(0, (long) BatchNormOps.COEFS * count);
                for (long k = g0; k < g1; k++) {
                    long kk = i * g + k;
                    float mu = mean.get(F, kk * B);
                    double rs = rstd.get(F, kk * B);
                    double sg = 0, sgx = 0; // Σ gamma*dy and Σ gamma*dy*(x - mean) over the group
                    for (long t = 0; t < runsPerGroup; t++) {
                        int idx = (int) (i * runs + k * runsPerGroup + t);
                        double w = perChannel ? at(gamma, k * cg + t, 1f) : 1.0;
                        sg += w * sumDy[idx];
                        sgx += w * sumDyXc[idx];
                    }
                    float q = slope(rs, sgx, len);
                    float r = offset(rs, sg, len);
                    for (long t = 0; t < runsPerGroup; t++) {
                        int at = BatchNormOps.COEFS * (int) ((k - g0) * runsPerGroup + t);
                        coef[at] = (float) (rs * (perChannel ? at(gamma, k * cg + t, 1f) : 1f));
                        coef[at + 1] = q;
                        coef[at + 2] = mu;
                        coef[at + 3] = r;
                    }
                }
                long o = i * c * s * B + g0 * len * B;
                p.gradApplyRuns(dy, o, x, o, dx, o, count, (int) runLen, coef, 0, BatchNormOps.COEFS);
            });
        }
        if (perChannel) parameterGradients(n, c, g, rstd, sumDy, sumDyXc, dgamma, dbeta, loop);
    }

    private static void backwardGroup(Primitives p, long c, long s, long g, long k, MemorySegment dy, MemorySegment x,
                                      MemorySegment gamma, MemorySegment mean, MemorySegment rstd, MemorySegment dx,
                                      double[] sumDy, double[] sumDyXc) {
        long cg = c / g, len = cg * s, off = k * len * B;
        long c0 = (k % g) * cg, row = (k / g) * c;
        float mu = mean.get(F, k * B);
        double rs = rstd.get(F, k * B);
        double sg = 0, sgx = 0; // Σ gamma*dy and Σ gamma*dy*(x - mean) over the group
        GradSums acc = Scratch.task().grads;
        if (sumDy != null) {
            for (long j = 0; j < cg; j++) {
                long o = off + j * s * B;
                Runs.gradSums(p, dy, o, x, o, s, mu, acc.reset());
                sumDy[(int) (row + c0 + j)] = acc.sumDy;
                sumDyXc[(int) (row + c0 + j)] = acc.sumDyXc;
                double w = at(gamma, c0 + j, 1f);
                sg += w * acc.sumDy;
                sgx += w * acc.sumDyXc;
            }
        } else {
            Runs.gradSums(p, dy, off, x, off, len, mu, acc.reset());
            sg = acc.sumDy;
            sgx = acc.sumDyXc;
        }
        if (dx == null) return;
        float q = slope(rs, sgx, len);
        float r = offset(rs, sg, len);
        if (gamma == null) {
            Runs.gradApply(p, dy, off, x, off, dx, off, len, (float) rs, q, mu, r);
            return;
        }
        for (long j = 0; j < cg; j++) {
            long o = off + j * s * B;
            Runs.gradApply(p, dy, o, x, o, dx, o, s, (float) (rs * at(gamma, c0 + j, 1f)), q, mu, r);
        }
    }

    /**
     * Backward for small S: parameter gradients by {@link ColumnSums} over the N rows of C*S values (one
     * segment per group), then dx group by group with gamma expanded per element. The sums come first:
     * dx may overwrite dy. With dx, gamma and a parameter gradient, groups of at most
     * {@link RowGrads#FUSE_MAX_D} floats and at least a work item per task, {@link #backwardPerElementFused}
     * instead, with the same bits (so the choice, which looks at the task count, changes no result).
     */
    private static void backwardPerElement(Primitives p, long n, long c, long s, long g, MemorySegment dy,
                                           MemorySegment x, MemorySegment gamma, MemorySegment mean, MemorySegment rstd,
                                           MemorySegment dx, MemorySegment dgamma, MemorySegment dbeta, Loop loop) {
        long cs = c * s, len = cs / g;
        if (dx != null && gamma != null && (dgamma != null || dbeta != null) && len <= RowGrads.FUSE_MAX_D
                && ColumnSums.bands(n, cs) * g >= loop.tasks()) {
            backwardPerElementFused(p, n, c, s, g, dy, x, gamma, mean, rstd, dx, dgamma, dbeta, loop);
            return;
        }
        if (dgamma != null || dbeta != null) {
            writeChannels(ColumnSums.sums(p, n, cs, len, dy, x, mean, rstd, dgamma != null, dbeta != null, loop),
                    c, s, dgamma, dbeta);
        }
        if (dx == null) return;
        MemorySegment ge = expand(0, gamma, c, s);
        loop.forEach(n * g, k -> {
            long off = k * len * B, wOff = (k % g) * len * B;
            float mu = mean.get(F, k * B);
            double rs = rstd.get(F, k * B);
            GradSums acc = Scratch.task().grads.reset();
            if (ge == null) {
                Runs.gradSums(p, dy, off, x, off, len, mu, acc);
            } else {
                Runs.rowGradSums(p, dy, off, x, off, ge, wOff, len, mu, acc);
            }
            float q = slope(rs, acc.sumDyXc, len);
            float r = offset(rs, acc.sumDy, len);
            if (ge == null) {
                Runs.gradApply(p, dy, off, x, off, dx, off, len, (float) rs, q, mu, r);
            } else {
                Runs.rowGradApply(p, dy, off, x, off, ge, wOff, dx, off, len, (float) rs, q, mu, r);
            }
        });
    }

    /**
     * {@link #backwardPerElement} with dx, gamma and a parameter gradient, in two passes instead of three, as
     * {@code RowGrads} does for LayerNorm: a work item is a band of samples ({@link ColumnSums#band}) by a block
     * of groups; per sample and group, the group's sums, then dx and the column sums in one pass
     * ({@link Primitives#rowGradApplyColumns}), the columns flushed into the band's double partials every
     * {@link ColumnSums#ROW_BLOCK} samples as a {@link ColumnSums} tile would: dgamma and dbeta have the same
     * bits as without dx, and dx the same bits as the three passes (JMH, 1 thread, 32x512x4x4 G = 32:
     * see what-the-code-taught).
     */
    private static void backwardPerElementFused(Primitives p, long n, long c, long s, long g, MemorySegment dy,
                                                MemorySegment x, MemorySegment gamma, MemorySegment mean,
                                                MemorySegment rstd, MemorySegment dx, MemorySegment dgamma,
                                                MemorySegment dbeta, Loop loop) {
        long cs = c * s, len = cs / g;
        MemorySegment ge = expand(0, gamma, c, s);
        long band = ColumnSums.band(n, cs), bands = ColumnSums.ceilDiv(n, band);
        // blocks of groups: a few work items a task even with one band, and at most FUSE_MAX_D columns of
        // accumulators an item (L2); a column's sums do not depend on them
        long perBlock = Math.min(Math.max(1, RowGrads.FUSE_MAX_D / len),
                ColumnSums.ceilDiv(g, ColumnSums.ceilDiv(4L * loop.tasks(), bands)));
        long blocks = ColumnSums.ceilDiv(g, perBlock);
        double[] partG = dgamma == null ? null : Scratch.doubles(0, bands * cs);
        double[] partB = dbeta == null ? null : Scratch.doubles(1, bands * cs);
        loop.forEach(bands * blocks, item -> {
            long b = item / blocks, k0 = item % blocks * perBlock, k1 = Math.min(g, k0 + perBlock);
            int w = (int) ((k1 - k0) * len), base = (int) (b * cs + k0 * len);
            // dgamma's columns in accG (Σdy*xhat), dbeta's in accB (Σdy), as ColumnSums.sums names them
            float[] accG = partG == null ? null : Scratch.taskFloats(0, w);
            float[] accB = partB == null ? null : Scratch.taskFloats(1, w);
            if (partG != null) Arrays.fill(partG, base, base + w, 0.0);
            if (partB != null) Arrays.fill(partB, base, base + w, 0.0);
            // rowGradApplyColumns needs its Σdy*xhat accumulators even when only dbeta is wanted (never read)
            float[] sumsG = accG != null ? accG : Scratch.taskFloats(0, w);
            GradSums sums = Scratch.task().grads;
            long r0 = b * band, r1 = Math.min(n, r0 + band);
            for (long r = r0; r < r1; r++) {
                for (long k = k0; k < k1; k++) {
                    long kk = r * g + k, off = (r * cs + k * len) * B, wOff = k * len * B;
                    float mu = mean.get(F, kk * B);
                    double rs = rstd.get(F, kk * B);
                    GradSums acc = Runs.rowGradSums(p, dy, off, x, off, ge, wOff, len, mu, sums.reset());
                    float q = slope(rs, acc.sumDyXc, len);
                    float rr = offset(rs, acc.sumDy, len);
                    p.rowGradApplyColumns(dy, off, x, off, ge, wOff, dx, off, (int) len, (float) rs, q, mu, rr,
                            (float) rs, accB, sumsG, (int) ((k - k0) * len));
                }
                if ((r - r0) % ColumnSums.ROW_BLOCK == ColumnSums.ROW_BLOCK - 1 || r == r1 - 1) {
                    ColumnSums.flush(accG, partG, base, w);
                    ColumnSums.flush(accB, partB, base, w);
                }
            }
        });
        writeChannels(ColumnSums.combine(partG, partB, bands, cs, loop), c, s, dgamma, dbeta);
    }

    /** dgamma[c] and dbeta[c] (either may be null) from the column totals {sumG, sumB}: channel c's S columns. */
    private static void writeChannels(double[][] col, long c, long s, MemorySegment dgamma, MemorySegment dbeta) {
        for (long ch = 0; ch < c; ch++) {
            if (dgamma != null) dgamma.set(F, ch * B, (float) sumRange(col[0], ch * s, s));
            if (dbeta != null) dbeta.set(F, ch * B, (float) sumRange(col[1], ch * s, s));
        }
    }

    /** dx's coefficient of (x - mean) in a group of len values: -rstd³ * Σ gamma*dy*(x - mean) / len. */
    private static float slope(double rs, double sgx, long len) {
        return (float) (-rs * rs * rs * sgx / len);
    }

    /** dx's constant in a group of len values: -rstd * Σ gamma*dy / len. */
    private static float offset(double rs, double sg, long len) {
        return (float) (-rs * sg / len);
    }

    private static double sumRange(double[] v, long from, long count) {
        double s = 0;
        for (long i = from; i < from + count; i++) s += v[(int) i];
        return s;
    }
}
