package io.github.vecnorm.internal.vector;

import io.github.vecnorm.internal.CentredSums;
import io.github.vecnorm.internal.GradSums;
import io.github.vecnorm.internal.Moments;
import io.github.vecnorm.internal.Primitives;
import io.github.vecnorm.internal.RunsByRun;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The primitives with the Vector API, at the machine's preferred width (8 float lanes on AVX2, 16 on
 * AVX-512). The only class that imports {@code jdk.incubator.vector}; loaded by name by
 * {@link io.github.vecnorm.internal.Kernels}. Loop shape of the strided primitives: whole vectors with
 * independent accumulators, then a scalar tail per run; lanes are reduced once per call. The primitives over
 * consecutive runs ({@code *Runs}) walk whole vectors over the runs' flat range instead, a vector meeting at
 * most two runs, with one scalar tail per range; their sums reduce each run's lanes where it ends or every
 * few samples.
 */
public final class VectorPrimitives implements Primitives {

    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final int L = SPECIES.length();
    private static final long VB = (long) L * Float.BYTES;
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;
    /** Steps of two vectors a reduction keeps in its float lanes before adding them into a second float level. */
    private static final int FLUSH_PAIRS = 64;
    /**
     * The thread's array for two vectors' lanes, where the Welford lane merge reads them in lane order without
     * allocating (toArray allocates one a call). Used only inside one primitive call, which calls no other.
     */
    private static final ThreadLocal<float[]> LANES = ThreadLocal.withInitial(() -> new float[2 * L]);
    /**
     * Shuffles of the lane reduction {@link #treeSum}, each its own constant (a shuffle loaded from an array is
     * not one, and costs C2 many nodes): step j swaps blocks of L/2^j lanes (i -> i xor block). Steps past
     * log2(L) are not used.
     */
    private static final VectorShuffle<Float> FOLD_1 = fold(1), FOLD_2 = fold(2), FOLD_3 = fold(3), FOLD_4 = fold(4);
    /**
     * Runs shorter than this (and at least L long) are summed as one flat range ({@link #centredSumsRuns});
     * runs of whole vectors from this length on are applied run by run ({@link #runByRun}).
     */
    private static final int FLAT_RUNS_BELOW = 64;
    /** Lane i holds i (as a float): compared with a count, the mask of the lanes from that count on. */
    private static final FloatVector LANE_INDEX = FloatVector.zero(SPECIES).addIndex(1);

    private static VectorShuffle<Float> fold(int step) {
        int block = Math.max(1, L >> step);
        return VectorShuffle.fromOp(SPECIES, i -> i ^ block);
    }

    @Override
    public String name() {
        return "vector";
    }

    @Override
    public int lanes() {
        return L;
    }

    private static FloatVector load(MemorySegment s, long off) {
        return FloatVector.fromMemorySegment(SPECIES, s, off, ORDER);
    }

    /**
     * |v| by clearing the sign bits, as Math.abs does: FloatVector.abs made sumAbsDiff's loop ~30% slower
     * than the same loop without it (0.80 against 0.55 ms over the headline tensor).
     */
    private static FloatVector abs(FloatVector v) {
        return v.viewAsIntegralLanes().and(Integer.MAX_VALUE).viewAsFloatingLanes();
    }

