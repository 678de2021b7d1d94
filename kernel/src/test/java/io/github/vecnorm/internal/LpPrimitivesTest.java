package io.github.vecnorm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.longRange;
import static org.quicktheories.generators.Generate.pick;
import static org.quicktheories.generators.Generate.range;

import io.github.vecnorm.ErrorModel;
import io.github.vecnorm.TestData;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The WeightNorm / L_p primitives (sumAbsDiff, minMax, countSteps, gradApplySteps, rowLinear) of every
 * implementation loadable in this JVM, against double references on strided runs of awkward lengths:
 * minMax (as values: a zero's sign is open) and countSteps exactly; gradApplySteps and rowLinear bit for bit against the same float
 * operations written out here (fma(p, dy, r + steps), fma(a, u, b*v)); sumAbsDiff within
 * {@code (2u + uA*(k + L + 4)) * Σ|x - c - c2|}, k = values per lane (worst case, non-negative terms).
 */
class LpPrimitivesTest {

    static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    static final List<Integer> LENS = List.of(1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 1021);

    static List<Primitives> impls() {
        List<Primitives> l = new ArrayList<>();
        l.add(Kernels.scalar());
        Primitives v = Kernels.vectorOrNull();
        if (v != null) l.add(v);
        return l;
    }

    @Test
    void primitivesMatchReferences() {
        List<Primitives> impls = impls();
        qt().withExamples(400).withShrinkCycles(30)
                .forAll(pick(LENS), range(1, 4), range(0, 9), longRange(0, Long.MAX_VALUE / 2))
                .checkAssert((len, runs, gap, seed) -> {
                    for (Primitives p : impls) check(p, len, runs, gap, seed);
                });
    }

    static void check(Primitives p, int len, int runs, int gap, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        long strideF = len + gap, total = strideF * (runs - 1) + len;
        String where = p.name() + " len " + len + " runs " + runs + " gap " + gap + " seed " + seed;
        try (Arena arena = Arena.ofConfined()) {
            int mis = (int) (seed % 7);
            MemorySegment x = TestData.allocate(arena, total, mis), dy = TestData.allocate(arena, total, mis);
            double offset = rnd.nextBoolean() ? 0 : 1e4 * rnd.nextGaussian();
            for (long i = 0; i < total; i++) {
                // a coarse grid: ties and values equal to the centre occur
                x.set(F, i * 4, (float) (offset + (rnd.nextInt(5) == 0 ? rnd.nextInt(3) : rnd.nextGaussian())));
                dy.set(F, i * 4, (float) rnd.nextGaussian());
            }
            long off = 0, stride = strideF * 4;
            float c = x.get(F, 0);
            double centre = offset + 0.3;
            float cHi = (float) centre, cLo = (float) (centre - cHi);

            // references over the runs
            double sumAbs = 0, sumAbsAbs = 0;
            float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY;
            List<Float> values = new ArrayList<>();
            for (int r = 0; r < runs; r++) {
                for (int i = 0; i < len; i++) {
                    float v = x.get(F, off + r * stride + i * 4L);
                    values.add(v);
                    sumAbs += Math.abs(v - centre);
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
            sumAbsAbs = sumAbs;

            double got = p.sumAbsDiff(x, off, runs, len, stride, cHi, cLo);
            ErrorModel model = ErrorModel.of(p);
            long k = ((long) len * runs + p.lanes() - 1) / p.lanes();
            double tol = (2 * ErrorModel.U + model.uAcc * (k + p.lanes() + 4)) * sumAbsAbs
                    + 3 * ErrorModel.U * ErrorModel.U * Math.abs(centre) * len * runs + ErrorModel.REF * sumAbsAbs;
            assertTrue(Math.abs(got - sumAbs) <= tol, "sumAbsDiff " + got + " vs " + sumAbs + " tol " + tol + " " + where);

            float[] mm = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
            p.minMax(x, off, runs, len, stride, mm);
            // as values: the contract leaves a zero's sign open
            assertEquals(lo, mm[0], 0f, "min " + where);
            assertEquals(hi, mm[1], 0f, "max " + where);

            long[] counts = new long[2];
            p.countSteps(x, off, runs, len, stride, hi, lo, counts);
            float hiF = hi, loF = lo;
            long nHi = values.stream().filter(v -> v >= hiF).count(), nLo = values.stream().filter(v -> v <= loF).count();
            assertArrayEquals(new long[] {nHi, nLo}, counts, "countSteps at the extremes " + where);
            long[] signs = new long[2];
            p.countSteps(x, off, runs, len, stride, c, c, signs);
            long pos = values.stream().filter(v -> v > c).count(), neg = values.stream().filter(v -> v < c).count();
            assertEquals(pos - neg, signs[0] - signs[1], "Σ sign(x - c) " + where);

            // gradApplySteps: sign form (hi = lo = c, u = q, v = -q) and tie form
            float pp = (float) rnd.nextGaussian(), rr = (float) rnd.nextGaussian(), q = (float) rnd.nextGaussian();
            MemorySegment dx = TestData.allocate(arena, total, (mis + 1) % 8);
            p.gradApplySteps(dy, off, x, off, dx, off, runs, len, stride, pp, rr, c, q, c, -q);
            p.gradApplySteps(dy, off, x, off, dy.asSlice(0), off, 0, len, stride, pp, rr, c, q, c, -q); // zero runs: nothing
            for (int r = 0; r < runs; r++) {
                for (int i = 0; i < len; i++) {
                    long o = off + r * stride + i * 4L;
                    float xv = x.get(F, o);
                    float sgn = xv > c ? q : xv < c ? -q : 0f;
                    float expected = Math.fma(pp, dy.get(F, o), rr + sgn);
                    assertEquals(expected, dx.get(F, o), "gradApplySteps (sign) at run " + r + " index " + i + " " + where);
                }
            }
            float u = (float) rnd.nextGaussian(), vv = (float) rnd.nextGaussian();
            p.gradApplySteps(dy, off, x, off, dx, off, runs, len, stride, pp, rr, hi, u, lo, vv);
            for (int r = 0; r < runs; r++) {
                for (int i = 0; i < len; i++) {
                    long o = off + r * stride + i * 4L;
                    float xv = x.get(F, o);
                    float steps = (xv == hi ? u : 0f) + (xv == lo ? vv : 0f);
                    assertEquals(Math.fma(pp, dy.get(F, o), rr + steps), dx.get(F, o),
                            "gradApplySteps (ties) at run " + r + " index " + i + " " + where);
                }
            }

            // rowLinear over the first run, with and without b, and in place
            float[] a = new float[len + 3], b = new float[len + 3];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) rnd.nextGaussian();
                b[i] = (float) rnd.nextGaussian();
            }
            MemorySegment out = TestData.allocate(arena, len, (mis + 2) % 8);
            p.rowLinear(dy, off, x, off, out, 0, len, a, b, 3);
            for (int i = 0; i < len; i++) {
                float expected = Math.fma(a[3 + i], dy.get(F, i * 4L), b[3 + i] * x.get(F, i * 4L));
                assertEquals(expected, out.get(F, i * 4L), "rowLinear at " + i + " " + where);
            }
            p.rowLinear(x, off, null, 0, out, 0, len, a, null, 1);
            for (int i = 0; i < len; i++) {
                assertEquals(a[1 + i] * x.get(F, i * 4L), out.get(F, i * 4L), "rowLinear (b null) at " + i + " " + where);
            }
            MemorySegment copy = TestData.allocate(arena, len, 0);
            MemorySegment.copy(dy, 0, copy, 0, len * 4L);
            p.rowLinear(copy, 0, x, off, copy, 0, len, a, b, 0);
            for (int i = 0; i < len; i++) {
                float expected = Math.fma(a[i], dy.get(F, i * 4L), b[i] * x.get(F, i * 4L));
                assertEquals(expected, copy.get(F, i * 4L), "rowLinear in place at " + i + " " + where);
            }
        }
    }

    @Test
    void minMaxOfSignedZerosIsZero() {
        for (Primitives p : impls()) {
            try (Arena arena = Arena.ofConfined()) {
                // lanes and tail see +0 and -0 in both orders; the extremes are 0 and 1, a zero of either sign
                MemorySegment x = TestData.filled(arena, 41, 1f, 0);
                for (int i = 0; i < 41; i += 2) x.set(F, i * 4L, (i / 2) % 3 == 0 ? -0f : 0f);
                float[] mm = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
                p.minMax(x, 0, 1, 41, 0, mm);
                assertTrue(mm[0] == 0f && mm[1] == 1f, p.name() + ": " + mm[0] + ", " + mm[1]);
                long[] counts = new long[2];
                p.countSteps(x, 0, 1, 41, 0, mm[1], mm[0], counts);
                assertArrayEquals(new long[] {20, 21}, counts, p.name() + ": ties of the extremes");
            }
        }
    }

    /**
     * minMax merges into what it is given: extremes carried from an earlier call (finite, infinite, or NaN
     * when the earlier runs held one) come out as one call over all the values would give them.
     */
    @Test
    void minMaxMergesCarriedExtremes() {
        for (Primitives p : impls()) {
            try (Arena arena = Arena.ofConfined()) {
                SplittableRandom rnd = new SplittableRandom(3);
                int len = 3 * p.lanes() + 5;
                MemorySegment x = TestData.filled(arena, 2 * len, 0f, 0);
                for (int i = 0; i < 2 * len; i++) x.set(F, i * 4L, (float) rnd.nextGaussian());
                float[] whole = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
                p.minMax(x, 0, 1, 2 * len, 0, whole);
                float[][] carried = {{Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}, {-0.5f, 0.5f},
                        {Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY}, {Float.NaN, Float.NaN}};
                for (float[] start : carried) {
                    float[] mm = start.clone();
                    p.minMax(x, 0, 1, len, 0, mm);
                    p.minMax(x, len * 4L, 1, len, 0, mm);
                    float lo = Math.min(start[0], whole[0]), hi = Math.max(start[1], whole[1]);
                    assertArrayEquals(new float[] {lo, hi}, mm, p.name() + " from " + start[0] + ", " + start[1]);
                }
                // a NaN in the first call's runs only
                x.set(F, 7 * 4L, Float.NaN);
                float[] mm = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
                p.minMax(x, 0, 1, len, 0, mm);
                p.minMax(x, len * 4L, 1, len, 0, mm);
                assertTrue(Float.isNaN(mm[0]) && Float.isNaN(mm[1]), p.name() + ": NaN in the first call");
            }
        }
    }

    @Test
    void minMaxOfInfinities() {
        for (Primitives p : impls()) {
            try (Arena arena = Arena.ofConfined()) {
                for (int at : new int[] {0, 5, 16, 40}) {
                    // +inf alone, then with -inf elsewhere (in the lanes or the tail)
                    MemorySegment x = TestData.filled(arena, 41, 2f, 0);
                    x.set(F, 7 * 4L, -3f);
                    x.set(F, at * 4L, Float.POSITIVE_INFINITY);
                    float[] mm = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
                    p.minMax(x, 0, 1, 41, 0, mm);
                    assertArrayEquals(new float[] {-3f, Float.POSITIVE_INFINITY}, mm, p.name() + " +inf at " + at);
                    x.set(F, (at + 19) % 41 * 4L, Float.NEGATIVE_INFINITY);
                    mm = new float[] {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
                    p.minMax(x, 0, 1, 41, 0, mm);
                    assertArrayEquals(new float[] {Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY}, mm,
                            p.name() + " -inf and +inf at " + at);
                }
            }
        }
    }

    @Test
    void minMaxPropagatesNan() {
        for (Primitives p : impls()) {
            try (Arena arena = Arena.ofConfined()) {
                for (int at : new int[] {0, 5, 16, 40}) {
                    MemorySegment x = TestData.filled(arena, 41, 1f, 0);
                    x.set(F, at * 4L, Float.NaN);
                    float[] mm = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
                    p.minMax(x, 0, 1, 41, 0, mm);
                    assertTrue(Float.isNaN(mm[0]) && Float.isNaN(mm[1]), p.name() + " NaN at " + at);
                    long[] counts = new long[2];
                    p.countSteps(x, 0, 1, 41, 0, 1f, 1f, counts);
                    assertArrayEquals(new long[] {40, 40}, counts, p.name() + ": NaN counts in neither");
                }
            }
        }
    }
}
