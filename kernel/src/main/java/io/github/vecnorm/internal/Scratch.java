package io.github.vecnorm.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Per-thread scratch arrays, grown on demand and then reused, so a kernel call in steady state allocates
 * nothing. Two kinds, never mixed up because the calling thread also runs tasks:
 * <ul>
 *   <li>the caller's ({@link #floats}, {@link #doubles}, {@link #segment}): filled or shared by one
 *   call on the calling thread; its tasks may read them and write disjoint parts;</li>
 *   <li>a task's ({@link #taskFloats}, {@link #taskDoubles}): private to the work item running on the current
 *   thread, valid until that item ends.</li>
 * </ul>
 * A call takes each caller slot once: slot 0 and slot 1 of the doubles are two arrays.
 */
public final class Scratch {
    private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[256]);
    private static final ThreadLocal<double[][]> DOUBLES = ThreadLocal.withInitial(() -> new double[2][0]);
    private static final ThreadLocal<float[][]> TASK_FLOATS = ThreadLocal.withInitial(() -> new float[2][0]);
    private static final ThreadLocal<double[][]> TASK_DOUBLES = ThreadLocal.withInitial(() -> new double[2][0]);
    private static final ThreadLocal<MemorySegment[]> SEGMENTS = ThreadLocal.withInitial(() -> new MemorySegment[2]);
    /** Longest double scratch kept between calls (32 MiB); a call needing more gets its own array. */
    static final int MAX_KEPT_DOUBLES = 1 << 22;
    /** Largest native scratch kept between calls (4 MiB a slot); a call needing more gets its own segment. */
    static final long MAX_KEPT_SEGMENT_BYTES = 4L << 20;

    private Scratch() {
    }

    /** At least {@code count} floats owned by the calling thread until its next call. */
    public static float[] floats(long count) {
        float[] f = FLOATS.get();
        if (f.length < count) {
            f = new float[size(count, f.length)];
            FLOATS.set(f);
        }
        return f;
    }

    /**
     * At least {@code count} doubles in slot 0 or 1 (two independent arrays) owned by the calling thread
     * until its next call; any content. Tasks of the call may write disjoint parts of it.
     */
    static double[] doubles(int slot, long count) {
        double[][] kept = DOUBLES.get();
        if (kept[slot].length >= count) return kept[slot];
        double[] d = new double[(int) Math.min(size(count, kept[slot].length), Math.max(count, MAX_KEPT_DOUBLES))];
        if (count <= MAX_KEPT_DOUBLES) kept[slot] = d;
        return d;
    }

    /**
     * At least {@code bytes} of native memory, 64-byte aligned, in slot 0 or 1 (two independent segments), owned
     * by the calling thread until its next call; any content. From an automatic arena (any thread may read it,
     * the garbage collector frees it), for the call's tasks to read what the caller wrote before starting them
     * (GroupNorm's parameters expanded per element had taken a new segment every call).
     */
    static MemorySegment segment(int slot, long bytes) {
        MemorySegment[] kept = SEGMENTS.get();
        if (kept[slot] != null && kept[slot].byteSize() >= bytes) return kept[slot];
        long size = bytes > MAX_KEPT_SEGMENT_BYTES ? bytes
                : Math.min(MAX_KEPT_SEGMENT_BYTES, Math.max(bytes, 2 * (kept[slot] == null ? 0 : kept[slot].byteSize())));
        MemorySegment m = Arena.ofAuto().allocate(Math.max(size, 1), 64);
        if (bytes <= MAX_KEPT_SEGMENT_BYTES) kept[slot] = m;
        return m;
    }

    /** Array {@code which} (0 or 1) of the current work item's floats, its first {@code count} elements zero. */
    static float[] taskFloats(int which, long count) {
        float[][] all = TASK_FLOATS.get();
        if (all[which].length < count) {
            all[which] = new float[size(count, all[which].length)];
        } else {
            Arrays.fill(all[which], 0, (int) count, 0f);
        }
        return all[which];
    }

    /** Array {@code which} (0 or 1) of the current work item's doubles, its first {@code count} elements zero. */
    static double[] taskDoubles(int which, long count) {
        double[][] all = TASK_DOUBLES.get();
        if (all[which].length < count) {
            all[which] = new double[size(count, all[which].length)];
        } else {
            Arrays.fill(all[which], 0, (int) count, 0.0);
        }
        return all[which];
    }

    /** count, or twice the current size if that is larger (geometric growth), within a Java array. */
    private static int size(long count, int current) {
        if (count > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("scratch: " + count + " elements exceed a Java array");
        }
        return (int) Math.min(Integer.MAX_VALUE - 8, Math.max(count, 2L * current));
    }

    private static final ThreadLocal<Task> TASK = ThreadLocal.withInitial(Task::new);

    /**
     * The accumulators of the work item running on the current thread (task scratch, like
     * {@link #taskFloats}): valid until that item ends; each is reset by whoever takes it. A work item uses
     * each field for one purpose at a time (nothing it calls takes the same field), so one object per
     * thread replaces one per row, group or channel.
     */
    static Task task() {
        return TASK.get();
    }

    /** A work item's accumulators: see {@link #task}. */
    static final class Task {
        /** A set's moments (LayerNorm rows, GroupNorm groups, BatchNorm and L_p channels). */
        final Moments moments = new Moments();
        /** The sums {@link SetStats#moments} takes (its own: callers hold {@link #moments}). */
        final CentredSums centred = new CentredSums();
        /** Backward sums of a row, group, channel or piece. */
        final GradSums grads = new GradSums();
        /** Step counts of the L_p backward ({@link Primitives#countSteps}). */
        final long[] counts = new long[2];
        /** Minimum and maximum of an L_p channel ({@link Primitives#minMax}). */
        final float[] minMax = new float[2];
        /** Column totals of one work item of {@link ColumnSums#combineInto}: dgamma's, then dbeta's. */
        final double[] columns = new double[2 * ColumnSums.COMBINE_COLS];
    }
}
