package io.github.vecnorm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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
        float[] sumDy = new float[len], sumDyXhat = new float[len];
        try (Arena arena = Arena.ofConfined()) {
            // odd offsets: misaligned rows
            MemorySegment dy = arena.allocate(4L * len + 12), x = arena.allocate(4L * len + 12);
            MemorySegment w = arena.allocate(4L * len + 12), dx = inPlace ? dy : arena.allocate(4L * len + 12);
            for (int i = 0; i < len; i++) {
                dy.set(F, 4 + 4L * i, (float) r.nextGaussian());
                x.set(F, 8 + 4L * i, (float) (3 + r.nextGaussian()));
                w.set(F, 4L * i, (float) r.nextGaussian());
                sumDy[i] = (float) r.nextGaussian();
                sumDyXhat[i] = (float) r.nextGaussian();
            }
            long dxOff = inPlace ? 4 : 12;
            if (onePass) {
                p.rowGradApplyColumns(dy, 4, x, 8, w, 0, dx, dxOff, len, pp, q, c, rr, a, withSumDy ? sumDy : null,
                        sumDyXhat);
            } else {
                p.columnGradSums(dy, 4, x, 8, len, c, a, withSumDy ? sumDy : null, sumDyXhat, 0);
                p.rowGradApply(dy, 4, x, 8, w, 0, dx, dxOff, len, pp, q, c, rr);
            }
            float[] out = new float[len];
            for (int i = 0; i < len; i++) out[i] = dx.get(F, dxOff + 4L * i);
            return new float[][] {out, sumDy, sumDyXhat};
        }
    }
}
