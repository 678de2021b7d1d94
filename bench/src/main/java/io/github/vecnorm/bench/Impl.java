package io.github.vecnorm.bench;

/**
 * One implementation under test (vecnorm scalar or vector, a native peer, or the copy roofline),
 * bound to one {@link Problem}: it reads the problem's inputs and writes its outputs.
 *
 * <ul>
 *   <li>{@link Kernel#BATCHNORM_FORWARD_TRAINING}: x, gamma, beta -&gt; y, saveMean, saveInvstd (and
 *   the running stats updated with the problem's momentum, where the implementation keeps them).</li>
 *   <li>{@link Kernel#BATCHNORM_FORWARD_INFERENCE}: x, gamma, beta, runningMean, runningVar -&gt; y.</li>
 *   <li>{@link Kernel#BATCHNORM_BACKWARD} (training mode): dy, x, gamma, saveMean, saveInvstd -&gt;
 *   dx, dgamma, dbeta.</li>
 * </ul>
 */
public interface Impl extends AutoCloseable {

    /** The report's impl name: scalar, vector, libtorch, onednn, ort, copy. */
    String name();

    /** Whether this implementation has the kernel (a peer may lack one, e.g. ONNX Runtime has no backward). */
    boolean supports(Kernel kernel);

    /** Runs the kernel once on the problem. */
    void run(Kernel kernel);

    @Override
    default void close() {
    }
}
