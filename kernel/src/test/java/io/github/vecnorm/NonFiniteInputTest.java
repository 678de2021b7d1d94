package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A NaN or an infinity in the input propagates as in ATen (no special handling): its set's mean is not
 * finite and its set's outputs are NaN; every other set (channel, row, group) comes out finite and exactly
 * as without it. Checked wherever the value sits in its set (first value: the shift of the sums; elsewhere),
 * for BatchNorm on each of its paths (long runs, short runs, the column path), LayerNorm and GroupNorm with
 * short and long groups.
 */
class NonFiniteInputTest {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    @ParameterizedTest(name = "{0} at {1}: BatchNorm S={2}")
    @CsvSource({"Infinity, 0, 100", "Infinity, 7, 100", "-Infinity, 5, 49", "NaN, 0, 49", "NaN, 9, 3",
        "Infinity, 0, 3", "-Infinity, 4, 1"})
    void batchNormTraining(float bad, int at, int s) {
        int n = 40, cs = 5;
        check(bad, n * cs * s, cs, n * s, (x, y, mean, other) -> BatchNorm.forwardTraining(Shape.of(n, cs, s), x, y,
                null, null, mean, other, null, 1e-5), (c, i) -> ((long) (i / s) * cs + c) * s + i % s, 2, at);
    }

    @ParameterizedTest(name = "{0} at {1}: LayerNorm D={2}")
    @CsvSource({"Infinity, 0, 768", "Infinity, 100, 768", "NaN, 0, 33", "-Infinity, 32, 33"})
    void layerNorm(float bad, int at, int d) {
        int m = 6;
        check(bad, m * d, m, d, (x, y, mean, other) -> LayerNorm.forward(Rows.of(m, d), x, y, null, null, mean, other,
                1e-5), (r, i) -> (long) r * d + i, 4, at);
    }

    @ParameterizedTest(name = "{0} at {1}: GroupNorm C={2} S={3} G={4}")
    @CsvSource({"Infinity, 0, 8, 3, 4", "Infinity, 5, 8, 3, 4", "NaN, 0, 8, 100, 4", "-Infinity, 150, 8, 100, 4"})
    void groupNorm(float bad, int at, int c, int s, int g) {
        int n = 3, len = c / g * s;
        check(bad, n * c * s, n * g, len, (x, y, mean, other) -> GroupNorm.forward(Shape.of(n, c, s), g, x, y, null,
                null, mean, other, 1e-5), (k, i) -> (long) k * len + i, 5, at);
    }

    interface Call {
        /** The kernel on x into y, its per-set means into {@code mean} and its other per-set statistic into other. */
        void run(MemorySegment x, MemorySegment y, MemorySegment mean, MemorySegment other);
    }

    interface Index {
        /** The float index of element i of set k. */
        long of(int set, int i);
    }

    /**
     * Runs {@code call} on Gaussian data ({@code count} floats in {@code sets} sets of {@code setLen}) with
     * {@code bad} at element {@code at} of set {@code poisoned}, and again without it: the poisoned set's mean
     * is not finite and its outputs NaN; every other set's outputs and mean are finite and the same bits in
     * both runs.
     */
    private static void check(float bad, int count, int sets, int setLen, Call call, Index index, int poisoned,
                              int at) {
        try (Arena arena = Arena.ofConfined()) {
            SplittableRandom r = new SplittableRandom(17);
            MemorySegment clean = arena.allocate(4L * count), dirty = arena.allocate(4L * count);
            for (int i = 0; i < count; i++) {
                float v = (float) (3 + r.nextGaussian());
                clean.setAtIndex(F, i, v);
                dirty.setAtIndex(F, i, v);
            }
            dirty.setAtIndex(F, index.of(poisoned, at), bad);
            MemorySegment y0 = arena.allocate(4L * count), y1 = arena.allocate(4L * count);
            MemorySegment m0 = arena.allocate(4L * sets), m1 = arena.allocate(4L * sets);
            call.run(clean, y0, m0, arena.allocate(4L * sets));
            call.run(dirty, y1, m1, arena.allocate(4L * sets));
            String with = bad + " at element " + at + " of set " + poisoned;
            for (int k = 0; k < sets; k++) {
                float a = m0.getAtIndex(F, k), b = m1.getAtIndex(F, k);
                if (k == poisoned) {
                    assertFalse(Float.isFinite(b), "mean of the set holding " + with + ": " + b);
                    for (int i = 0; i < setLen; i++) {
                        float y = y1.getAtIndex(F, index.of(k, i));
                        assertTrue(Float.isNaN(y), "output " + i + " of the set holding " + with + ": " + y);
                    }
                    continue;
                }
                assertTrue(Float.isFinite(b) && Float.floatToRawIntBits(a) == Float.floatToRawIntBits(b),
                        "mean of set " + k + ": " + a + " without, " + b + " with " + with);
                for (int i = 0; i < setLen; i++) {
                    float u = y0.getAtIndex(F, index.of(k, i)), v = y1.getAtIndex(F, index.of(k, i));
                    assertTrue(Float.isFinite(v) && Float.floatToRawIntBits(u) == Float.floatToRawIntBits(v),
                            "output " + i + " of set " + k + ": " + u + " without, " + v + " with " + with);
                }
            }
        }
    }
}
