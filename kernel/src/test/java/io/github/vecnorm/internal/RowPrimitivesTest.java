package io.github.vecnorm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.frequency;
import static org.quicktheories.generators.Generate.longRange;
import static org.quicktheories.generators.Generate.pick;
import static org.quicktheories.generators.Generate.range;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.quicktheories.api.Pair;
import org.quicktheories.core.Gen;

/**
 * The row primitives (LayerNorm, RMSNorm): element-wise ones and the column accumulation are the same
 * float operations in both implementations, so they must agree bit for bit; the reductions (Σx², the
 * weighted gradient sums) must be within their derived bound of an exact double sum, in whichever
 * implementation runs here and in the scalar twin.
 */
class RowPrimitivesTest {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final double U = 0x1p-24;

    /** Lengths straddling 8/16 lanes and their 2x/4x unrolls, primes; sometimes anything up to 700. */
    static Gen<Integer> lengths() {
        Gen<Integer> awkward = pick(List.of(1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 127, 129, 207, 1021));
        return frequency(List.of(Pair.of(70, awkward), Pair.of(30, range(1, 700))));
    }

    static MemorySegment random(Arena a, int n, int misalign, SplittableRandom rnd, double lo, double hi) {
        MemorySegment s = a.allocate((n + 16L) * Float.BYTES, 64).asSlice((long) misalign * Float.BYTES, (long) n * Float.BYTES);
        for (int i = 0; i < n; i++) s.setAtIndex(F, i, (float) rnd.nextDouble(lo, hi));
        return s;
    }

    static int[] bits(MemorySegment s) {
        float[] v = s.toArray(F);
        int[] b = new int[v.length];
        for (int i = 0; i < v.length; i++) b[i] = Float.floatToRawIntBits(v[i]);
        return b;
    }

    static int[] bits(float[] v) {
        int[] b = new int[v.length];
        for (int i = 0; i < v.length; i++) b[i] = Float.floatToRawIntBits(v[i]);
        return b;
    }

    @Test
    void elementwiseRowPrimitivesAgreeBitForBit() {
        Primitives vector = Kernels.vectorOrNull();
        Assumptions.assumeTrue(vector != null, "the Vector API is not available in this JVM");
        Primitives scalar = Kernels.scalar();
        qt().withExamples(300).forAll(lengths(), longRange(0, Long.MAX_VALUE / 2), range(0, 3)).checkAssert((len, seed, mask) -> {
            SplittableRandom rnd = new SplittableRandom(seed);
            int mis = (int) (seed % 7);
            String ctx = "len=" + len + " seed=" + seed + " mask=" + mask;
            try (Arena a = Arena.ofConfined()) {
                MemorySegment x = random(a, len, mis, rnd, 90, 110), dy = random(a, len, 0, rnd, -1, 1);
                MemorySegment w = (mask & 1) != 0 ? random(a, len + 5, 3, rnd, -2, 2) : null;
                MemorySegment beta = (mask & 2) != 0 ? random(a, len + 5, 1, rnd, -1, 1) : null;
                float c = (float) rnd.nextDouble(95, 105), k = (float) rnd.nextDouble(0.1, 2), b = (float) rnd.nextDouble(-1, 1);
                long wOff = 5L * Float.BYTES * (seed % 2); // parameters read from an offset, as GroupNorm does
                MemorySegment y1 = a.allocate((long) len * Float.BYTES), y2 = a.allocate((long) len * Float.BYTES);
                vector.rowAffine(x, 0, y1, 0, len, c, k, b, w, wOff, beta, wOff);
                scalar.rowAffine(x, 0, y2, 0, len, c, k, b, w, wOff, beta, wOff);
                assertArrayEquals(bits(y2), bits(y1), "rowAffine " + ctx);
                if (w != null) {
                    vector.rowGradApply(dy, 0, x, 0, w, wOff, y1, 0, len, k, -k * 0.01f, c, b);
                    scalar.rowGradApply(dy, 0, x, 0, w, wOff, y2, 0, len, k, -k * 0.01f, c, b);
                    assertArrayEquals(bits(y2), bits(y1), "rowGradApply " + ctx);
                }
                // accumulators with something in them already, at an offset
                float[] g1 = new float[len + 3], g2 = new float[len + 3], s1 = new float[len + 3], s2 = new float[len + 3];
                for (int i = 0; i < len + 3; i++) {
                    g1[i] = g2[i] = (float) rnd.nextDouble(-3, 3);
                    s1[i] = s2[i] = (float) rnd.nextDouble(-3, 3);
                }
                vector.columnGradSums(dy, 0, x, 0, len, c, k, (mask & 1) != 0 ? s1 : null, g1, 3);
                scalar.columnGradSums(dy, 0, x, 0, len, c, k, (mask & 1) != 0 ? s2 : null, g2, 3);
                assertArrayEquals(bits(g2), bits(g1), "columnGradSums sumDyXhat " + ctx);
                assertArrayEquals(bits(s2), bits(s1), "columnGradSums sumDy " + ctx);
            }
        });
    }

