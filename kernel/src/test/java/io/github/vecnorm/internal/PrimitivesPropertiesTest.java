package io.github.vecnorm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.constant;
import static org.quicktheories.generators.Generate.longRange;
import static org.quicktheories.generators.Generate.pick;
import static org.quicktheories.generators.Generate.range;

import io.github.vecnorm.ErrorModel;
import io.github.vecnorm.Reference;
import io.github.vecnorm.Tally;
import io.github.vecnorm.TestData;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.quicktheories.core.Gen;

/**
 * The four primitives on strided run layouts (runs, len, stride, byte offset), for both
 * implementations: the scalar twin always, the Vector API one when this JVM can load it. Element-wise
 * primitives must give the vector and scalar results bit for bit (same float operations per element)
 * and leave every float outside the runs untouched; reductions are checked against a double two-pass
 * computation with {@link ErrorModel}'s bounds.
 */
class PrimitivesPropertiesTest {

    /** A run layout and its data. */
    record Layout(int runs, int len, int gap, int off, int spreadExp, int offsetKind, long seed) {
        int stride() {
            return runs == 1 && gap == 0 ? 0 : len + gap;
        }

        int total() {
            return off + (runs - 1) * stride() + len + 3;
        }

        /** Float index of element i of run r. */
        int at(int r, int i) {
            return off + r * stride() + i;
        }

        int count() {
            return runs * len;
        }
    }

    static final List<Integer> LENS = List.of(1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65,
            127, 128, 129, 13, 207, 1021, 4099);

    static Gen<Layout> layouts() {
        Gen<Integer> len = range(0, LENS.size()).flatMap(i -> i < LENS.size() ? constant(LENS.get(i)) : range(1, 300));
        return len.flatMap(l -> range(1, 4).flatMap(runs -> pick(List.of(0, 0, 1, 3, 8, 13)).flatMap(gap ->
                range(0, 17).flatMap(off -> range(-3, 3).flatMap(sp -> range(0, 3).flatMap(ok ->
                        longRange(0, Long.MAX_VALUE / 2).map(seed -> new Layout(runs, l, gap, off, sp, ok, seed))))))));
    }

    /** Values of the runs (gaps hold NaN so that reading them would show). */
    static float[] values(Layout k, SplittableRandom rnd, boolean dyLike) {
        float[] v = new float[k.total()];
        java.util.Arrays.fill(v, Float.NaN);
        double spread = Math.pow(10, dyLike ? 0 : k.spreadExp());
        double offset = dyLike ? 0 : switch (k.offsetKind()) {
            case 0 -> 0;
            case 1 -> 5 * spread;
            case 2 -> 300 * spread;
            default -> -1e4 * spread;
        };
        boolean constant = !dyLike && rnd.nextInt(8) == 0;
        double c0 = offset + spread * rnd.nextGaussian();
        for (int r = 0; r < k.runs(); r++) {
            for (int i = 0; i < k.len(); i++) {
                v[k.at(r, i)] = (float) (constant ? c0 : offset + spread * rnd.nextGaussian());
            }
        }
        return v;
    }

    static List<Primitives> implementations() {
        List<Primitives> list = new ArrayList<>();
        list.add(Kernels.scalar());
        Primitives v = Kernels.vectorOrNull();
        if (v != null) list.add(v);
        return list;
    }

    static void countLayout(Tally t, Layout k) {
        t.count("examples", true);
        t.count("len<8", k.len() < 8);
        t.count("tail8", k.len() > 8 && k.len() % 8 != 0);
        t.count("tail16", k.len() > 16 && k.len() % 16 != 0);
        t.count("tail64", k.len() > 64 && k.len() % 64 != 0);
        t.count("strided", k.runs() > 1 && k.gap() > 0);
        t.count("unaligned", k.off() % 16 != 0);
    }

    static final String[] KEYS = {"examples", "len<8", "tail8", "tail16", "tail64", "strided", "unaligned"};

