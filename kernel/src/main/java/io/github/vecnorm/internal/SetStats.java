package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Moments of a set of strided runs (a row, a group, an instance, a channel), by the cheaper of two methods:
 * <ul>
 *   <li><b>Sums about a value of the set</b> when it fits in the caches ({@link #TWO_PASS_MAX_BYTES}): Σd and
 *   Σd², d = x - x0 about the set's first value, give the mean x0 + Σd/n and M2 = Σd² - (Σd)²/n. That is
 *   the result when x0 lies within {@link #ONE_PASS_SIGMAS} standard deviations of the mean (nearly always
 *   for real data); otherwise (x0 an outlier, the cancellation would cost too much) a second pass takes the
 *   same sums about c = fl(mean), reading the set from cache, and |c - mean| is then within a few units of
 *   rounding, so M2 keeps float precision whatever the offset. A pass is a subtraction, an add and an fma
 *   per vector, with no divide and no serial chain through a running mean.</li>
 *   <li><b>Welford in one pass</b> ({@link BatchNormOps#shiftedMoments}) for a set too large for the caches,
 *   which would otherwise be read twice from memory.</li>
 * </ul>
 * Which one runs depends only on the set's size and values, so results do not depend on the thread count.
 */
public final class SetStats {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final long B = Float.BYTES;
    /**
     * The first pass's sums about x0 are kept when |mean - x0| <= this many standard deviations: their
     * M2 = Σd² - (Σd)²/n then carries the rounding of Σd² = n*(var + (mean - x0)²), at most 1 + 2² times
     * that of sums about the mean. Otherwise (x0 an outlier) the second pass, about fl(mean), runs.
     */
    static final double ONE_PASS_SIGMAS = 2;
    /** Largest set (bytes) read twice: half of a 1 MiB L2, so the second pass finds it there. */
    public static final long TWO_PASS_MAX_BYTES = 512 * 1024;

    private SetStats() {
    }

    /** Whether a set of {@code count} floats takes the two-pass method. */
    public static boolean twoPass(long count) {
        return count * B <= TWO_PASS_MAX_BYTES;
    }

    /**
     * The moments of n runs of s floats, {@code stride} bytes apart, from byte {@code off}, merged into acc;
     * {@code sums} is scratch (its content is overwritten).
     */
    public static void moments(Primitives p, MemorySegment x, long off, long n, long s, long stride, Moments acc,
                               CentredSums sums) {
        if (!twoPass(n * s)) {
            BatchNormOps.shiftedMoments(p, x, off, n, s, stride, acc);
            return;
        }
        float c = centredSums(p, x, off, n, s, stride, sums);
        double dm = sums.sum / ((double) n * s);
        acc.merge((double) n * s, c + dm, Math.max(0.0, sums.sumSquares - sums.sum * dm));
    }

    /**
     * For a set that {@link #twoPass fits}: Σd and Σd² into {@code sums} about a value c of the set, returned:
     * the set's first value x0 when it lies within {@link #ONE_PASS_SIGMAS} deviations of the mean, else
     * c = fl(mean) found from the first pass. The mean is then c + Σd/n and M2 = Σd² - (Σd)²/n.
     */
    public static float centredSums(Primitives p, MemorySegment x, long off, long n, long s, long stride,
                                    CentredSums sums) {
        // the set is at most TWO_PASS_MAX_BYTES, so s fits an int
        double count = (double) n * s;
        float x0 = x.get(F, off);
        p.centredSums(x, off, n, (int) s, stride, x0, sums.reset());
        if (keepsShift(sums.sum, sums.sumSquares, count)) return x0;
        float c = (float) (x0 + sums.sum / count);
        p.centredSums(x, off, n, (int) s, stride, c, sums.reset());
        return c;
    }

    /**
     * Whether sums Σd and Σd² of count values about a shift stand: the shift lies within {@link #ONE_PASS_SIGMAS}
     * deviations of the mean, so the sums lose at most a factor 1 + (mean - shift)²/var to cancellation.
     * Otherwise the set is summed again about fl(mean).
     */
    static boolean keepsShift(double sum, double squares, double count) {
        // (Σd/n)² n <= k² (Σd² - (Σd)²/n), times n: (1 + k²)(Σd)² <= k² Σd² n, with no division (a divide per
        // channel counted in BatchNorm's per-channel finish). A negative M2 from rounding (clamped to 0 before)
        // still keeps the shift only when Σd = 0. Non-finite sums: NaN redoes the set (and stays NaN); an
        // infinity of one sign keeps the shift, so the mean comes out infinite, as ATen's sum / n does (the
        // variance is NaN either way; the divided form had made the mean NaN too).
        double k2 = ONE_PASS_SIGMAS * ONE_PASS_SIGMAS;
        return (1 + k2) * (sum * sum) <= k2 * squares * count;
    }
}
