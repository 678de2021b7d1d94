/**
 * vecnorm: CPU kernels for the normalization layers of deep networks (BatchNorm and its family)
 * over off-heap {@link java.lang.foreign.MemorySegment}s holding float32 tensors in NCHW layout.
 *
 * <p>The Vector API is optional at run time ({@code requires static}): without
 * {@code --add-modules jdk.incubator.vector} the library falls back to its scalar twin and says so
 * once through {@link System.Logger}.
 */
module io.github.vecnorm {
    requires static jdk.incubator.vector;

    exports io.github.vecnorm;
}
