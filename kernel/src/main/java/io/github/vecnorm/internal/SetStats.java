package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Moments of a set of strided runs (a row, a group, an instance, a channel), by the cheaper of two methods:
 * <ul>
 *   <li><b>Two passes</b> when the set fits in the caches ({@link #TWO_PASS_MAX_BYTES}): Σ(x - x0) about the
 *   set's first value gives a mean m1; then Σd and Σd² with d = x - c, c = fl(m1), give the mean c + Σd/n and
 *   M2 = Σd² - (Σd)²/n. Both passes are a subtraction, an add and at most an fma per vector, with no divide and
 *   no serial chain through a running mean, and the second pass reads from cache. |c - mean| is within a few
 *   units of rounding of the data's range, so the correction (Σd)²/n is tiny and M2 keeps float precision
 *   whatever the offset.</li>
 *   <li><b>Welford in one pass</b> ({@link BatchNormOps#shiftedMoments}) for a set too large for the caches,
 *   which would otherwise be read twice from memory.</li>
 * </ul>
 * Which one runs depends only on the set's size, so results do not depend on the thread count.
 */
public final class SetStats {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;
    /** Largest set (bytes) read twice: half of a 1 MiB L2, so the second pass finds it there. */
    public static final long TWO_PASS_MAX_BYTES = 512 * 1024;

    private SetStats() {
    }

    /** Whether a set of {@code count} floats takes the two-pass method. */
    public static boolean twoPass(long count) {
        return count * B <= TWO_PASS_MAX_BYTES;
    }

    /** The moments of n runs of s floats, {@code stride} bytes apart, from byte {@code off}, merged into acc. */
    public static void moments(Primitives p, MemorySegment x, long off, long n, long s, long stride, Moments acc) {
        if (!twoPass(n * s)) {
            BatchNormOps.shiftedMoments(p, x, off, n, s, stride, acc);
            return;
        }
        // the set is at most TWO_PASS_MAX_BYTES, so s fits an int
        double count = (double) n * s;
        float x0 = x.get(F, off);
        CentredSums sums = new CentredSums();
        p.centredSums(x, off, n, (int) s, stride, x0, sums);
        float c = (float) (x0 + sums.sum / count);
        p.centredSums(x, off, n, (int) s, stride, c, sums.reset());
        double meanOffset = sums.sum / count;
        acc.merge(count, c + meanOffset, Math.max(0.0, sums.sumSquares - sums.sum * meanOffset));
    }
}
