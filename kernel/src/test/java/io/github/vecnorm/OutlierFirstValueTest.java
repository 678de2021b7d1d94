package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The statistics shift the float lanes by the first value of a channel (or row). When that value is an
 * outlier, every lane carries its offset and float Welford steps round it away; the kernels must notice
 * and shift again by the mean. Checked against a double two-pass computation on the same floats.
 */
class OutlierFirstValueTest {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    /**
     * y = (x - mean) * invstd has magnitude ~1 per value; a well-shifted float computation is off by a few
     * float roundings of values of that size, plus the mean's own rounding to float (|mean| * 2^-24 * invstd),
     * so 1e-5 leaves a factor ~20 of room, while an outlier-shifted one was off by ~1e-3.
     */
    private static final double TOLERANCE = 1e-5;

    @ParameterizedTest
    @ValueSource(floats = {1e3f, 3e4f, -3e4f})
    void batchNormTraining(float outlier) {
        int m = 200_000;
        Shape shape = Shape.of(1, 1, m);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = gaussianWithFirst(arena, m, outlier);
            MemorySegment y = arena.allocate(shape.byteSize()), sm = arena.allocate(4), si = arena.allocate(4);
            BatchNorm.forwardTraining(shape, x, y, null, null, sm, si, null, 1e-5);
            assertClose(x, y, m, "BatchNorm, first value " + outlier);
        }
    }

    /**
     * BatchNorm1d on (m, 3): the column path (small S) shifts by each channel's first value too; channels
     * 0 and 2 start with the outlier (and are summed again, shifted by their mean), channel 1 does not.
     */
    @ParameterizedTest
    @ValueSource(floats = {1e3f, 3e4f, -3e4f})
    void batchNorm1dTraining(float outlier) {
        int m = 100_000, cs = 3;
        Shape shape = Shape.of(m, cs);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = gaussianWithFirst(arena, m * cs, 0f);
            for (int c = 0; c < cs; c += 2) x.setAtIndex(F, c, outlier);
            MemorySegment y = arena.allocate(shape.byteSize()), sm = arena.allocate(4 * cs), si = arena.allocate(4 * cs);
            BatchNorm.forwardTraining(shape, x, y, null, null, sm, si, null, 1e-5);
            for (int c = 0; c < cs; c++) {
                MemorySegment xc = arena.allocate(4L * m), yc = arena.allocate(4L * m);
                for (int i = 0; i < m; i++) {
                    xc.setAtIndex(F, i, x.getAtIndex(F, (long) i * cs + c));
                    yc.setAtIndex(F, i, y.getAtIndex(F, (long) i * cs + c));
                }
                assertClose(xc, yc, m, "BatchNorm1d channel " + c + ", first value " + (c % 2 == 0 ? outlier : "ordinary"));
            }
        }
    }

    @ParameterizedTest
    @ValueSource(floats = {1e3f, 3e4f})
    void layerNormRow(float outlier) {
        // 50 000 floats fit the caches (sums about the first value, then about the mean as it is an outlier);
        // 200 000 do not (Welford, shifted again)
        for (int d : new int[] {50_000, 200_000}) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment x = gaussianWithFirst(arena, d, outlier);
                MemorySegment y = arena.allocate(d * 4L), mean = arena.allocate(4), rstd = arena.allocate(4);
                LayerNorm.forward(Rows.of(1, d), x, y, null, null, mean, rstd, 1e-5);
                assertClose(x, y, d, "LayerNorm row of " + d + ", first value " + outlier);
            }
        }
    }

    /**
     * L_p BatchNorm (p = 1) takes its mean as BatchNorm does, so the same outlier must send it round again;
     * y = (x - mean) / (mean |x - mean| + eps) is of magnitude ~1 like BatchNorm's, checked the same way.
     */
    @ParameterizedTest
    @ValueSource(floats = {1e3f, 3e4f, -3e4f})
    void lpBatchNormTraining(float outlier) {
        int m = 200_000;
        Shape shape = Shape.of(1, 1, m);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = gaussianWithFirst(arena, m, outlier);
            MemorySegment y = arena.allocate(shape.byteSize()), sm = arena.allocate(4), si = arena.allocate(4);
            LpBatchNorm.forward(shape, 1, x, y, null, null, sm, si, 1e-5);
            double mean = 0, abs = 0;
            for (int i = 0; i < m; i++) mean += x.getAtIndex(F, i);
            mean /= m;
            for (int i = 0; i < m; i++) abs += Math.abs(x.getAtIndex(F, i) - mean);
            double inv = 1 / (abs / m + 1e-5), worst = 0;
            for (int i = 1; i < m; i++) {
                worst = Math.max(worst, Math.abs(y.getAtIndex(F, i) - (x.getAtIndex(F, i) - mean) * inv));
            }
            assertTrue(worst <= TOLERANCE, "LpBatchNorm p = 1, first value " + outlier + ": worst |y error| " + worst);
        }
    }

    private static MemorySegment gaussianWithFirst(Arena arena, int count, float first) {
        MemorySegment x = arena.allocate(count * 4L, 64);
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < count; i++) {
            double u = 1 - r.nextDouble(), v = r.nextDouble();
            x.setAtIndex(F, i, (float) (Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)));
        }
        x.setAtIndex(F, 0, first);
        return x;
    }

    private static void assertClose(MemorySegment x, MemorySegment y, int count, String what) {
        double mean = 0, var = 0;
        for (int i = 0; i < count; i++) mean += x.getAtIndex(F, i);
        mean /= count;
        for (int i = 0; i < count; i++) {
            double d = x.getAtIndex(F, i) - mean;
            var += d * d;
        }
        double invstd = 1 / Math.sqrt(var / count + 1e-5);
        double worst = 0;
        int at = -1;
        for (int i = 1; i < count; i++) { // the outlier itself is ~1e4 in y; its relative error is what counts there
            double e = Math.abs(y.getAtIndex(F, i) - (x.getAtIndex(F, i) - mean) * invstd);
            if (e > worst) {
                worst = e;
                at = i;
            }
        }
        assertTrue(worst <= TOLERANCE, what + ": worst |y error| " + worst + " at index #" + at
                + ", input = " + (at < 0 ? "-" : x.getAtIndex(F, at)));
    }
}
