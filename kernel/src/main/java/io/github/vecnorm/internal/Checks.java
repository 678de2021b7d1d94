package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;

/**
 * Argument guards shared by every layer. Each failure names the argument, what was expected and
 * what was given; all guards run before any byte is written.
 */
public final class Checks {

    /** An unstarted thread, used only to ask whether a segment may be touched by threads other than its owner. */
    private static final Thread PROBE = Thread.ofVirtual().unstarted(() -> { });

    private Checks() {
    }

    /** A tensor that must be present, alive, accessible, exactly {@code floats} floats, and writable if {@code written}. */
    public static void tensor(String name, MemorySegment seg, long floats, String what, boolean written) {
        if (seg == null) throw new IllegalArgumentException(name + " must not be null");
        optionalTensor(name, seg, floats, what, written);
    }

    /** Same as {@link #tensor} when {@code seg} is not null; null is allowed. */
    public static void optionalTensor(String name, MemorySegment seg, long floats, String what, boolean written) {
        if (seg == null) return;
        if (!seg.scope().isAlive()) {
            throw new IllegalStateException(name + ": the segment's arena is already closed");
        }
        if (!seg.isAccessibleBy(Thread.currentThread())) {
            throw new IllegalStateException(name + ": the segment is confined to another thread and cannot be "
                    + "accessed from " + Thread.currentThread());
        }
        long expected = floats * Float.BYTES;
        if (seg.byteSize() != expected) {
            throw new IllegalArgumentException(name + ": expected " + expected + " bytes (" + floats + " float32, "
                    + what + "), got " + seg.byteSize() + " bytes");
        }
        if (written && seg.isReadOnly()) {
            throw new IllegalArgumentException(name + ": the segment is read-only but is written by this call");
        }
    }

    /** eps: finite and strictly positive. */
    public static void eps(double eps) {
        if (!(eps > 0.0) || Double.isInfinite(eps)) {
            throw new IllegalArgumentException("eps must be finite and > 0, got " + eps);
        }
    }

    /** True when the two segments share at least one byte. */
    public static boolean overlap(MemorySegment a, MemorySegment b) {
        return a != null && b != null && a.asOverlappingSlice(b).isPresent();
    }

    /** True when the two segments are the same memory: same start and size. */
    public static boolean same(MemorySegment a, MemorySegment b) {
        // equal sizes, and all of a lies inside b: then they start at the same byte
        return a != null && b != null && a.byteSize() == b.byteSize()
                && a.asOverlappingSlice(b).map(o -> o.byteSize() == a.byteSize()).orElse(false);
    }

    /**
     * Rejects any overlap between {@code out} (written) and each of {@code others}, except exact
     * aliasing with {@code allowedAlias} (which may be null).
     */
    public static void noOverlap(String outName, MemorySegment out, MemorySegment allowedAlias, Object... namesAndSegments) {
        if (out == null) return;
        for (int i = 0; i < namesAndSegments.length; i += 2) {
            String otherName = (String) namesAndSegments[i];
            MemorySegment other = (MemorySegment) namesAndSegments[i + 1];
            if (other == null) continue;
            if (!overlap(out, other)) continue;
            if (other == allowedAlias && same(out, other)) continue;
            throw new IllegalArgumentException(outName + " overlaps " + otherName
                    + (other == allowedAlias ? " without being exactly the same memory (in place needs the same start and size)"
                    : "; they must be disjoint"));
        }
    }

    /** True when every given segment may be accessed from threads other than the caller (shared, global or auto arena). */
    public static boolean shareable(MemorySegment... segs) {
        for (MemorySegment s : segs) {
            if (s != null && !s.isAccessibleBy(PROBE)) return false;
        }
        return true;
    }
}
