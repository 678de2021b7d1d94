package io.github.vecnorm.bench.peers;

import java.lang.foreign.MemorySegment;
import org.bytedeco.javacpp.Pointer;

/**
 * A JavaCPP pointer to a native segment's memory, for zero-copy views: it owns nothing (no
 * deallocator), and is only valid while the segment's arena is open.
 */
final class SegmentPointer extends Pointer {

    SegmentPointer(MemorySegment segment) {
        if (!segment.isNative()) {
            throw new IllegalArgumentException("segment: expected a native (off-heap) segment, got a heap segment");
        }
        address = segment.address();
        position = 0;
        limit = capacity = segment.byteSize();
    }
}
