package io.github.vecnorm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.longRange;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link SetStats#keepsShift}, written without a divide, decides as its definition does: the shift x0 is kept
 * when |mean - x0| <= 2 standard deviations, i.e. delta² <= 4 var for sums Σd = n·delta and
 * Σd² = n·(var + delta²) about it. The sums are built from a chosen delta and var (away from the boundary,
 * where either answer is right), over many magnitudes and counts; and the edge cases.
 */
class KeepsShiftTest {

    @Test
    void decidesAsTwoStandardDeviations() {
        qt().withExamples(2000).forAll(longRange(0, Long.MAX_VALUE / 2)).checkAssert(seed -> {
            SplittableRandom r = new SplittableRandom(seed);
            double scale = Math.pow(10, r.nextInt(-30, 31));
            double var = scale * scale * r.nextDouble(0.01, 10);
            // |delta| / sigma in [0, 4], not within 1% of the boundary at 2
            double ratio;
            do {
                ratio = r.nextDouble(0, 4);
            } while (Math.abs(ratio - 2) < 0.02);
            double delta = (r.nextBoolean() ? 1 : -1) * ratio * Math.sqrt(var);
            double n = r.nextInt(1, 1 << 20) * (r.nextBoolean() ? 1 : 4096.0);
            double sum = n * delta, squares = n * (var + delta * delta);
            assertEquals(ratio <= 2, SetStats.keepsShift(sum, squares, n),
                    "delta/sigma " + ratio + ", var " + var + ", n " + n);
        });
    }

    @Test
    void edgeCases() {
        // a constant set: Σd = Σd² = 0 keeps the shift (the mean is x0)
        assertTrue(SetStats.keepsShift(0, 0, 10));
        // M2 rounded below zero: the shift is kept only when Σd = 0
        assertFalse(SetStats.keepsShift(1e-3, 0, 10));
        // a NaN anywhere: redo (and stay NaN)
        assertFalse(SetStats.keepsShift(Double.NaN, 1, 10));
        assertFalse(SetStats.keepsShift(1, Double.NaN, 10));
        // an infinity of one sign: kept, so the mean comes out infinite (ATen: sum / n)
        assertTrue(SetStats.keepsShift(Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY, 10));
        assertTrue(SetStats.keepsShift(Double.NEGATIVE_INFINITY, Double.POSITIVE_INFINITY, 10));
        // sums of a billion floats near the largest finite float do not overflow into a wrong answer:
        // delta 1e37 against sigma 3e38 (kept), delta 3e38 against sigma 1e37 (redone)
        double n = 1e9;
        assertTrue(SetStats.keepsShift(n * 1e37, n * (9e76 + 1e74), n));
        assertFalse(SetStats.keepsShift(n * 3e38, n * (1e74 + 9e76), n));
    }
}
