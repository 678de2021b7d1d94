package io.github.vecnorm;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Off-heap test tensors: float[] in and out of memory segments, optionally not vector-aligned. */
public final class TestData {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    private TestData() {
    }

    /**
     * A segment of exactly {@code floats} floats starting {@code misalign} floats after a 64-byte
     * boundary, so vector loads see every alignment.
     */
    public static MemorySegment allocate(Arena arena, long floats, int misalign) {
        long bytes = floats * Float.BYTES;
        MemorySegment block = arena.allocate(bytes + 64L, 64);
        return block.asSlice((long) misalign * Float.BYTES, bytes);
    }

    /** A copy of {@code v} off-heap; null for null. */
    public static MemorySegment copyOf(Arena arena, float[] v, int misalign) {
        if (v == null) return null;
        MemorySegment seg = allocate(arena, v.length, misalign);
        MemorySegment.copy(v, 0, seg, F, 0, v.length);
        return seg;
    }

    /** A copy of {@code v} off-heap, aligned. */
    public static MemorySegment copyOf(Arena arena, float[] v) {
        return copyOf(arena, v, 0);
    }

    /** {@code floats} floats set to {@code value} (NaN marks "must be overwritten"). */
    public static MemorySegment filled(Arena arena, long floats, float value, int misalign) {
        MemorySegment seg = allocate(arena, floats, misalign);
        for (long i = 0; i < floats; i++) seg.setAtIndex(F, i, value);
        return seg;
    }

    /** The floats of a segment; null for null. */
    public static float[] read(MemorySegment seg) {
        if (seg == null) return null;
        float[] v = new float[(int) (seg.byteSize() / Float.BYTES)];
        MemorySegment.copy(seg, F, 0, v, 0, v.length);
        return v;
    }
}
