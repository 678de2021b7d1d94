package io.github.vecnorm.internal;

/**
 * Per-thread float scratch, grown on demand and then reused, so a kernel call in steady state
 * allocates nothing. A call fills it on the calling thread before any task starts; tasks only read it.
 */
public final class Scratch {
    private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[256]);

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
}
