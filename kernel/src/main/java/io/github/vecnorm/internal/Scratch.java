package io.github.vecnorm.internal;

/**
 * Per-thread float scratch, grown on demand and then reused, so a kernel call in steady state
 * allocates nothing. A call fills the floats on the calling thread before any task starts; tasks only read
 * them. The doubles take per-band partials that the call's tasks write, each its own part.
 */
public final class Scratch {
    private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[256]);
    private static final ThreadLocal<double[][]> DOUBLES = ThreadLocal.withInitial(() -> new double[2][0]);
    /** Longest double scratch kept between calls (32 MiB); a call needing more gets its own array. */
    static final int MAX_KEPT_DOUBLES = 1 << 22;

    private Scratch() {
    }

    /** At least {@code count} floats owned by the calling thread until its next call. */
    public static float[] floats(long count) {
        if (count > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("scratch: " + count + " floats exceed a Java array");
        }
        float[] f = FLOATS.get();
        if (f.length < count) {
            f = new float[(int) Math.max(count, 2L * f.length)];
            FLOATS.set(f);
        }
        return f;
    }

    /**
     * At least {@code count} doubles in slot 0 or 1 (two independent arrays) owned by the calling thread
     * until its next call; any content. Tasks of the call may write disjoint parts of it.
     */
    public static double[] doubles(int slot, long count) {
        if (count > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("scratch: " + count + " doubles exceed a Java array");
        }
        double[][] kept = DOUBLES.get();
        if (kept[slot].length >= count) return kept[slot];
        double[] d = new double[(int) Math.max(count, Math.min(MAX_KEPT_DOUBLES, 2L * kept[slot].length))];
        if (count <= MAX_KEPT_DOUBLES) kept[slot] = d;
        return d;
    }
}
