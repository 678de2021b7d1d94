package io.github.vecnorm.bench.peers;

import io.github.vecnorm.bench.Impl;
import io.github.vecnorm.bench.Kernel;

/**
 * A native peer. Some peers return fresh output tensors instead of writing into the problem's
 * segments (libtorch's backward, for one); those results are dropped after each timed
 * {@link #run}, so that the timing includes what the peer really does and no copy of ours.
 * {@link #publishOutputs} is the untimed step the correctness check calls instead: it runs the
 * kernel once and leaves every output in the problem's segments.
 */
public interface PeerImpl extends Impl {

    /**
     * Runs the kernel once and makes sure its outputs end up in the problem's output segments
     * (copying them there if the peer allocated its own). Not for timing.
     */
    default void publishOutputs(Kernel kernel) {
        run(kernel);
    }
}