    /**
     * affine: y = fma(fl(x - c), a, b) per element, so |y - ((x - c)*a + b)| <= u*|x - c|*|a| + u*|y|;
     * vector and scalar identical; nothing outside the runs written.
     */
    @Test
    void affine() {
        Tally t = new Tally("primitive affine", KEYS);
        qt().withExamples(500).forAll(layouts()).checkAssert(k -> {
            countLayout(t, k);
            SplittableRandom rnd = new SplittableRandom(k.seed());
            float[] x = values(k, rnd, false);
            float c = x[k.at(0, 0)] + (float) rnd.nextGaussian(), a = (float) rnd.nextDouble(-3, 3), b = (float) rnd.nextGaussian();
            float[] first = null;
            for (Primitives p : implementations()) {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment xs = TestData.copyOf(arena, x), ys = TestData.filled(arena, x.length, -7f, 0);
                    p.affine(xs, (long) k.off() * 4, ys, (long) k.off() * 4, k.runs(), k.len(), (long) k.stride() * 4, c, a, b);
                    float[] y = TestData.read(ys);
                    for (int j = 0; j < y.length; j++) {
                        if (Float.isNaN(x[j])) {
                            assertEquals(-7f, y[j], p.name() + ": wrote outside the runs at #" + j + " of " + k);
                            continue;
                        }
                        double exact = ((double) x[j] - c) * a + b;
                        t.close(p.name() + " affine", j, y[j], exact,
                                ErrorModel.U * (Math.abs(((double) x[j] - c) * a) + Math.abs(exact)) * (1 + 4 * ErrorModel.U), k);
                    }
                    if (first != null) assertTrue(java.util.Arrays.equals(first, y), "vector and scalar affine differ: " + k);
                    first = y;
                }
            }
        });
        t.report();
    }

    /**
     * affineRuns: consecutive runs, each with its own (c, a, b) from a coefficient array, give bit for bit
     * what affine gives run by run (so its bounds are affine's), in place or not, with nothing written past
     * the runs; every implementation.
     */
    @Test
    void affineRunsIsAffineRunByRun() {
        Tally t = new Tally("primitive affineRuns", "examples", "inPlace", "len<16", "len%8!=0");
        qt().withExamples(300).forAll(range(1, 9), range(1, 70), range(3, 6), longRange(0, Long.MAX_VALUE))
                .checkAssert((runs, len, stride, seed) -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    boolean inPlace = rnd.nextBoolean();
                    int off = rnd.nextInt(4), total = off + runs * len + 5, coefOff = rnd.nextInt(3);
                    float[] x = new float[total], coef = new float[coefOff + runs * stride];
                    for (int i = 0; i < total; i++) x[i] = (float) (50 * rnd.nextGaussian());
                    for (int i = 0; i < coef.length; i++) coef[i] = (float) (10 * rnd.nextGaussian());
                    t.count("examples", true);
                    t.count("inPlace", inPlace);
                    t.count("len<16", len < 16);
                    t.count("len%8!=0", len % 8 != 0);
                    for (Primitives p : implementations()) {
                        try (Arena arena = Arena.ofConfined()) {
                            MemorySegment xs = TestData.copyOf(arena, x);
                            MemorySegment ys = inPlace ? xs : TestData.filled(arena, total, -7f, 0);
                            MemorySegment want = TestData.copyOf(arena, x), wantY = inPlace ? want : TestData.filled(arena, total, -7f, 0);
                            p.affineRuns(xs, off * 4L, ys, off * 4L, runs, len, coef, coefOff, stride);
                            for (int r = 0; r < runs; r++) {
                                int k = coefOff + r * stride;
                                long o = (off + (long) r * len) * 4;
                                p.affine(want, o, wantY, o, 1, len, 0, coef[k], coef[k + 1], coef[k + 2]);
                            }
                            assertEquals(-1, ys.mismatch(wantY), p.name() + ": affineRuns differs from affine run by run,"
                                    + " runs " + runs + " len " + len + " stride " + stride + " in place " + inPlace);
                        }
                    }
                });
        t.report();
    }

    /**
     * gradApplyRuns: consecutive runs, each with its own (p, q, c, r) from a coefficient array, give bit for bit
     * what gradApply gives run by run, in place (dx = dy) or not, with nothing written past the runs; every
     * implementation.
     */
    @Test
    void gradApplyRunsIsGradApplyRunByRun() {
        Tally t = new Tally("primitive gradApplyRuns", "examples", "inPlace", "len<16", "len%8!=0");
        qt().withExamples(300).forAll(range(1, 9), range(1, 70), range(4, 7), longRange(0, Long.MAX_VALUE))
                .checkAssert((runs, len, stride, seed) -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    boolean inPlace = rnd.nextBoolean();
                    int off = rnd.nextInt(4), total = off + runs * len + 5, coefOff = rnd.nextInt(3);
                    float[] x = new float[total], dy = new float[total], coef = new float[coefOff + runs * stride];
                    for (int i = 0; i < total; i++) {
                        x[i] = (float) (50 * rnd.nextGaussian());
                        dy[i] = (float) rnd.nextGaussian();
                    }
                    for (int i = 0; i < coef.length; i++) coef[i] = (float) (10 * rnd.nextGaussian());
                    t.count("examples", true);
                    t.count("inPlace", inPlace);
                    t.count("len<16", len < 16);
                    t.count("len%8!=0", len % 8 != 0);
                    for (Primitives p : implementations()) {
                        try (Arena arena = Arena.ofConfined()) {
                            MemorySegment xs = TestData.copyOf(arena, x), dys = TestData.copyOf(arena, dy);
                            MemorySegment dxs = inPlace ? dys : TestData.filled(arena, total, -7f, 0);
                            MemorySegment wantDy = TestData.copyOf(arena, dy);
                            MemorySegment want = inPlace ? wantDy : TestData.filled(arena, total, -7f, 0);
                            long o = off * 4L;
                            p.gradApplyRuns(dys, o, xs, o, dxs, o, runs, len, coef, coefOff, stride);
                            for (int r = 0; r < runs; r++) {
                                int k = coefOff + r * stride;
                                long ro = (off + (long) r * len) * 4;
                                p.gradApply(wantDy, ro, xs, ro, want, ro, 1, len, 0, coef[k], coef[k + 1], coef[k + 2],
                                        coef[k + 3]);
                            }
                            assertEquals(-1, dxs.mismatch(want), p.name() + ": gradApplyRuns differs from gradApply run"
                                    + " by run, runs " + runs + " len " + len + " stride " + stride + " in place " + inPlace);
                        }
                    }
                });
        t.report();
    }

    /**
     * centredSumsRuns and gradSumsRuns: each run's sums over the samples, added into its slots, are
     * <ul>
     *   <li>within the sums' bounds of the double reference (ErrorModel with the lane chains the contract
     *   states, samples * ceil(len / L): Σ(x - c) and Σdy*(x - c) carry the float subtraction's u too, Σ(x - c)²
     *   its 3u);</li>
     *   <li>the same bits whatever [from, to) holds the run (the call cut in two at a random run), which the
     *   kernels' thread-count determinism rests on;</li>
     *   <li>the same bits when another run's values change, even to an infinity or a NaN.</li>
     * </ul>
     * Every implementation.
     */
    @Test
    void sumsRunsAreEachRunsOwnWhateverTheSplit() {
        Primitives vector = Kernels.vectorOrNull();
        // manyRuns only matters (and only happens) where the vector implementation runs
        Tally t = vector == null
                ? new Tally("primitive centredSumsRuns/gradSumsRuns", "examples", "len<16", "16<=len<64", "split", "poisoned",
                        "samples>16")
                : new Tally("primitive centredSumsRuns/gradSumsRuns", "examples", "len<16", "16<=len<64", "split", "poisoned",
                        "samples>16", "manyRuns");
        // past this many runs a sample's runs are reduced run by run, not across the samples (VectorPrimitives'
        // ACROSS_SAMPLES_MAX_LANES of 8192 lanes)
        int manyRuns = 8192 / (vector == null ? 1 : vector.lanes()) + 1;
        qt().withExamples(300).forAll(range(1, 5), range(1, 9), range(1, 70), longRange(0, Long.MAX_VALUE))
                .checkAssert((fewSamples, fewRuns, len, seed) -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    boolean many = vector != null && rnd.nextInt(6) == 0;
                    int runs = many ? manyRuns + rnd.nextInt(3) : fewRuns;
                    if (vector != null) t.count("manyRuns", many);
                    // now and then more than 16 samples: the lanes kept across samples are reduced every 16
                    int samples = !many && rnd.nextInt(6) == 0 ? 17 + rnd.nextInt(4) : fewSamples;
                    t.count("samples>16", samples > 16);
                    // tight buffers (a read past the last run, or past the last centre, throws), centres at
                    // an offset and a stride, sums into slots from an offset
                    int gap = rnd.nextInt(3), sample = runs * len + gap, off = rnd.nextInt(4);
                    int total = off + (samples - 1) * sample + runs * len;
                    int cOff = rnd.nextInt(3), cStride = 1 + rnd.nextInt(2), outOff = rnd.nextInt(3);
                    float[] x = new float[total], dy = new float[total], centres = new float[cOff + (runs - 1) * cStride + 1];
                    double offset = rnd.nextBoolean() ? 0 : 1000;
                    for (int i = 0; i < total; i++) {
                        x[i] = (float) (offset + 5 * rnd.nextGaussian());
                        dy[i] = (float) rnd.nextGaussian();
                    }
                    for (int r = 0; r < centres.length; r++) centres[r] = (float) (offset + rnd.nextGaussian());
                    int cut = rnd.nextInt(runs + 1), poisoned = rnd.nextInt(runs);
                    t.count("examples", true);
                    t.count("len<16", len < 16);
                    t.count("16<=len<64", len >= 16 && len < 64);
                    t.count("split", cut > 0 && cut < runs);
                    for (Primitives p : implementations()) {
                        ErrorModel model = ErrorModel.of(p);
                        long k = Math.min(samples, 16) * ((len + p.lanes() - 1) / p.lanes());
                        Layout2 lay = new Layout2(off, samples, sample, runs, len, cOff, cStride, outOff);
                        double[][] whole = sums(p, x, dy, centres, lay, 0, runs);
                        double[][] cutA = sums(p, x, dy, centres, lay, 0, cut);
                        double[][] cutB = sums(p, x, dy, centres, lay, cut, runs);
                        for (int r = 0; r < runs; r++) {
                            double[][] part = r < cut ? cutA : cutB;
                            for (int j = 0; j < 4; j++) {
                                assertEquals(Double.doubleToRawLongBits(whole[j][r]), Double.doubleToRawLongBits(part[j][r]),
                                        p.name() + ": sum " + j + " of run " + r + " depends on the split at " + cut
                                                + " (samples " + samples + " runs " + runs + " len " + len + ")");
                            }
                            Reference.Sum d = new Reference.Sum(), d2 = new Reference.Sum(), absD = new Reference.Sum();
                            Reference.Sum g = new Reference.Sum(), gd = new Reference.Sum(), absG = new Reference.Sum();
                            Reference.Sum absGd = new Reference.Sum();
                            for (int i = 0; i < samples; i++) {
                                for (int e = 0; e < len; e++) {
                                    int at = off + i * sample + r * len + e;
                                    double v = (double) x[at] - centres[cOff + r * cStride];
                                    d.add(v);
                                    d2.add(v * v);
                                    absD.add(Math.abs(v));
                                    g.add(dy[at]);
                                    absG.add(Math.abs(dy[at]));
                                    gd.add(dy[at] * v);
                                    absGd.add(Math.abs(dy[at] * v));
                                }
                            }
                            ErrorModel.SumBounds sb = model.sumsOfChain(k, absD.value(), d2.value());
                            ErrorModel.SumBounds gb = model.sumsOfChain(k, absG.value(), absGd.value());
                            String what = p.name() + " run " + r;
                            t.close(what + " Σd", r, whole[0][r] - 1.5, d.value(), sb.sumDy() + ErrorModel.U * absD.value() + 0x1p-50, seed);
                            t.close(what + " Σd²", r, whole[1][r] + 2.25, d2.value(), sb.sumDyXc() + 3 * ErrorModel.U * d2.value() + 0x1p-50, seed);
                            t.close(what + " Σdy", r, whole[2][r] - 1.5, g.value(), gb.sumDy() + 0x1p-50, seed);
                            t.close(what + " Σdy·d", r, whole[3][r] + 2.25, gd.value(), gb.sumDyXc() + 0x1p-50, seed);
                        }
                        // another run's values, even non-finite, leave a run's sums alone
                        float[] px = x.clone(), pdy = dy.clone();
                        float bad = rnd.nextBoolean() ? Float.POSITIVE_INFINITY : Float.NaN;
                        for (int i = 0; i < samples; i++) {
                            int at = off + i * sample + poisoned * len + rnd.nextInt(len);
                            px[at] = bad;
                            pdy[at] = rnd.nextBoolean() ? bad : pdy[at];
                        }
                        t.count("poisoned", runs > 1);
                        double[][] after = sums(p, px, pdy, centres, lay, 0, runs);
                        for (int r = 0; r < runs; r++) {
                            if (r == poisoned) continue;
                            for (int j = 0; j < 4; j++) {
                                assertEquals(Double.doubleToRawLongBits(whole[j][r]), Double.doubleToRawLongBits(after[j][r]),
                                        p.name() + ": sum " + j + " of run " + r + " changed with run " + poisoned
                                                + "'s values (samples " + samples + " runs " + runs + " len " + len + ")");
                            }
                        }
                    }
                });
        t.report();
    }

    /** Where the *SumsRuns test's tensors, centres and sums lie. */
    private record Layout2(int off, int samples, int sample, int runs, int len, int cOff, int cStride, int outOff) {
    }

    /**
     * {Σd, Σd², Σdy, Σdy·d} by run of runs [from, to) by centredSumsRuns and gradSumsRuns, the slots starting at
     * 1.5 / -2.25; asserts that no slot outside [from, to) was written.
     */
    private static double[][] sums(Primitives p, float[] x, float[] dy, float[] centres, Layout2 k, int from, int to) {
        int slots = k.outOff() + k.runs() + 2;
        double[][] raw = new double[4][slots];
        for (int r = 0; r < slots; r++) {
            raw[0][r] = raw[2][r] = 1.5;
            raw[1][r] = raw[3][r] = -2.25;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment xs = TestData.copyOf(arena, x), dys = TestData.copyOf(arena, dy);
            MemorySegment cs = TestData.copyOf(arena, centres);
            long o = k.off() * 4L, stride = k.sample() * 4L;
            p.centredSumsRuns(xs, o, k.samples(), stride, k.runs(), k.len(), from, to, cs, k.cOff() * 4L,
                    k.cStride() * 4L, raw[0], raw[1], k.outOff());
            p.gradSumsRuns(dys, o, xs, o, k.samples(), stride, k.runs(), k.len(), from, to, cs, k.cOff() * 4L,
                    k.cStride() * 4L, raw[2], raw[3], k.outOff());
        }
        double[][] out = new double[4][k.runs()];
        for (int slot = 0; slot < slots; slot++) {
            int r = slot - k.outOff();
            for (int j = 0; j < 4; j++) {
                if (r >= from && r < to) {
                    out[j][r] = raw[j][slot];
                } else {
                    assertEquals(j % 2 == 0 ? 1.5 : -2.25, raw[j][slot], p.name() + ": sum " + j + " wrote slot " + slot
                            + " outside runs [" + from + ", " + to + ") from slot " + k.outOff());
                }
            }
        }
        return out;
    }

    /**
     * gradApply: dx = fma(p, dy, fma(q, fl(x - c), r)): |dx - exact| <= u*|p*dy| ... as ErrorModel.dx
     * with exact coefficients: u*(|q*(x - c)| (subtraction) + |q*(x - c) + r| (inner fma) + |dx| (outer)).
     */
    @Test
    void gradApply() {
        Tally t = new Tally("primitive gradApply", KEYS);
        qt().withExamples(500).forAll(layouts()).checkAssert(k -> {
            countLayout(t, k);
            SplittableRandom rnd = new SplittableRandom(k.seed());
            float[] x = values(k, rnd, false), dy = values(k, rnd, true);
            float c = x[k.at(0, 0)], pp = (float) rnd.nextDouble(-3, 3), q = (float) rnd.nextGaussian(), r = (float) rnd.nextGaussian();
            float[] first = null;
            for (Primitives p : implementations()) {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment xs = TestData.copyOf(arena, x), dys = TestData.copyOf(arena, dy);
                    MemorySegment dxs = TestData.filled(arena, x.length, -7f, 0);
                    long o = (long) k.off() * 4;
                    p.gradApply(dys, o, xs, o, dxs, o, k.runs(), k.len(), (long) k.stride() * 4, pp, q, c, r);
                    float[] dx = TestData.read(dxs);
                    for (int j = 0; j < dx.length; j++) {
                        if (Float.isNaN(x[j])) {
                            assertEquals(-7f, dx[j], p.name() + ": wrote outside the runs at #" + j + " of " + k);
                            continue;
                        }
                        double qx = q * ((double) x[j] - c);
                        double exact = pp * (double) dy[j] + qx + r;
                        double tol = ErrorModel.U * (2 * Math.abs(qx) + Math.abs(r) + Math.abs(exact)) * (1 + 4 * ErrorModel.U);
                        t.close(p.name() + " gradApply", j, dx[j], exact, tol, k);
                    }
                    if (first != null) assertTrue(java.util.Arrays.equals(first, dx), "vector and scalar gradApply differ: " + k);
                    first = dx;
                }
            }
        });
        t.report();
    }

    /**
     * moments: count exact; mean and M2 within ErrorModel.stats, with the bound on the shifted values
     * max|x - shift| in place of the range (the derivation uses R only as that bound).
     */
    @Test
    void moments() {
        Tally t = new Tally("primitive moments", KEYS);
        qt().withExamples(500).forAll(layouts()).checkAssert(k -> {
            countLayout(t, k);
            SplittableRandom rnd = new SplittableRandom(k.seed());
            float[] x = values(k, rnd, false);
            double[] flat = flat(k, x);
            Reference.Stats st = Reference.stats(1, 1, flat.length, flat, 1.0);
            // shift at the first value (as BatchNorm does), or elsewhere near the data
            float shift = rnd.nextBoolean() ? x[k.at(0, 0)] : (float) (st.mean()[0] + Math.sqrt(st.var()[0]) * rnd.nextGaussian());
            double bound = 0;
            for (double v : flat) bound = Math.max(bound, Math.abs(v - shift));
            bound = Math.max(bound, st.range()[0]);
            for (Primitives p : implementations()) {
                try (Arena arena = Arena.ofConfined()) {
                    Moments acc = new Moments();
                    p.moments(TestData.copyOf(arena, x), (long) k.off() * 4, k.runs(), k.len(), (long) k.stride() * 4, shift, acc);
                    assertEquals(k.count(), acc.count(), p.name() + " count of " + k);
                    ErrorModel.StatBounds b = ErrorModel.of(p).stats(k.count(), bound, st.var()[0], 1.0);
                    t.close(p.name() + " mean", 0, acc.mean(), st.mean()[0], b.mean() + ErrorModel.REF * Math.abs(st.mean()[0]), k);
                    t.close(p.name() + " M2", 0, acc.m2(), st.var()[0] * k.count(), b.var() * k.count()
                            + ErrorModel.REF * st.var()[0] * k.count(), k);
                }
            }
        });
        t.report();
    }

    /** gradSums adds Σdy and Σdy*(x - c) to what acc holds, within ErrorModel.sums. */
    @Test
    void gradSums() {
        Tally t = new Tally("primitive gradSums", KEYS);
        qt().withExamples(500).forAll(layouts()).checkAssert(k -> {
            countLayout(t, k);
            SplittableRandom rnd = new SplittableRandom(k.seed());
            float[] x = values(k, rnd, false), dy = values(k, rnd, true);
            float c = x[k.at(0, 0)];
            double[] fx = flat(k, x), fdy = flat(k, dy);
            Reference.Sum a = new Reference.Sum(), b = new Reference.Sum(), absA = new Reference.Sum(), absB = new Reference.Sum();
            for (int j = 0; j < fx.length; j++) {
                a.add(fdy[j]);
                absA.add(Math.abs(fdy[j]));
                b.add(fdy[j] * (fx[j] - c));
                absB.add(Math.abs(fdy[j] * (fx[j] - c)));
            }
            for (Primitives p : implementations()) {
                try (Arena arena = Arena.ofConfined()) {
                    GradSums acc = new GradSums();
                    acc.sumDy = 1.5;
                    acc.sumDyXc = -2.25;
                    long o = (long) k.off() * 4;
                    p.gradSums(TestData.copyOf(arena, dy), o, TestData.copyOf(arena, x), o, k.runs(), k.len(),
                            (long) k.stride() * 4, c, acc);
                    ErrorModel.SumBounds sb = ErrorModel.of(p).sums(k.count(), absA.value(), absB.value());
                    t.close(p.name() + " sumDy", 0, acc.sumDy - 1.5, a.value(), sb.sumDy() + 0x1p-50, k);
                    t.close(p.name() + " sumDyXc", 0, acc.sumDyXc + 2.25, b.value(), sb.sumDyXc() + 0x1p-50, k);
                }
            }
        });
        t.report();
    }

    /** The run elements, in order, as doubles. */
    static double[] flat(Layout k, float[] v) {
        double[] f = new double[k.count()];
        for (int r = 0; r < k.runs(); r++) {
            for (int i = 0; i < k.len(); i++) f[r * k.len() + i] = v[k.at(r, i)];
        }
        return f;
    }
}
