package io.github.vecnorm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.booleans;
import static org.quicktheories.generators.Generate.longRange;
import static org.quicktheories.generators.Generate.range;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link Primitives#rowGradApplyColumns} is {@link Primitives#columnGradSums} then
 * {@link Primitives#rowGradApply} in one pass: the same bits as the two, for every implementation in this
 * JVM, in place (dx = dy) or not, with accumulators that already hold sums; and the vector and scalar
 * implementations give the same bits (element-wise float operations only).
 */
class RowGradApplyColumnsTest {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    /** Where the row's columns start in the accumulators. */
    private static final int ACC_OFF = 5;
    /** What the other columns' slots hold, before and after. */
    private static final float OTHER = 7.5f;

    @Test
    void oneRowPassEqualsColumnSumsThenApply() {
        List<Primitives> impls = new ArrayList<>(List.of(Kernels.scalar()));
        if (Kernels.vectorOrNull() != null) impls.add(Kernels.vectorOrNull());
        qt().withExamples(300).forAll(range(1, 300), booleans(), booleans(), longRange(0, Long.MAX_VALUE / 2))
                .checkAssert((len, inPlace, withSumDy, seed) -> {
                    float[][] fused = null;
                    for (Primitives p : impls) {
                        float[][] twoPass = run(p, len, inPlace, withSumDy, seed, false);
                        float[][] onePass = run(p, len, inPlace, withSumDy, seed, true);
                        for (int k = 0; k < 3; k++) {
                            assertArrayEquals(twoPass[k], onePass[k], p.name() + " output " + k + ", len " + len
                                    + (inPlace ? " in place" : "") + (withSumDy ? "" : " without sumDy"));
                        }
                        if (fused != null) {
                            for (int k = 0; k < 3; k++) {
                                assertArrayEquals(fused[k], onePass[k], "scalar vs " + p.name() + " output " + k);
                            }
                        }
                        for (int k = 1; k < 3; k++) {
                            for (int i = 0; i < len + 2 * ACC_OFF; i++) {
                                if (i >= ACC_OFF && i < ACC_OFF + len) continue; // the row's (checked above)
                                assertEquals(OTHER, onePass[k][i], p.name() + " wrote accumulator " + k + " slot " + i);
                            }
                        }
                        fused = onePass;
                    }
                });
    }

    /**
     * {dx, sumDy, sumDyXhat} of one row, by the one-pass primitive or by the two; without sumDy, null is passed
     * for it and its slot comes back as it was.
     */
    private static float[][] run(Primitives p, int len, boolean inPlace, boolean withSumDy, long seed,
                                 boolean onePass) {
        SplittableRandom r = new SplittableRandom(seed);
        float c = (float) r.nextGaussian(), a = (float) Math.exp(r.nextGaussian());
        float pp = (float) r.nextGaussian(), q = (float) r.nextGaussian(), rr = (float) r.nextGaussian();
        // the accumulators from ACC_OFF on, between slots of other columns (which must come back unchanged)
        float[] sumDy = new float[len + 2 * ACC_OFF], sumDyXhat = new float[len + 2 * ACC_OFF];
        java.util.Arrays.fill(sumDy, OTHER);
        java.util.Arrays.fill(sumDyXhat, OTHER);
        try (Arena arena = Arena.ofConfined()) {
            // odd offsets: misaligned rows
            MemorySegment dy = arena.allocate(4L * len + 12), x = arena.allocate(4L * len + 12);
            MemorySegment w = arena.allocate(4L * len + 12), dx = inPlace ? dy : arena.allocate(4L * len + 12);
            for (int i = 0; i < len; i++) {
                dy.set(F, 4 + 4L * i, (float) r.nextGaussian());
                x.set(F, 8 + 4L * i, (float) (3 + r.nextGaussian()));
                w.set(F, 4L * i, (float) r.nextGaussian());
                sumDy[ACC_OFF + i] = (float) r.nextGaussian();
                sumDyXhat[ACC_OFF + i] = (float) r.nextGaussian();
            }
            long dxOff = inPlace ? 4 : 12;
            if (onePass) {
                p.rowGradApplyColumns(dy, 4, x, 8, w, 0, dx, dxOff, len, pp, q, c, rr, a, withSumDy ? sumDy : null,
                        sumDyXhat, ACC_OFF);
            } else {
                p.columnGradSums(dy, 4, x, 8, len, c, a, withSumDy ? sumDy : null, sumDyXhat, ACC_OFF);
                p.rowGradApply(dy, 4, x, 8, w, 0, dx, dxOff, len, pp, q, c, rr);
            }
            float[] out = new float[len];
            for (int i = 0; i < len; i++) out[i] = dx.get(F, dxOff + 4L * i);
            return new float[][] {out, sumDy, sumDyXhat};
        }
    }
}