    /**
     * Σx² (over strided runs) and the weighted sums Σw*dy, Σw*dy*(x - c) against exact double sums:
     * float lanes add at most k = ceil(n/L) terms each, then L lanes (Hoeffding-style H(k) = min(k, 8
     * sqrt(k)) as in the layer bounds); products w*dy and x - c are rounded once each in the vector
     * code. The scalar twin accumulates in double (only x - c is a float operation there).
     */
    @Test
    void reductionsWithinTheirBounds() {
        Primitives active = Kernels.primitives(), scalar = Kernels.scalar();
        qt().withExamples(300).forAll(lengths(), longRange(0, Long.MAX_VALUE / 2), range(1, 3)).checkAssert((len, seed, runs) -> {
            SplittableRandom rnd = new SplittableRandom(seed);
            try (Arena a = Arena.ofConfined()) {
                int stride = len + 3;
                MemorySegment x = random(a, runs * stride, 0, rnd, -50, 60), dy = random(a, len, 2, rnd, -1, 1);
                MemorySegment w = random(a, len, 1, rnd, -2, 2);
                float c = (float) rnd.nextDouble(-5, 5);
                double ss = 0, sg = 0, sgAbs = 0, sgx = 0, sgxAbs = 0;
                for (int r = 0; r < runs; r++) {
                    for (int i = 0; i < len; i++) {
                        double v = x.getAtIndex(F, (long) r * stride + i);
                        ss += v * v;
                    }
                }
                for (int i = 0; i < len; i++) {
                    double g = (double) w.getAtIndex(F, i) * dy.getAtIndex(F, i), xc = x.getAtIndex(F, i) - (double) c;
                    sg += g;
                    sgAbs += Math.abs(g);
                    sgx += g * xc;
                    sgxAbs += Math.abs(g * xc);
                }
                for (Primitives p : List.of(active, scalar)) {
                    double uA = p.name().equals("scalar") ? 0x1p-53 : U;
                    double k = Math.ceil((double) runs * len / p.lanes());
                    double rel = uA * (Math.min(k, 8 * Math.sqrt(k)) + p.lanes() + 4) + 0x1p-45;
                    String ctx = p.name() + " len=" + len + " runs=" + runs + " seed=" + seed;
                    double got = p.sumSquares(x, 0, runs, len, (long) stride * Float.BYTES);
                    assertTrue(Math.abs(got - ss) <= rel * ss, "sumSquares " + ctx + ": " + got + " vs " + ss);
                    GradSums acc = new GradSums();
                    p.rowGradSums(dy, 0, x, 0, w, 0, len, c, acc);
                    double k1 = Math.ceil((double) len / p.lanes());
                    double relG = uA * (Math.min(k1, 8 * Math.sqrt(k1)) + p.lanes() + 2) + 2 * U + 0x1p-45;
                    assertTrue(Math.abs(acc.sumDy - sg) <= relG * sgAbs, "rowGradSums Σw*dy " + ctx + ": " + acc.sumDy + " vs " + sg);
                    assertTrue(Math.abs(acc.sumDyXc - sgx) <= relG * sgxAbs,
                            "rowGradSums Σw*dy*(x-c) " + ctx + ": " + acc.sumDyXc + " vs " + sgx);
                }
            }
        });
    }
}