    @Override
    public void moments(MemorySegment x, long off, long runs, int len, long stride, float shift, Moments acc) {
        // Welford per lane: all lanes of a set have seen the same count, so one scalar reciprocal a step.
        // Four sets break the mean -> delta dependency chain; set 0 also takes the odd whole vectors.
        FloatVector sh = FloatVector.broadcast(SPECIES, shift);
        FloatVector m0 = FloatVector.zero(SPECIES), q0 = m0, m1 = m0, q1 = m0, m2 = m0, q2 = m0, m3 = m0, q3 = m0;
        int c0 = 0, cq = 0;
        // scalar tails: sums of the shifted values in double (no divide per element; shifted and in
        // double, the cancellation in m2 = Σv² - (Σv)²/n costs nothing while the shift is near the data)
        double tc = 0, ts = 0, tq = 0;
        int bound4 = len - len % (4 * L);
        int bound1 = SPECIES.loopBound(len);
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride;
            int i = 0;
            for (; i < bound4; i += 4 * L) {
                long o = base + i * B;
                c0++;
                cq++;
                FloatVector inv0 = FloatVector.broadcast(SPECIES, 1f / c0);
                FloatVector inv = FloatVector.broadcast(SPECIES, 1f / cq);
                FloatVector v0 = load(x, o).sub(sh);
                FloatVector v1 = load(x, o + VB).sub(sh);
                FloatVector v2 = load(x, o + 2 * VB).sub(sh);
                FloatVector v3 = load(x, o + 3 * VB).sub(sh);
                FloatVector d0 = v0.sub(m0), d1 = v1.sub(m1), d2 = v2.sub(m2), d3 = v3.sub(m3);
                m0 = d0.fma(inv0, m0);
                m1 = d1.fma(inv, m1);
                m2 = d2.fma(inv, m2);
                m3 = d3.fma(inv, m3);
                q0 = d0.fma(v0.sub(m0), q0);
                q1 = d1.fma(v1.sub(m1), q1);
                q2 = d2.fma(v2.sub(m2), q2);
                q3 = d3.fma(v3.sub(m3), q3);
            }
            for (; i < bound1; i += L) {
                c0++;
                FloatVector v0 = load(x, base + i * B).sub(sh);
                FloatVector d0 = v0.sub(m0);
                m0 = d0.fma(FloatVector.broadcast(SPECIES, 1f / c0), m0);
                q0 = d0.fma(v0.sub(m0), q0);
            }
            // scalar tail
            for (; i < len; i++) {
                double v = (double) x.get(F, base + i * B) - shift;
                ts += v;
                tq += v * v;
            }
            tc += len - bound1;
        }
        if (cq > 0) {
            // Sets 1..3 have equal counts: pairwise Chan merges with scalar weights, lane-wise.
            FloatVector d = m2.sub(m1);
            q1 = q1.add(q2).add(d.mul(d).mul(cq * 0.5f));
            m1 = m1.add(m2).mul(0.5f);
            // (m1, q1) now has 2cq values per lane; merge set 3 (cq values)
            d = m3.sub(m1);
            q1 = q1.add(q3).add(d.mul(d).mul((2f * cq) / 3f));
            m1 = d.fma(FloatVector.broadcast(SPECIES, 1f / 3f), m1);
            // merge into set 0 (c0 values per lane) the 3cq values of (m1, q1)
            float n0 = c0, n1 = 3f * cq, n = n0 + n1;
            d = m1.sub(m0);
            q0 = q0.add(q1).add(d.mul(d).mul(n0 * n1 / n));
            m0 = d.fma(FloatVector.broadcast(SPECIES, n1 / n), m0);
        }
        if (c0 > 0) {
            // Lanes have equal counts c0 + 3cq: merged in double, in lane order (reduceLanes leaves the
            // order to the implementation, and the interpreter and C2 differ in the last bit).
            // The lanes go through the thread's lane array (toArray would allocate one a call).
            double perLane = (double) c0 + 3.0 * cq;
            float[] lanes = LANES.get();
            m0.intoArray(lanes, 0);
            q0.intoArray(lanes, L);
            double mean = 0, m2all = 0;
            for (int l = 0; l < L; l++) mean += lanes[l];
            mean /= L;
            for (int l = 0; l < L; l++) {
                double d = lanes[l] - mean;
                m2all += lanes[L + l] + perLane * d * d;
            }
            acc.merge(perLane * L, mean + shift, m2all);
        }
        if (tc > 0) {
            double tm = ts / tc;
            acc.merge(tc, tm + shift, Math.max(0.0, tq - ts * tm));
        }
    }

    @Override
    public void centredSums(MemorySegment x, long off, long runs, int len, long stride, float c, CentredSums acc) {
        // d = x - c in float, Σd and Σd² in float lanes (two of each to hide the latency), added into a second
        // float level every block of FLUSH_PAIRS steps: a float lane's rounding error grows with what it has
        // added. One flat loop with a countdown, not a loop per block: a loop entered once a block costs its
        // pre- and post-loop every time (0.70 -> 0.45 ms over GroupNorm's groups of the headline tensor).
        // Flushing into double lanes instead (convertShape) boxed its vectors (~800 KB a GroupNorm call).
        // (Four of each: 36 -> 28 ns on a row of 768 alone, but LayerNorm forward no faster.)
        FloatVector cv = FloatVector.broadcast(SPECIES, c);
        FloatVector zero = FloatVector.zero(SPECIES);
        FloatVector s0 = zero, s1 = zero, q0 = zero, q1 = zero;
        FloatVector sTot = zero, qTot = zero;
        int left = FLUSH_PAIRS; // steps to the block's end, counted across runs, a run's last vector included
        double sum = 0, squares = 0;
        int bound2 = len - len % (2 * L);
        long pairBytes = bound2 * B;
        boolean odd = SPECIES.loopBound(len) > bound2;
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride, end = base + pairBytes;
            for (long o = base; o < end; o += 2 * VB) {
                FloatVector d0 = load(x, o).sub(cv), d1 = load(x, o + VB).sub(cv);
                s0 = s0.add(d0);
                s1 = s1.add(d1);
                q0 = d0.fma(d0, q0);
                q1 = d1.fma(d1, q1);
                if (--left == 0) {
                    sTot = sTot.add(s0.add(s1));
                    qTot = qTot.add(q0.add(q1));
                    s0 = zero;
                    s1 = zero;
                    q0 = zero;
                    q1 = zero;
                    left = FLUSH_PAIRS;
                }
            }
            if (odd) {
                FloatVector d0 = load(x, end).sub(cv);
                s0 = s0.add(d0);
                q0 = d0.fma(d0, q0);
                if (--left == 0) {
                    sTot = sTot.add(s0.add(s1));
                    qTot = qTot.add(q0.add(q1));
                    s0 = zero;
                    s1 = zero;
                    q0 = zero;
                    q1 = zero;
                    left = FLUSH_PAIRS;
                }
            }
            // scalar tail: the difference in float like the lanes, summed in double
            for (long o = end + (odd ? VB : 0), stop = base + len * B; o < stop; o += B) {
                double d = x.get(F, o) - c;
                sum += d;
                squares += d * d;
            }
        }
        acc.sum += sum + treeSum(sTot.add(s0.add(s1)));
        acc.sumSquares += squares + treeSum(qTot.add(q0.add(q1)));
    }

    @Override
    public void affine(MemorySegment x, long xOff, MemorySegment y, long yOff,
                       long runs, int len, long stride, float c, float a, float b) {
        FloatVector cv = FloatVector.broadcast(SPECIES, c);
        FloatVector av = FloatVector.broadcast(SPECIES, a);
        FloatVector bv = FloatVector.broadcast(SPECIES, b);
        int bound = SPECIES.loopBound(len);
        for (long r = 0; r < runs; r++) {
            long xb = xOff + r * stride, yb = yOff + r * stride;
            int i = 0;
            for (; i < bound; i += L) {
                load(x, xb + i * B).sub(cv).fma(av, bv).intoMemorySegment(y, yb + i * B, ORDER);
            }
            // scalar tail: the same fma as the vector lanes, so both give the same bits
            for (; i < len; i++) {
                y.set(F, yb + i * B, Math.fma(x.get(F, xb + i * B) - c, a, b));
            }
        }
    }

    /**
     * Whether {@link #affineRuns} and {@link #gradApplyRuns} go run by run, each run's vectors from its start:
     * runs shorter than a vector (a vector would meet more than two), a single run, and long runs whose
     * length is a whole number of vectors (their starts stay on the grid; the headline's 3136 and 28x28's 784
     * measured level or better that way). The other runs take the grid walk.
     */
    private static boolean runByRun(int runs, int len) {
        return len < L || runs == 1 || (len >= FLAT_RUNS_BELOW && len % L == 0);
    }

    @Override
    public void affineRuns(MemorySegment x, long xOff, MemorySegment y, long yOff, int runs, int len,
                           float[] coef, int coefOff, int coefStride) {
        if (runByRun(runs, len)) {
            affineRunByRun(x, xOff, y, yOff, runs, len, coef, coefOff, coefStride);
            return;
        }
        // runs of at least L floats, back to back: whole vectors over the flat range, each lane with its run's
        // coefficients, so that a vector meets at most two runs (a blend where one ends) and every vector lies
        // on the range's grid (aligned stores when the range is). Run by run, S = 49 (7x7) cost three
        // unaligned vectors and a scalar float per run: 32x2048x7x7 in a harness, 0.56-0.59 ms against
        // 0.39-0.43 this way (a copy: 0.29); runs of 196 floats (14x14) started off the cache lines' grid and
        // split most stores: 32x256x14x14 0.173 -> 0.141 ms (harness), JMH 0.17 -> 0.14. The walk goes run by
        // run over the range, run k's whole vectors then the one where it ends, so it tests where a run ends
        // rather than every vector (a test per vector had made S = 196 and 3136 5-10% slower; harness,
        // 32x512x7x7: 0.101 -> 0.093 ms), with a long index from the range's start (an int index from the run's
        // first whole vector, as affineRunByRun's, made 32x2048x7x7 inference 0.46 -> 0.85 ms: C2 gives each
        // entry of that loop, two or three vectors long, its pre- and post-loop).
        long total = (long) runs * len, bound = total - total % L, p = 0, end = len;
        FloatVector c0 = FloatVector.broadcast(SPECIES, coef[coefOff]);
        FloatVector a0 = FloatVector.broadcast(SPECIES, coef[coefOff + 1]);
        FloatVector b0 = FloatVector.broadcast(SPECIES, coef[coefOff + 2]);
        for (int k = 0; k < runs; k++, end += len) {
            for (long stop = Math.min(end, bound); p + L <= stop; p += L) {
                load(x, xOff + p * B).sub(c0).fma(a0, b0).intoMemorySegment(y, yOff + p * B, ORDER);
            }
            if (k + 1 == runs) break;
            int next = coefOff + (k + 1) * coefStride;
            FloatVector c1 = FloatVector.broadcast(SPECIES, coef[next]);
            FloatVector a1 = FloatVector.broadcast(SPECIES, coef[next + 1]);
            FloatVector b1 = FloatVector.broadcast(SPECIES, coef[next + 2]);
            if (p < end && p < bound) {
                // run k ends inside this vector and run k + 1 goes on past it (len >= L)
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) (end - p));
                load(x, xOff + p * B).sub(c0.blend(c1, later)).fma(a0.blend(a1, later), b0.blend(b1, later))
                        .intoMemorySegment(y, yOff + p * B, ORDER);
                p += L;
            }
            c0 = c1;
            a0 = a1;
            b0 = b1;
        }
        // scalar tail of the flat range: the same fma as the lanes
        for (long e = bound; e < total; e++) {
            int i = coefOff + (int) (e / len) * coefStride;
            y.set(F, yOff + e * B, Math.fma(x.get(F, xOff + e * B) - coef[i], coef[i + 1], coef[i + 2]));
        }
    }

    /**
     * {@link #affineRuns} run by run: affine's loop with each run's coefficients, written out (calling
     * {@link #affine} per run instead made inference over 32x256x14x14 10% slower: 0.163 -> 0.181 ms).
     */
    private static void affineRunByRun(MemorySegment x, long xOff, MemorySegment y, long yOff, int runs, int len,
                                       float[] coef, int coefOff, int coefStride) {
        int bound = SPECIES.loopBound(len);
        long runBytes = (long) len * B;
        for (int r = 0; r < runs; r++) {
            int k = coefOff + r * coefStride;
            float c = coef[k], a = coef[k + 1], b = coef[k + 2];
            FloatVector cv = FloatVector.broadcast(SPECIES, c);
            FloatVector av = FloatVector.broadcast(SPECIES, a);
            FloatVector bv = FloatVector.broadcast(SPECIES, b);
            long xb = xOff + r * runBytes, yb = yOff + r * runBytes;
            int i = 0;
            for (; i < bound; i += L) {
                load(x, xb + i * B).sub(cv).fma(av, bv).intoMemorySegment(y, yb + i * B, ORDER);
            }
            // scalar tail: the same fma as the vector lanes, as in affine
            for (; i < len; i++) {
                y.set(F, yb + i * B, Math.fma(x.get(F, xb + i * B) - c, a, b));
            }
        }
    }

    @Override
    public void gradSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff,
                         long runs, int len, long stride, float c, GradSums acc) {
        // Σdy and Σdy*(x - c) in float lanes, into a second float level every block: one flat loop with a
        // countdown, as in centredSums
        FloatVector cv = FloatVector.broadcast(SPECIES, c);
        FloatVector zero = FloatVector.zero(SPECIES);
        FloatVector s0 = zero, s1 = zero, t0 = zero, t1 = zero;
        FloatVector sTot = zero, tTot = zero;
        int left = FLUSH_PAIRS; // steps to the block's end, counted across runs, a run's last vector included
        double sumDy = 0, sumDyXc = 0;
        int bound2 = len - len % (2 * L);
        long pairBytes = bound2 * B;
        boolean odd = SPECIES.loopBound(len) > bound2;
        for (long r = 0; r < runs; r++) {
            long db = dyOff + r * stride, xb = xOff + r * stride, end = xb + pairBytes, dx = db - xb;
            for (long o = xb; o < end; o += 2 * VB) {
                FloatVector g0 = load(dy, o + dx), g1 = load(dy, o + dx + VB);
                s0 = s0.add(g0);
                s1 = s1.add(g1);
                t0 = g0.fma(load(x, o).sub(cv), t0);
                t1 = g1.fma(load(x, o + VB).sub(cv), t1);
                if (--left == 0) {
                    sTot = sTot.add(s0.add(s1));
                    tTot = tTot.add(t0.add(t1));
                    s0 = zero;
                    s1 = zero;
                    t0 = zero;
                    t1 = zero;
                    left = FLUSH_PAIRS;
                }
            }
            if (odd) {
                FloatVector g0 = load(dy, end + dx);
                s0 = s0.add(g0);
                t0 = g0.fma(load(x, end).sub(cv), t0);
                if (--left == 0) {
                    sTot = sTot.add(s0.add(s1));
                    tTot = tTot.add(t0.add(t1));
                    s0 = zero;
                    s1 = zero;
                    t0 = zero;
                    t1 = zero;
                    left = FLUSH_PAIRS;
                }
            }
            // scalar tail
            for (long o = end + (odd ? VB : 0), stop = xb + len * B; o < stop; o += B) {
                double g = dy.get(F, o + dx);
                sumDy += g;
                sumDyXc += g * (x.get(F, o) - c);
            }
        }
        acc.sumDy += sumDy + treeSum(sTot.add(s0.add(s1)));
        acc.sumDyXc += sumDyXc + treeSum(tTot.add(t0.add(t1)));
    }

    @Override
    public void gradApply(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                          long runs, int len, long stride, float p, float q, float c, float r) {
        FloatVector pv = FloatVector.broadcast(SPECIES, p);
        FloatVector qv = FloatVector.broadcast(SPECIES, q);
        FloatVector cv = FloatVector.broadcast(SPECIES, c);
        FloatVector rv = FloatVector.broadcast(SPECIES, r);
        int bound = SPECIES.loopBound(len);
        for (long k = 0; k < runs; k++) {
            long db = dyOff + k * stride, xb = xOff + k * stride, ob = dxOff + k * stride;
            int i = 0;
            for (; i < bound; i += L) {
                FloatVector t = load(x, xb + i * B).sub(cv).fma(qv, rv);
                pv.fma(load(dy, db + i * B), t).intoMemorySegment(dx, ob + i * B, ORDER);
            }
            // scalar tail: same operations as the lanes
            for (; i < len; i++) {
                float g = dy.get(F, db + i * B);
                float v = x.get(F, xb + i * B);
                dx.set(F, ob + i * B, Math.fma(p, g, Math.fma(v - c, q, r)));
            }
        }
    }

    /**
     * Whether {@link #centredSumsRuns} and {@link #gradSumsRuns} take consecutive runs of len floats as one flat
     * range ({@link #affineRuns}' grid): a vector then meets at most two runs. Longer runs are summed run by
     * run (BatchNorm calls these only for runs under 64 floats; its longer runs go a call each).
     */
    private static boolean flatRuns(int len) {
        return len >= L && len < FLAT_RUNS_BELOW;
    }

    /**
     * {@link #centredSumsRuns} and {@link #gradSumsRuns} keep each run's lanes across the samples, and reduce
     * them once at the end, when a sample's runs have at most this many lanes (per sum: 32 KB, L1 and L2 share
     * them with the loads); otherwise each run's lanes are reduced where the run ends, sample by sample. A
     * function of the sample's shape, not of the runs a call takes, so the bits do not depend on the split.
     * JMH, 1 thread: 32x512x7x7 (512 runs of 49) training 0.22 -> 0.19-0.20 ms and backward 0.30 -> 0.26 across
     * samples; 32x2048x7x7 backward 1.42-1.52 -> 1.71-1.85 (the lanes, 256 KB, then compete with the two input
     * streams for L2).
     */
    private static final int ACROSS_SAMPLES_MAX_LANES = 8192;

    private static final ThreadLocal<float[]> RUN_SCRATCH = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * Per-thread scratch of a *SumsRuns call over runs [from, to) of a sample of `runs` runs: from index 0 the
     * centres of [from, to + 2) (the last run's again past it), read once per call rather than once per run
     * and sample from a segment (BatchNorm's forward centres are x[0, c, 0], out of the caches by the later
     * samples); then, when the lanes are kept across samples, two zeroed vectors per run (one per sum) from
     * index {@link #lanesAt}.
     */
    private static float[] runScratch(int runs, int from, int to, MemorySegment centres, long centreOff,
                                      long centreStride) {
        int count = to - from, lanes = acrossSamples(runs) ? 2 * count * L : 0, size = lanesAt(count) + lanes;
        float[] f = RUN_SCRATCH.get();
        if (f.length < size) {
            f = new float[Math.max(size, 2 * f.length)];
            RUN_SCRATCH.set(f);
        } else {
            Arrays.fill(f, lanesAt(count), size, 0f);
        }
        for (int r = from; r <= to + 1; r++) f[r - from] = centres.get(F, centreOff + Math.min(r, runs - 1) * centreStride);
        return f;
    }

    /** Where {@link #runScratch}'s lanes start: after count + 2 centres, rounded up to whole vectors. */
    private static int lanesAt(int count) {
        return (count + 2 + L - 1) / L * L;
    }

    private static boolean acrossSamples(int runs) {
        return (long) runs * L <= ACROSS_SAMPLES_MAX_LANES;
    }

    /**
     * Samples whose lanes a run keeps before they are reduced into its double sums: a lane then adds at most
     * SAMPLES_PER_FLUSH * ceil(len / L) values (64 for runs under 64 floats), whatever the batch.
     */
    static final int SAMPLES_PER_FLUSH = 16;

    /** Adds v into the L floats of lanes from index i. */
    private static void addLanes(float[] lanes, int i, FloatVector v) {
        FloatVector.fromArray(SPECIES, lanes, i).add(v).intoArray(lanes, i);
    }

    @Override
    public void centredSumsRuns(MemorySegment x, long off, long samples, long sampleStride, int runs, int len, int from,
                                int to, MemorySegment centres, long centreOff, long centreStride, double[] a,
                                double[] b, int outOff) {
        if (!flatRuns(len)) {
            CentredSums acc = new CentredSums();
            for (long i = 0; i < samples; i++) {
                for (int r = from; r < to; r++) {
                    centredSums(x, off + i * sampleStride + (long) r * len * B, 1, len, 0,
                            centres.get(F, centreOff + r * centreStride), acc.reset());
                    a[outOff + r] += acc.sum;
                    b[outOff + r] += acc.sumSquares;
                }
            }
            return;
        }
        // whole vectors over each sample's flat range of runs, as affineRuns: each lane's d = x - (its run's
        // centre), run k's lanes added into s and q; where run k ends inside a vector (or at its end) its lanes go
        // in and the vector's other lanes start run k + 1. Run k's s and q are then reduced (treeSums), or added
        // into its lanes across samples and reduced every SAMPLES_PER_FLUSH samples (acrossSamples). The vectors
        // lie on the grid of all the runs of a sample whatever [from, to) is, so a run's lanes, and its bits, do
        // not depend on which runs a call takes: a vector shared with a run outside [from, to) is read and its
        // lanes masked.
        // The scalar tail of a sample's range (its last run's end) is summed in double, the differences in float
        // like the lanes. A call per run of 49 floats (its reductions and dispatch) would cost more than its loads.
        int count = to - from, lanesAt = lanesAt(count);
        float[] f = runScratch(runs, from, to, centres, centreOff, centreStride);
        boolean across = acrossSamples(runs);
        long total = (long) runs * len, bound = total - total % L, start = (long) from * len;
        FloatVector zero = FloatVector.zero(SPECIES);
        for (long i = 0; i < samples; i++) {
            long base = off + i * sampleStride, p = start - start % L, boundary = start + len;
            int k = from, at = lanesAt;
            FloatVector c0 = FloatVector.broadcast(SPECIES, f[0]), c1 = FloatVector.broadcast(SPECIES, f[1]);
            FloatVector s = zero, q = zero;
            if (p < start && p < bound) {
                // the vector run `from` starts in: its lanes, as that vector's next run when the walk starts earlier
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) (start - p));
                FloatVector d = load(x, base + p * B).sub(c0);
                s = zero.blend(d, later);
                q = s.mul(s);
                p += L;
            }
            for (; k < to && p < bound; p += L) {
                FloatVector v = load(x, base + p * B);
                long left = boundary - p; // lanes of run k in this vector
                if (left > L) {
                    FloatVector d = v.sub(c0);
                    s = s.add(d);
                    q = d.fma(d, q);
                    continue;
                }
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) left);
                FloatVector d = v.sub(c0.blend(c1, later));
                FloatVector mine = d.blend(zero, later), next = zero.blend(d, later);
                s = s.add(mine);
                q = mine.fma(mine, q);
                if (across) {
                    addLanes(f, at, s);
                    addLanes(f, at + count * L, q);
                    at += L;
                } else {
                    FloatVector both = treeSums(s, q);
                    a[outOff + k] += both.lane(0);
                    b[outOff + k] += both.lane(L / 2);
                }
                s = next;
                q = next.mul(next);
                k++;
                boundary += len;
                c0 = c1;
                c1 = FloatVector.broadcast(SPECIES, f[k + 1 - from]);
            }
            if (k < to) {
                // the last run of the sample ends in the scalar tail
                double sum = 0, squares = 0;
                if (across) {
                    addLanes(f, at, s);
                    addLanes(f, at + count * L, q);
                } else {
                    FloatVector both = treeSums(s, q);
                    sum = both.lane(0);
                    squares = both.lane(L / 2);
                }
                float c = f[k - from];
                for (; p < total; p++) {
                    double d = x.get(F, base + p * B) - c;
                    sum += d;
                    squares += d * d;
                }
                a[outOff + k] += sum;
                b[outOff + k] += squares;
            }
            if (across && ((i + 1) % SAMPLES_PER_FLUSH == 0 || i + 1 == samples)) {
                // written out here: as a method of its own, C2 left treeSums out of line there and boxed the
                // vectors (288 B a run; 32x512x7x7 training 0.19 -> 0.24 ms)
                for (int r = 0, l = lanesAt; r < count; r++, l += L) {
                    FloatVector both = treeSums(FloatVector.fromArray(SPECIES, f, l),
                            FloatVector.fromArray(SPECIES, f, l + count * L));
                    a[outOff + from + r] += both.lane(0);
                    b[outOff + from + r] += both.lane(L / 2);
                }
                Arrays.fill(f, lanesAt, lanesAt + 2 * count * L, 0f);
            }
        }
    }

    @Override
    public void gradSumsRuns(MemorySegment dy, long dyOff, MemorySegment x, long xOff, long samples, long sampleStride,
                             int runs, int len, int from, int to, MemorySegment centres, long centreOff,
                             long centreStride, double[] a, double[] b, int outOff) {
        if (!flatRuns(len)) {
            GradSums acc = new GradSums();
            for (long i = 0; i < samples; i++) {
                for (int r = from; r < to; r++) {
                    long d = i * sampleStride + (long) r * len * B;
                    gradSums(dy, dyOff + d, x, xOff + d, 1, len, 0, centres.get(F, centreOff + r * centreStride),
                            acc.reset());
                    a[outOff + r] += acc.sumDy;
                    b[outOff + r] += acc.sumDyXc;
                }
            }
            return;
        }
        // centredSumsRuns' walk: Σdy and Σdy*(x - c) of run k in s and t
        int count = to - from, lanesAt = lanesAt(count);
        float[] f = runScratch(runs, from, to, centres, centreOff, centreStride);
        boolean across = acrossSamples(runs);
        long total = (long) runs * len, bound = total - total % L, start = (long) from * len;
        FloatVector zero = FloatVector.zero(SPECIES);
        for (long i = 0; i < samples; i++) {
            long dyBase = dyOff + i * sampleStride, xBase = xOff + i * sampleStride;
            long p = start - start % L, boundary = start + len;
            int k = from, at = lanesAt;
            FloatVector c0 = FloatVector.broadcast(SPECIES, f[0]), c1 = FloatVector.broadcast(SPECIES, f[1]);
            FloatVector s = zero, t = zero;
            if (p < start && p < bound) {
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) (start - p));
                FloatVector d = zero.blend(load(x, xBase + p * B).sub(c0), later);
                s = zero.blend(load(dy, dyBase + p * B), later);
                t = s.mul(d);
                p += L;
            }
            for (; k < to && p < bound; p += L) {
                FloatVector g = load(dy, dyBase + p * B), v = load(x, xBase + p * B);
                long left = boundary - p;
                if (left > L) {
                    s = s.add(g);
                    t = g.fma(v.sub(c0), t);
                    continue;
                }
                // each run's products from its own lanes only: 0 * (an infinite other lane) would be NaN
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) left);
                FloatVector d = v.sub(c0.blend(c1, later));
                FloatVector mine = g.blend(zero, later), next = zero.blend(g, later);
                s = s.add(mine);
                t = mine.fma(d.blend(zero, later), t);
                if (across) {
                    addLanes(f, at, s);
                    addLanes(f, at + count * L, t);
                    at += L;
                } else {
                    FloatVector both = treeSums(s, t);
                    a[outOff + k] += both.lane(0);
                    b[outOff + k] += both.lane(L / 2);
                }
                s = next;
                t = next.mul(zero.blend(d, later));
                k++;
                boundary += len;
                c0 = c1;
                c1 = FloatVector.broadcast(SPECIES, f[k + 1 - from]);
            }
            if (k < to) {
                double sumDy = 0, sumDyXc = 0;
                if (across) {
                    addLanes(f, at, s);
                    addLanes(f, at + count * L, t);
                } else {
                    FloatVector both = treeSums(s, t);
                    sumDy = both.lane(0);
                    sumDyXc = both.lane(L / 2);
                }
                float c = f[k - from];
                for (; p < total; p++) {
                    double g = dy.get(F, dyBase + p * B);
                    sumDy += g;
                    sumDyXc += g * (x.get(F, xBase + p * B) - c);
                }
                a[outOff + k] += sumDy;
                b[outOff + k] += sumDyXc;
            }
            if (across && ((i + 1) % SAMPLES_PER_FLUSH == 0 || i + 1 == samples)) {
                for (int r = 0, l = lanesAt; r < count; r++, l += L) {
                    FloatVector both = treeSums(FloatVector.fromArray(SPECIES, f, l),
                            FloatVector.fromArray(SPECIES, f, l + count * L));
                    a[outOff + from + r] += both.lane(0);
                    b[outOff + from + r] += both.lane(L / 2);
                }
                Arrays.fill(f, lanesAt, lanesAt + 2 * count * L, 0f);
            }
        }
    }

    @Override
    public void gradApplyRuns(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                              int runs, int len, float[] coef, int coefOff, int coefStride) {
        if (runByRun(runs, len)) {
            for (int r = 0; r < runs; r++) {
                int k = coefOff + r * coefStride;
                long d = (long) r * len * B;
                gradApply(dy, dyOff + d, x, xOff + d, dx, dxOff + d, 1, len, 0, coef[k], coef[k + 1], coef[k + 2],
                        coef[k + 3]);
            }
            return;
        }
        // affineRuns' walk with gradApply's float operations: each lane takes its run's (p, q, c, r)
        long total = (long) runs * len, bound = total - total % L, o = 0, end = len;
        FloatVector p0 = FloatVector.broadcast(SPECIES, coef[coefOff]);
        FloatVector q0 = FloatVector.broadcast(SPECIES, coef[coefOff + 1]);
        FloatVector c0 = FloatVector.broadcast(SPECIES, coef[coefOff + 2]);
        FloatVector r0 = FloatVector.broadcast(SPECIES, coef[coefOff + 3]);
        for (int k = 0; k < runs; k++, end += len) {
            for (long stop = Math.min(end, bound); o + L <= stop; o += L) {
                p0.fma(load(dy, dyOff + o * B), load(x, xOff + o * B).sub(c0).fma(q0, r0))
                        .intoMemorySegment(dx, dxOff + o * B, ORDER);
            }
            if (k + 1 == runs) break;
            int next = coefOff + (k + 1) * coefStride;
            FloatVector p1 = FloatVector.broadcast(SPECIES, coef[next]);
            FloatVector q1 = FloatVector.broadcast(SPECIES, coef[next + 1]);
            FloatVector c1 = FloatVector.broadcast(SPECIES, coef[next + 2]);
            FloatVector r1 = FloatVector.broadcast(SPECIES, coef[next + 3]);
            if (o < end && o < bound) {
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) (end - o));
                FloatVector t = load(x, xOff + o * B).sub(c0.blend(c1, later)).fma(q0.blend(q1, later), r0.blend(r1, later));
                p0.blend(p1, later).fma(load(dy, dyOff + o * B), t).intoMemorySegment(dx, dxOff + o * B, ORDER);
                o += L;
            }
            p0 = p1;
            q0 = q1;
            c0 = c1;
            r0 = r1;
        }
        // scalar tail of the flat range: gradApply's operations
        for (long p = bound; p < total; p++) {
            int i = coefOff + (int) (p / len) * coefStride;
            float g = dy.get(F, dyOff + p * B), v = x.get(F, xOff + p * B);
            dx.set(F, dxOff + p * B, Math.fma(coef[i], g, Math.fma(v - coef[i + 2], coef[i + 1], coef[i + 3])));
        }
    }

    // --- row primitives (LayerNorm, RMSNorm)

    /**
     * The lanes of a float vector added in a fixed tree order, in float: lane i with lane i + L/2, then the
     * halves again, by rearranging with constant shuffles ({@link #FOLDS}): the same bits in the interpreter
     * and in C2, no allocation, and a handful of instructions (extracting the 16 lanes into doubles cost ~7 ns
     * a reduction: 14 of the 34 ns of a LayerNorm row's two sums). log2(L) float roundings, within the L
     * roundings the error model allows for the lane reduction. Called once per reduction, after its loops:
     * a vector passed to a call that C2 did not inline is boxed (allocated).
     */
    private static double treeSum(FloatVector v) {
        if (L >= 2) v = v.add(v.rearrange(FOLD_1));
        if (L >= 4) v = v.add(v.rearrange(FOLD_2));
        if (L >= 8) v = v.add(v.rearrange(FOLD_3));
        if (L >= 16) v = v.add(v.rearrange(FOLD_4));
        if (L > 16) {
            for (int block = L / 32; block >= 1; block /= 2) {
                int b = block;
                v = v.add(v.rearrange(VectorShuffle.fromOp(SPECIES, i -> i ^ b)));
            }
        }
        return v.lane(0);
    }

    /** Lane i < L/2 on: the upper half of a vector (treeSums). */
    private static final VectorMask<Float> UPPER_HALF = LANE_INDEX.compare(VectorOperators.GE, (float) (L / 2));

    /**
     * Two {@link #treeSum}s in one tree: after the first fold the lower half carries u's tree and the upper half
     * v's, and the further folds stay within halves. Lane 0 is treeSum(u), lane L/2 treeSum(v), bit for bit
     * (every lane of a fold adds the same pairs, commutatively). L >= 2.
     */
    private static FloatVector treeSums(FloatVector u, FloatVector v) {
        FloatVector w = u.add(u.rearrange(FOLD_1)).blend(v.add(v.rearrange(FOLD_1)), UPPER_HALF);
        if (L >= 4) w = w.add(w.rearrange(FOLD_2));
        if (L >= 8) w = w.add(w.rearrange(FOLD_3));
        if (L >= 16) w = w.add(w.rearrange(FOLD_4));
        if (L > 16) {
            for (int block = L / 32; block >= 1; block /= 2) {
                int b = block;
                w = w.add(w.rearrange(VectorShuffle.fromOp(SPECIES, i -> i ^ b)));
            }
        }
        return w;
    }

    @Override
    public double sumSquares(MemorySegment x, long off, long runs, int len, long stride) {
        // four accumulators hide the fma latency; non-negative terms, so float lanes lose only ~k*u relative.
        // Into a second float level every FLUSH_PAIRS/2 steps (a run's last vectors included, across runs):
        // one flat loop with a countdown, as in centredSums.
        FloatVector zero = FloatVector.zero(SPECIES);
        FloatVector a0 = zero, a1 = zero, a2 = zero, a3 = zero;
        FloatVector aTot = zero;
        int left = FLUSH_PAIRS / 2;
        double tail = 0;
        long quadBytes = (len - len % (4 * L)) * B, wholeBytes = SPECIES.loopBound(len) * B;
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride, end4 = base + quadBytes, end1 = base + wholeBytes, o = base;
            for (; o < end4; o += 4 * VB) {
                FloatVector v0 = load(x, o), v1 = load(x, o + VB), v2 = load(x, o + 2 * VB), v3 = load(x, o + 3 * VB);
                a0 = v0.fma(v0, a0);
                a1 = v1.fma(v1, a1);
                a2 = v2.fma(v2, a2);
                a3 = v3.fma(v3, a3);
                if (--left == 0) {
                    aTot = aTot.add(a0.add(a1).add(a2.add(a3)));
                    a0 = zero;
                    a1 = zero;
                    a2 = zero;
                    a3 = zero;
                    left = FLUSH_PAIRS / 2;
                }
            }
            for (; o < end1; o += VB) {
                FloatVector v0 = load(x, o);
                a0 = v0.fma(v0, a0);
                if (--left == 0) {
                    aTot = aTot.add(a0.add(a1).add(a2.add(a3)));
                    a0 = zero;
                    a1 = zero;
                    a2 = zero;
                    a3 = zero;
                    left = FLUSH_PAIRS / 2;
                }
            }
            // scalar tail
            for (long stop = base + len * B; o < stop; o += B) {
                double v = x.get(F, o);
                tail += v * v;
            }
        }
        return tail + treeSum(aTot.add(a0.add(a1).add(a2.add(a3))));
    }

    @Override
    public void rowAffine(MemorySegment x, long xOff, MemorySegment y, long yOff, int len, float c, float a, float b,
                          MemorySegment w, long wOff, MemorySegment beta, long betaOff) {
        FloatVector cv = FloatVector.broadcast(SPECIES, c);
        FloatVector av = FloatVector.broadcast(SPECIES, a);
        FloatVector bv = FloatVector.broadcast(SPECIES, b);
        int bound = SPECIES.loopBound(len);
        int i = 0;
        if (w == null) {
            // no per-element scale: y = t + beta (t alone would be the per-run affine)
            for (; i < bound; i += L) {
                FloatVector t = load(x, xOff + i * B).sub(cv).fma(av, bv);
                (beta == null ? t : t.add(load(beta, betaOff + i * B))).intoMemorySegment(y, yOff + i * B, ORDER);
            }
        } else if (beta == null) {
            for (; i < bound; i += L) {
                FloatVector t = load(x, xOff + i * B).sub(cv).fma(av, bv);
                t.mul(load(w, wOff + i * B)).intoMemorySegment(y, yOff + i * B, ORDER);
            }
        } else {
            for (; i < bound; i += L) {
                FloatVector t = load(x, xOff + i * B).sub(cv).fma(av, bv);
                t.fma(load(w, wOff + i * B), load(beta, betaOff + i * B)).intoMemorySegment(y, yOff + i * B, ORDER);
            }
        }
        // scalar tail: the same operations as the lanes
        for (; i < len; i++) {
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
        // Σw*dy and Σw*dy*(x - c) in float lanes, into a second float level every block (rows longer than one):
        // one flat loop with a countdown, as in centredSums
        FloatVector cv = FloatVector.broadcast(SPECIES, c);
        FloatVector zero = FloatVector.zero(SPECIES);
        FloatVector s0 = zero, s1 = zero, t0 = zero, t1 = zero;
        FloatVector sTot = zero, tTot = zero;
        int left = FLUSH_PAIRS;
        double sumDy = 0, sumDyXc = 0;
        long end2 = (len - len % (2 * L)) * B, end1 = SPECIES.loopBound(len) * B, o = 0;
        for (; o < end2; o += 2 * VB) {
            FloatVector g0 = load(dy, dyOff + o).mul(load(w, wOff + o));
            FloatVector g1 = load(dy, dyOff + o + VB).mul(load(w, wOff + o + VB));
            s0 = s0.add(g0);
            s1 = s1.add(g1);
            t0 = g0.fma(load(x, xOff + o).sub(cv), t0);
            t1 = g1.fma(load(x, xOff + o + VB).sub(cv), t1);
            if (--left == 0) {
                sTot = sTot.add(s0.add(s1));
                tTot = tTot.add(t0.add(t1));
                s0 = zero;
                s1 = zero;
                t0 = zero;
                t1 = zero;
                left = FLUSH_PAIRS;
            }
        }
        if (o < end1) {
            // the row's odd vector: into the current block (at most FLUSH_PAIRS + 1 steps, one row)
            FloatVector g0 = load(dy, dyOff + o).mul(load(w, wOff + o));
            s0 = s0.add(g0);
            t0 = g0.fma(load(x, xOff + o).sub(cv), t0);
            o += VB;
        }
        // the lanes reduced before the scalar tail: parsed later, these calls would find C2's inlining
        // budget spent on the tail's segment accesses, and their vector arguments would be boxed
        double lanesDy = treeSum(sTot.add(s0.add(s1))), lanesDyXc = treeSum(tTot.add(t0.add(t1)));
        // scalar tail, in double like the twin
        for (int i = (int) (o / B); i < len; i++) {
            double g = (double) w.get(F, wOff + i * B) * dy.get(F, dyOff + i * B);
            sumDy += g;
            sumDyXc += g * (x.get(F, xOff + i * B) - c);
        }
        acc.sumDy += sumDy + lanesDy;
        acc.sumDyXc += sumDyXc + lanesDyXc;
    }

    @Override
    public void rowGradApply(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment w, long wOff,
                             MemorySegment dx, long dxOff, int len, float p, float q, float c, float r) {
        FloatVector pv = FloatVector.broadcast(SPECIES, p);
        FloatVector qv = FloatVector.broadcast(SPECIES, q);
        FloatVector cv = FloatVector.broadcast(SPECIES, c);
        FloatVector rv = FloatVector.broadcast(SPECIES, r);
        int bound = SPECIES.loopBound(len);
        int i = 0;
        for (; i < bound; i += L) {
            long o = i * B;
            FloatVector t = load(x, xOff + o).sub(cv).fma(qv, rv);
            pv.mul(load(w, wOff + o)).fma(load(dy, dyOff + o), t).intoMemorySegment(dx, dxOff + o, ORDER);
        }
        // scalar tail: the same operations as the lanes
        for (; i < len; i++) {
            float g = dy.get(F, dyOff + i * B);
            float v = x.get(F, xOff + i * B);
            float pw = p * w.get(F, wOff + i * B);
            dx.set(F, dxOff + i * B, Math.fma(pw, g, Math.fma(v - c, q, r)));
        }
    }

    @Override
    public void columnGradSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff, int len, float c, float a,
                               float[] sumDy, float[] sumDyXhat, int accOff) {
        FloatVector cv = FloatVector.broadcast(SPECIES, c);
        FloatVector av = FloatVector.broadcast(SPECIES, a);
        int bound = SPECIES.loopBound(len);
        int i = 0;
        // element-wise accumulation into the caller's columns: no lane reduction, so bits match the twin
        for (; i < bound; i += L) {
            FloatVector g = load(dy, dyOff + i * B);
            if (sumDy != null) {
                FloatVector.fromArray(SPECIES, sumDy, accOff + i).add(g).intoArray(sumDy, accOff + i);
            }
            if (sumDyXhat != null) {
                FloatVector xhat = load(x, xOff + i * B).sub(cv).mul(av);
                g.fma(xhat, FloatVector.fromArray(SPECIES, sumDyXhat, accOff + i)).intoArray(sumDyXhat, accOff + i);
            }
        }
        // scalar tail: the same operations as the lanes
        for (; i < len; i++) {
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
        // non-negative terms, like sumSquares: four float accumulators lose only ~k*u relative; into a second
        // float level every block, as in sumSquares
        FloatVector cv = FloatVector.broadcast(SPECIES, c);
        FloatVector c2v = FloatVector.broadcast(SPECIES, c2);
        FloatVector zero = FloatVector.zero(SPECIES);
        FloatVector a0 = zero, a1 = zero, a2 = zero, a3 = zero;
        FloatVector aTot = zero;
        int left = FLUSH_PAIRS / 2;
        double tail = 0;
        long quadBytes = (len - len % (4 * L)) * B, wholeBytes = SPECIES.loopBound(len) * B;
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride, end4 = base + quadBytes, end1 = base + wholeBytes, o = base;
            for (; o < end4; o += 4 * VB) {
                a0 = a0.add(abs(load(x, o).sub(cv).sub(c2v)));
                a1 = a1.add(abs(load(x, o + VB).sub(cv).sub(c2v)));
                a2 = a2.add(abs(load(x, o + 2 * VB).sub(cv).sub(c2v)));
                a3 = a3.add(abs(load(x, o + 3 * VB).sub(cv).sub(c2v)));
                if (--left == 0) {
                    aTot = aTot.add(a0.add(a1).add(a2.add(a3)));
                    a0 = zero;
                    a1 = zero;
                    a2 = zero;
                    a3 = zero;
                    left = FLUSH_PAIRS / 2;
                }
            }
            for (; o < end1; o += VB) {
                a0 = a0.add(abs(load(x, o).sub(cv).sub(c2v)));
                if (--left == 0) {
                    aTot = aTot.add(a0.add(a1).add(a2.add(a3)));
                    a0 = zero;
                    a1 = zero;
                    a2 = zero;
                    a3 = zero;
                    left = FLUSH_PAIRS / 2;
                }
            }
            // scalar tail: each term in float like the lanes, summed in double like the twin
            for (long stop = base + len * B; o < stop; o += B) {
                tail += Math.abs((x.get(F, o) - c) - c2);
            }
        }
        return tail + treeSum(aTot.add(a0.add(a1).add(a2.add(a3))));
    }

    @Override
    public void minMax(MemorySegment x, long off, long runs, int len, long stride, float[] minMax) {
        // compare and blend, not FloatVector.min/max: with Java's NaN and signed-zero rules each of those is a
        // chain of ~6 instructions on x86 without AVX10.2, and the loop was latency-bound (0.89 against
        // 0.49 ms over the headline tensor; a NaN mask from test(IS_NAN) was as slow as min/max). A blend
        // skips NaN, so Σ(v - v) per lane watches for one: NaN for a NaN or an infinity, and then the runs
        // are scanned again with min/max, whose rules are the contract's. In a lane a zero extreme keeps the
        // sign it was first seen with (the lane reduction then prefers -0 for the minimum, +0 for the
        // maximum), which the contract allows.
        FloatVector lo0 = FloatVector.broadcast(SPECIES, minMax[0]), lo1 = lo0;
        FloatVector hi0 = FloatVector.broadcast(SPECIES, minMax[1]), hi1 = hi0;
        FloatVector odd0 = FloatVector.zero(SPECIES), odd1 = odd0;
        float lo = minMax[0], hi = minMax[1];
        int bound2 = len - len % (2 * L);
        int bound1 = SPECIES.loopBound(len);
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride;
            int i = 0;
            for (; i < bound2; i += 2 * L) {
                FloatVector v0 = load(x, base + i * B), v1 = load(x, base + i * B + VB);
                lo0 = lo0.blend(v0, v0.compare(VectorOperators.LT, lo0));
                hi0 = hi0.blend(v0, v0.compare(VectorOperators.GT, hi0));
                lo1 = lo1.blend(v1, v1.compare(VectorOperators.LT, lo1));
                hi1 = hi1.blend(v1, v1.compare(VectorOperators.GT, hi1));
                odd0 = odd0.add(v0.sub(v0));
                odd1 = odd1.add(v1.sub(v1));
            }
            for (; i < bound1; i += L) {
                FloatVector v0 = load(x, base + i * B);
                lo0 = lo0.blend(v0, v0.compare(VectorOperators.LT, lo0));
                hi0 = hi0.blend(v0, v0.compare(VectorOperators.GT, hi0));
                odd0 = odd0.add(v0.sub(v0));
            }
            // scalar tail
            for (; i < len; i++) {
                float v = x.get(F, base + i * B);
                lo = Math.min(lo, v);
                hi = Math.max(hi, v);
            }
        }
        if (Double.isNaN(treeSum(odd0.add(odd1)))) {
            exactMinMax(x, off, runs, len, stride, minMax);
            return;
        }
        minMax[0] = Math.min(lo, lo0.min(lo1).reduceLanes(VectorOperators.MIN));
        minMax[1] = Math.max(hi, hi0.max(hi1).reduceLanes(VectorOperators.MAX));
    }

    /** {@link #minMax} with Math.min/max's rules in every lane: for runs holding a NaN or an infinity. */
    private static void exactMinMax(MemorySegment x, long off, long runs, int len, long stride, float[] minMax) {
        FloatVector lo0 = FloatVector.broadcast(SPECIES, minMax[0]);
        FloatVector hi0 = FloatVector.broadcast(SPECIES, minMax[1]);
        float lo = minMax[0], hi = minMax[1];
        int bound1 = SPECIES.loopBound(len);
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride;
            int i = 0;
            for (; i < bound1; i += L) {
                FloatVector v0 = load(x, base + i * B);
                lo0 = lo0.min(v0);
                hi0 = hi0.max(v0);
            }
            for (; i < len; i++) {
                float v = x.get(F, base + i * B);
                lo = Math.min(lo, v);
                hi = Math.max(hi, v);
            }
        }
        minMax[0] = Math.min(lo, lo0.reduceLanes(VectorOperators.MIN));
        minMax[1] = Math.max(hi, hi0.reduceLanes(VectorOperators.MAX));
    }

    @Override
    public void countSteps(MemorySegment x, long off, long runs, int len, long stride, float hi, float lo, long[] counts) {
        FloatVector hv = FloatVector.broadcast(SPECIES, hi);
        FloatVector lv = FloatVector.broadcast(SPECIES, lo);
        long nHi0 = 0, nHi1 = 0, nLo0 = 0, nLo1 = 0;
        int bound2 = len - len % (2 * L);
        int bound1 = SPECIES.loopBound(len);
        for (long r = 0; r < runs; r++) {
            long base = off + r * stride;
            int i = 0;
            for (; i < bound2; i += 2 * L) {
                FloatVector v0 = load(x, base + i * B), v1 = load(x, base + i * B + VB);
                nHi0 += v0.compare(VectorOperators.GE, hv).trueCount();
                nLo0 += v0.compare(VectorOperators.LE, lv).trueCount();
                nHi1 += v1.compare(VectorOperators.GE, hv).trueCount();
                nLo1 += v1.compare(VectorOperators.LE, lv).trueCount();
            }
            for (; i < bound1; i += L) {
                FloatVector v0 = load(x, base + i * B);
                nHi0 += v0.compare(VectorOperators.GE, hv).trueCount();
                nLo0 += v0.compare(VectorOperators.LE, lv).trueCount();
            }
            // scalar tail
            for (; i < len; i++) {
                float v = x.get(F, base + i * B);
                if (v >= hi) nHi0++;
                if (v <= lo) nLo0++;
            }
        }
        counts[0] += nHi0 + nHi1;
        counts[1] += nLo0 + nLo1;
    }

    @Override
    public void gradApplySteps(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                               long runs, int len, long stride, float p, float r, float hi, float u, float lo, float v) {
        FloatVector pv = FloatVector.broadcast(SPECIES, p);
        FloatVector rv = FloatVector.broadcast(SPECIES, r);
        FloatVector hv = FloatVector.broadcast(SPECIES, hi);
        FloatVector uv = FloatVector.broadcast(SPECIES, u);
        FloatVector lv = FloatVector.broadcast(SPECIES, lo);
        FloatVector vv = FloatVector.broadcast(SPECIES, v);
        FloatVector zero = FloatVector.zero(SPECIES);
        int bound = SPECIES.loopBound(len);
        for (long k = 0; k < runs; k++) {
            long db = dyOff + k * stride, xb = xOff + k * stride, ob = dxOff + k * stride;
            int i = 0;
            for (; i < bound; i += L) {
                FloatVector xv = load(x, xb + i * B);
                FloatVector steps = zero.blend(uv, xv.compare(VectorOperators.GE, hv))
                        .add(zero.blend(vv, xv.compare(VectorOperators.LE, lv)));
                pv.fma(load(dy, db + i * B), rv.add(steps)).intoMemorySegment(dx, ob + i * B, ORDER);
            }
            // scalar tail: the same operations as the lanes
            for (; i < len; i++) {
                float xv = x.get(F, xb + i * B);
                float steps = (xv >= hi ? u : 0f) + (xv <= lo ? v : 0f);
                dx.set(F, ob + i * B, Math.fma(p, dy.get(F, db + i * B), r + steps));
            }
        }
    }

    // --- the L_p primitives over a sample's consecutive short runs (L_p BatchNorm with 16 <= S < 64)
    // centredSumsRuns' walk: whole vectors on the grid of each sample's flat range of runs, a vector shared by two
    // runs split by a mask (lanes of a run outside [from, to) masked), the scalar tail of the range's last run in
    // double. A run's lanes are its own whatever [from, to) is (the sums' bits), and another run's NaN or
    // infinity never reaches them. Each run's vectors from its own start instead (a masked load for its last)
    // measured slower: L_p p = 1 forward 32x2048x7x7, 1.55 ms (C2 gives the loop over a run's two or three
    // vectors a pre- and post-loop at every entry).

    /** The coefficient of run r at slot j: coef[coefOff + min(r, runs - 1) * coefStride + j]. */
    private static FloatVector coefAt(float[] coef, int coefOff, int coefStride, int runs, int r, int j) {
        return FloatVector.broadcast(SPECIES, coef[coefOff + Math.min(r, runs - 1) * coefStride + j]);
    }

    /** Per-thread scratch of size floats, each set to init. */
    private static float[] laneScratch(int size, float init) {
        float[] f = RUN_SCRATCH.get();
        if (f.length < size) {
            f = new float[Math.max(size, 2 * f.length)];
            RUN_SCRATCH.set(f);
        }
        Arrays.fill(f, 0, size, init);
        return f;
    }

    @Override
    public void sumAbsDiffRuns(MemorySegment x, long off, long samples, long sampleStride, int runs, int len, int from,
                               int to, float[] coef, int coefOff, int coefStride, double[] out, int outOff) {
        if (!flatRuns(len)) {
            RunsByRun.sumAbsDiff(this, x, off, samples, sampleStride, len, from, to, coef, coefOff, coefStride, out,
                    outOff);
            return;
        }
        // each term in float as sumAbsDiff's; run k's lanes in s, reduced where it ends or kept across samples
        // (acrossSamples) and reduced every SAMPLES_PER_FLUSH samples
        int count = to - from;
        boolean across = acrossSamples(runs);
        float[] f = across ? laneScratch(count * L, 0f) : null;
        long total = (long) runs * len, bound = total - total % L, start = (long) from * len;
        FloatVector zero = FloatVector.zero(SPECIES);
        for (long i = 0; i < samples; i++) {
            long base = off + i * sampleStride, p = start - start % L, boundary = start + len;
            int k = from, at = 0;
            FloatVector c0 = coefAt(coef, coefOff, coefStride, runs, k, 0), e0 = coefAt(coef, coefOff, coefStride, runs, k, 1);
            FloatVector c1 = coefAt(coef, coefOff, coefStride, runs, k + 1, 0);
            FloatVector e1 = coefAt(coef, coefOff, coefStride, runs, k + 1, 1);
            FloatVector sum = zero;
            if (p < start && p < bound) {
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) (start - p));
                sum = zero.blend(abs(load(x, base + p * B).sub(c0).sub(e0)), later);
                p += L;
            }
            for (; k < to && p < bound; p += L) {
                FloatVector v = load(x, base + p * B);
                long left = boundary - p;
                if (left > L) {
                    sum = sum.add(abs(v.sub(c0).sub(e0)));
                    continue;
                }
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) left);
                FloatVector d = abs(v.sub(c0.blend(c1, later)).sub(e0.blend(e1, later)));
                sum = sum.add(d.blend(zero, later));
                if (across) {
                    addLanes(f, at, sum);
                    at += L;
                } else {
                    out[outOff + k] += treeSum(sum);
                }
                sum = zero.blend(d, later);
                k++;
                boundary += len;
                c0 = c1;
                e0 = e1;
                c1 = coefAt(coef, coefOff, coefStride, runs, k + 1, 0);
                e1 = coefAt(coef, coefOff, coefStride, runs, k + 1, 1);
            }
            if (k < to) {
                // the last run of the sample ends in the scalar tail
                double tail = 0;
                if (across) {
                    addLanes(f, at, sum);
                } else {
                    tail = treeSum(sum);
                }
                int j = coefOff + k * coefStride;
                for (; p < total; p++) tail += Math.abs((x.get(F, base + p * B) - coef[j]) - coef[j + 1]);
                out[outOff + k] += tail;
            }
            if (across && ((i + 1) % SAMPLES_PER_FLUSH == 0 || i + 1 == samples)) {
                for (int r = 0, l = 0; r < count; r++, l += L) {
                    out[outOff + from + r] += treeSum(FloatVector.fromArray(SPECIES, f, l));
                }
                Arrays.fill(f, 0, count * L, 0f);
            }
        }
    }

    @Override
    public void minMaxRuns(MemorySegment x, long off, long samples, long sampleStride, int runs, int len, int from,
                           int to, double[] lo, double[] hi, int outOff) {
        int count = to - from, his = count * L;
        if (!flatRuns(len)) {
            RunsByRun.minMax(this, x, off, samples, sampleStride, len, from, to, lo, hi, outOff);
            return;
        }
        // compare and blend, as minMax, into each run's lanes kept across the samples (count * L floats of
        // minima, then of maxima), with Σ(v - v) watching for a NaN or an infinity: then the runs are scanned
        // again with min/max's rules. The scalar tail merges straight into lo and hi.
        float[] f = laneScratch(2 * his, Float.POSITIVE_INFINITY);
        Arrays.fill(f, his, 2 * his, Float.NEGATIVE_INFINITY);
        FloatVector odd = FloatVector.zero(SPECIES);
        long total = (long) runs * len, bound = total - total % L, start = (long) from * len;
        // runs of whole vectors (S = 16 with 16 lanes) each read their own vectors: the walk's split at every
        // vector cost 64x512x4x4's p = inf forward 8%
        for (long i = 0; len % L == 0 && i < samples; i++) {
            long o = off + i * sampleStride + start * B;
            for (int l = 0; l < his; l += L) {
                FloatVector a = FloatVector.fromArray(SPECIES, f, l), b = FloatVector.fromArray(SPECIES, f, his + l);
                for (long end = o + len * B; o < end; o += VB) {
                    FloatVector e = load(x, o);
                    a = a.blend(e, e.compare(VectorOperators.LT, a));
                    b = b.blend(e, e.compare(VectorOperators.GT, b));
                    odd = odd.add(e.sub(e));
                }
                a.intoArray(f, l);
                b.intoArray(f, his + l);
            }
        }
        for (long i = 0; len % L != 0 && i < samples; i++) {
            long base = off + i * sampleStride, p = start - start % L, boundary = start + len;
            int k = from, at = 0;
            FloatVector a = FloatVector.fromArray(SPECIES, f, 0), b = FloatVector.fromArray(SPECIES, f, his);
            if (p < start && p < bound) {
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) (start - p));
                FloatVector e = load(x, base + p * B);
                a = a.blend(e, e.compare(VectorOperators.LT, a).and(later));
                b = b.blend(e, e.compare(VectorOperators.GT, b).and(later));
                odd = odd.add(e.sub(e));
                p += L;
            }
            for (; k < to && p < bound; p += L) {
                FloatVector e = load(x, base + p * B);
                odd = odd.add(e.sub(e));
                long left = boundary - p;
                if (left > L) {
                    a = a.blend(e, e.compare(VectorOperators.LT, a));
                    b = b.blend(e, e.compare(VectorOperators.GT, b));
                    continue;
                }
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) left);
                a.blend(e, e.compare(VectorOperators.LT, a).andNot(later)).intoArray(f, at);
                b.blend(e, e.compare(VectorOperators.GT, b).andNot(later)).intoArray(f, his + at);
                k++;
                at += L;
                boundary += len;
                if (k < to) {
                    a = FloatVector.fromArray(SPECIES, f, at);
                    b = FloatVector.fromArray(SPECIES, f, his + at);
                    a = a.blend(e, e.compare(VectorOperators.LT, a).and(later));
                    b = b.blend(e, e.compare(VectorOperators.GT, b).and(later));
                }
            }
            if (k < to) {
                // the last run of the sample ends in the scalar tail
                a.intoArray(f, at);
                b.intoArray(f, his + at);
                double l0 = lo[outOff + k], h0 = hi[outOff + k];
                for (; p < total; p++) {
                    float v = x.get(F, base + p * B);
                    l0 = Math.min(l0, v);
                    h0 = Math.max(h0, v);
                }
                lo[outOff + k] = l0;
                hi[outOff + k] = h0;
            }
        }
        if (Double.isNaN(treeSum(odd))) {
            float[] mm = new float[2];
            for (int r = from; r < to; r++) {
                mm[0] = Float.POSITIVE_INFINITY;
                mm[1] = Float.NEGATIVE_INFINITY;
                exactMinMax(x, off + (long) r * len * B, samples, len, sampleStride, mm);
                lo[outOff + r] = Math.min(lo[outOff + r], mm[0]);
                hi[outOff + r] = Math.max(hi[outOff + r], mm[1]);
            }
            return;
        }
        for (int r = from, l = 0; r < to; r++, l += L) {
            lo[outOff + r] = Math.min(lo[outOff + r], FloatVector.fromArray(SPECIES, f, l).reduceLanes(VectorOperators.MIN));
            hi[outOff + r] = Math.max(hi[outOff + r],
                    FloatVector.fromArray(SPECIES, f, his + l).reduceLanes(VectorOperators.MAX));
        }
    }

    @Override
    public void countStepsRuns(MemorySegment x, long off, long samples, long sampleStride, int runs, int len, int from,
                               int to, float[] coef, int coefOff, int coefStride, double[] atHi, double[] atLo,
                               int outOff) {
        if (!flatRuns(len)) {
            RunsByRun.countSteps(this, x, off, samples, sampleStride, len, from, to, coef, coefOff, coefStride, atHi,
                    atLo, outOff);
            return;
        }
        long total = (long) runs * len, bound = total - total % L, start = (long) from * len;
        // runs of whole vectors each read their own vectors, as in minMaxRuns
        for (long i = 0; len % L == 0 && i < samples; i++) {
            long o = off + i * sampleStride + start * B;
            for (int r = from; r < to; r++) {
                FloatVector h = coefAt(coef, coefOff, coefStride, runs, r, 0), l = coefAt(coef, coefOff, coefStride, runs, r, 2);
                int nHi = 0, nLo = 0;
                for (long end = o + len * B; o < end; o += VB) {
                    FloatVector e = load(x, o);
                    nHi += e.compare(VectorOperators.GE, h).trueCount();
                    nLo += e.compare(VectorOperators.LE, l).trueCount();
                }
                atHi[outOff + r] += nHi;
                atLo[outOff + r] += nLo;
            }
        }
        for (long i = 0; len % L != 0 && i < samples; i++) {
            long base = off + i * sampleStride, p = start - start % L, boundary = start + len;
            int k = from, nHi = 0, nLo = 0;
            FloatVector h0 = coefAt(coef, coefOff, coefStride, runs, k, 0), l0 = coefAt(coef, coefOff, coefStride, runs, k, 2);
            FloatVector h1 = coefAt(coef, coefOff, coefStride, runs, k + 1, 0);
            FloatVector l1 = coefAt(coef, coefOff, coefStride, runs, k + 1, 2);
            if (p < start && p < bound) {
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) (start - p));
                FloatVector e = load(x, base + p * B);
                nHi = e.compare(VectorOperators.GE, h0).and(later).trueCount();
                nLo = e.compare(VectorOperators.LE, l0).and(later).trueCount();
                p += L;
            }
            for (; k < to && p < bound; p += L) {
                FloatVector e = load(x, base + p * B);
                long left = boundary - p;
                if (left > L) {
                    nHi += e.compare(VectorOperators.GE, h0).trueCount();
                    nLo += e.compare(VectorOperators.LE, l0).trueCount();
                    continue;
                }
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) left);
                VectorMask<Float> onHi = e.compare(VectorOperators.GE, h0.blend(h1, later));
                VectorMask<Float> onLo = e.compare(VectorOperators.LE, l0.blend(l1, later));
                atHi[outOff + k] += nHi + onHi.andNot(later).trueCount();
                atLo[outOff + k] += nLo + onLo.andNot(later).trueCount();
                nHi = onHi.and(later).trueCount();
                nLo = onLo.and(later).trueCount();
                k++;
                boundary += len;
                h0 = h1;
                l0 = l1;
                h1 = coefAt(coef, coefOff, coefStride, runs, k + 1, 0);
                l1 = coefAt(coef, coefOff, coefStride, runs, k + 1, 2);
            }
            if (k < to) {
                // the last run of the sample ends in the scalar tail
                int j = coefOff + k * coefStride;
                float h = coef[j], l = coef[j + 2];
                for (; p < total; p++) {
                    float v = x.get(F, base + p * B);
                    if (v >= h) nHi++;
                    if (v <= l) nLo++;
                }
                atHi[outOff + k] += nHi;
                atLo[outOff + k] += nLo;
            }
        }
    }

    @Override
    public void gradApplyStepsRuns(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx,
                                   long dxOff, int runs, int len, float[] coef, int coefOff, int coefStride) {
        if (runByRun(runs, len)) {
            RunsByRun.gradApplySteps(this, dy, dyOff, x, xOff, dx, dxOff, runs, len, coef, coefOff, coefStride);
            return;
        }
        // affineRuns' walk with gradApplySteps' float operations: each lane takes its run's (p, r, hi, u, lo, v)
        long total = (long) runs * len, bound = total - total % L, o = 0, end = len;
        FloatVector zero = FloatVector.zero(SPECIES);
        FloatVector p0 = FloatVector.broadcast(SPECIES, coef[coefOff]);
        FloatVector r0 = FloatVector.broadcast(SPECIES, coef[coefOff + 1]);
        FloatVector h0 = FloatVector.broadcast(SPECIES, coef[coefOff + 2]);
        FloatVector u0 = FloatVector.broadcast(SPECIES, coef[coefOff + 3]);
        FloatVector l0 = FloatVector.broadcast(SPECIES, coef[coefOff + 4]);
        FloatVector v0 = FloatVector.broadcast(SPECIES, coef[coefOff + 5]);
        for (int k = 0; k < runs; k++, end += len) {
            for (long stop = Math.min(end, bound); o + L <= stop; o += L) {
                FloatVector xv = load(x, xOff + o * B);
                FloatVector steps = zero.blend(u0, xv.compare(VectorOperators.GE, h0))
                        .add(zero.blend(v0, xv.compare(VectorOperators.LE, l0)));
                p0.fma(load(dy, dyOff + o * B), r0.add(steps)).intoMemorySegment(dx, dxOff + o * B, ORDER);
            }
            if (k + 1 == runs) break;
            int next = coefOff + (k + 1) * coefStride;
            FloatVector p1 = FloatVector.broadcast(SPECIES, coef[next]);
            FloatVector r1 = FloatVector.broadcast(SPECIES, coef[next + 1]);
            FloatVector h1 = FloatVector.broadcast(SPECIES, coef[next + 2]);
            FloatVector u1 = FloatVector.broadcast(SPECIES, coef[next + 3]);
            FloatVector l1 = FloatVector.broadcast(SPECIES, coef[next + 4]);
            FloatVector v1 = FloatVector.broadcast(SPECIES, coef[next + 5]);
            if (o < end && o < bound) {
                VectorMask<Float> later = LANE_INDEX.compare(VectorOperators.GE, (float) (end - o));
                FloatVector xv = load(x, xOff + o * B);
                FloatVector steps = zero.blend(u0.blend(u1, later), xv.compare(VectorOperators.GE, h0.blend(h1, later)))
                        .add(zero.blend(v0.blend(v1, later), xv.compare(VectorOperators.LE, l0.blend(l1, later))));
                p0.blend(p1, later).fma(load(dy, dyOff + o * B), r0.blend(r1, later).add(steps))
                        .intoMemorySegment(dx, dxOff + o * B, ORDER);
                o += L;
            }
            p0 = p1;
            r0 = r1;
            h0 = h1;
            u0 = u1;
            l0 = l1;
            v0 = v1;
        }
        // scalar tail of the flat range: gradApplySteps' operations
        for (long e = bound; e < total; e++) {
            int i = coefOff + (int) (e / len) * coefStride;
            float xv = x.get(F, xOff + e * B);
            float steps = (xv >= coef[i + 2] ? coef[i + 3] : 0f) + (xv <= coef[i + 4] ? coef[i + 5] : 0f);
            dx.set(F, dxOff + e * B, Math.fma(coef[i], dy.get(F, dyOff + e * B), coef[i + 1] + steps));
        }
    }

    @Override
    public void rowLinear(MemorySegment u, long uOff, MemorySegment v, long vOff, MemorySegment out, long outOff, int len,
                          float[] a, float[] b, int coefOff) {
        int bound = SPECIES.loopBound(len);
        int i = 0;
        if (b == null) {
            for (; i < bound; i += L) {
                FloatVector.fromArray(SPECIES, a, coefOff + i).mul(load(u, uOff + i * B))
                        .intoMemorySegment(out, outOff + i * B, ORDER);
            }
        } else {
            for (; i < bound; i += L) {
                FloatVector bv = FloatVector.fromArray(SPECIES, b, coefOff + i).mul(load(v, vOff + i * B));
                FloatVector.fromArray(SPECIES, a, coefOff + i).fma(load(u, uOff + i * B), bv)
                        .intoMemorySegment(out, outOff + i * B, ORDER);
            }
        }
        // scalar tail: the same operations as the lanes
        for (; i < len; i++) {
            float uv = u.get(F, uOff + i * B);
            float o = b == null ? a[coefOff + i] * uv
                    : Math.fma(a[coefOff + i], uv, b[coefOff + i] * v.get(F, vOff + i * B));
            out.set(F, outOff + i * B, o);
        }
    }

    // --- column primitives (BatchNorm with small S)

    private static FloatVector at(float[] a, int i) {
        return FloatVector.fromArray(SPECIES, a, i);
    }

    @Override
    public void columnMoments(MemorySegment x, long xOff, int rows, int len, long stride, float[] shift, int shiftOff,
                              float[] sum, float[] sumSq, int accOff) {
        // element-wise accumulation into the caller's columns: no lane reduction, so bits match the twin
        int bound = SPECIES.loopBound(len);
        for (int r = 0; r < rows; r++) {
            long base = xOff + r * stride;
            int i = 0;
            for (; i < bound; i += L) {
                FloatVector v = load(x, base + i * B).sub(at(shift, shiftOff + i));
                at(sum, accOff + i).add(v).intoArray(sum, accOff + i);
                v.fma(v, at(sumSq, accOff + i)).intoArray(sumSq, accOff + i);
            }
            // scalar tail: the same operations as the lanes
            for (; i < len; i++) {
                float v = x.get(F, base + i * B) - shift[shiftOff + i];
                sum[accOff + i] += v;
                sumSq[accOff + i] = Math.fma(v, v, sumSq[accOff + i]);
            }
        }
    }

    @Override
    public void columnCenteredSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff, int rows, int len,
                                   long stride, float[] center, int cOff, float[] sumDy, float[] sumDyXc, int accOff) {
        int bound = SPECIES.loopBound(len);
        for (int r = 0; r < rows; r++) {
            long db = dyOff + r * stride, xb = xOff + r * stride;
            int i = 0;
            for (; i < bound; i += L) {
                FloatVector g = load(dy, db + i * B);
                at(sumDy, accOff + i).add(g).intoArray(sumDy, accOff + i);
                g.fma(load(x, xb + i * B).sub(at(center, cOff + i)), at(sumDyXc, accOff + i)).intoArray(sumDyXc, accOff + i);
            }
            // scalar tail: the same operations as the lanes
            for (; i < len; i++) {
                float g = dy.get(F, db + i * B);
                sumDy[accOff + i] += g;
                sumDyXc[accOff + i] = Math.fma(g, x.get(F, xb + i * B) - center[cOff + i], sumDyXc[accOff + i]);
            }
        }
    }

    @Override
    public void columnAffine(MemorySegment x, long xOff, MemorySegment y, long yOff, int rows, int len, long stride,
                             float[] coef, int off, int cStride) {
        int bound = SPECIES.loopBound(len);
        for (int r = 0; r < rows; r++) {
            long xb = xOff + r * stride, yb = yOff + r * stride;
            int i = 0;
            for (; i < bound; i += L) {
                int k = off + i;
                load(x, xb + i * B).sub(at(coef, k)).fma(at(coef, k + cStride), at(coef, k + 2 * cStride))
                        .intoMemorySegment(y, yb + i * B, ORDER);
            }
            // scalar tail: the same fma as the vector lanes, so both give the same bits
            for (; i < len; i++) {
                int k = off + i;
                y.set(F, yb + i * B, Math.fma(x.get(F, xb + i * B) - coef[k], coef[k + cStride], coef[k + 2 * cStride]));
            }
        }
    }

    @Override
    public void columnGradApply(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                                int rows, int len, long stride, float[] coef, int off, int cStride) {
        int bound = SPECIES.loopBound(len);
        for (int r = 0; r < rows; r++) {
            long db = dyOff + r * stride, xb = xOff + r * stride, ob = dxOff + r * stride;
            int i = 0;
            for (; i < bound; i += L) {
                int k = off + i;
                FloatVector t = at(coef, k + cStride).fma(load(x, xb + i * B).sub(at(coef, k + 2 * cStride)),
                        at(coef, k + 3 * cStride));
                at(coef, k).fma(load(dy, db + i * B), t).intoMemorySegment(dx, ob + i * B, ORDER);
            }
            // scalar tail: the same operations as the lanes
            for (; i < len; i++) {
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
        FloatVector pv = FloatVector.broadcast(SPECIES, p);
        FloatVector qv = FloatVector.broadcast(SPECIES, q);
        FloatVector cv = FloatVector.broadcast(SPECIES, c);
        FloatVector rv = FloatVector.broadcast(SPECIES, r);
        FloatVector av = FloatVector.broadcast(SPECIES, a);
        int bound = SPECIES.loopBound(len);
        int i = 0;
        // dy and x read once for the column sums and dx; the column sums are element-wise (no lane
        // reduction), so their bits match columnGradSums and the twin
        if (sumDy != null) {
            for (; i < bound; i += L) {
                long o = i * B;
                FloatVector g = load(dy, dyOff + o);
                FloatVector xc = load(x, xOff + o).sub(cv);
                FloatVector.fromArray(SPECIES, sumDy, accOff + i).add(g).intoArray(sumDy, accOff + i);
                g.fma(xc.mul(av), FloatVector.fromArray(SPECIES, sumDyXhat, accOff + i)).intoArray(sumDyXhat, accOff + i);
                pv.mul(load(w, wOff + o)).fma(g, xc.fma(qv, rv)).intoMemorySegment(dx, dxOff + o, ORDER);
            }
        } else {
            // no Σdy (RMSNorm; LayerNorm without dbeta)
            for (; i < bound; i += L) {
                long o = i * B;
                FloatVector g = load(dy, dyOff + o);
                FloatVector xc = load(x, xOff + o).sub(cv);
                g.fma(xc.mul(av), FloatVector.fromArray(SPECIES, sumDyXhat, accOff + i)).intoArray(sumDyXhat, accOff + i);
                pv.mul(load(w, wOff + o)).fma(g, xc.fma(qv, rv)).intoMemorySegment(dx, dxOff + o, ORDER);
            }
        }
        // scalar tail: the same operations as the lanes
        for (; i < len; i++) {
            float g = dy.get(F, dyOff + i * B);
            float xc = x.get(F, xOff + i * B) - c;
            if (sumDy != null) sumDy[accOff + i] += g;
            sumDyXhat[accOff + i] = Math.fma(g, xc * a, sumDyXhat[accOff + i]);
            float pw = p * w.get(F, wOff + i * B);
            dx.set(F, dxOff + i * B, Math.fma(pw, g, Math.fma(xc, q, r)));
        }
    }
}
