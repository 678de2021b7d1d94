package io.github.vecnorm;

import io.github.vecnorm.internal.Checks;
import io.github.vecnorm.internal.Kernels;
import io.github.vecnorm.internal.WeightNormOps;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Weight Normalization (Salimans and Kingma, "Weight Normalization: A Simple Reparameterization to
 * Accelerate Training of Deep Neural Networks", 2016) over float32 tensors in caller-owned memory
 * segments, with the semantics of PyTorch's {@code torch._weight_norm} (forward
 * {@code _weight_norm_interface}, backward {@code _weight_norm_interface_backward}).
 *
 * <p>The weight is {@code w = g * v / ||v||}, the 2-norm taken over every dimension of v except
 * {@code dim}. v (and w, and their gradients) has the dimensions {@code dims}, contiguous row-major;
 * g and the saved norms hold one float per index of {@code dim}: {@code dims[dim]} floats (PyTorch's
 * g of shape (1, …, dims[dim], …, 1)). {@code dim} follows ATen exactly:
 * <ul>
 *   <li>{@code 0} (PyTorch's default, {@link #DEFAULT_DIM}): one norm per index of the first dimension,
 *   i.e. per row of v viewed as (dims[0], rest);</li>
 *   <li>{@code dims.length - 1}: one norm per index of the last dimension (per column of v viewed as
 *   (rest, dims[last]));</li>
 *   <li>any other {@code 0 <= dim < dims.length}: one norm per index of that dimension;</li>
 *   <li>{@code -1} is <b>not</b> the last dimension: it means the norm of the whole tensor, one g and one
 *   norm (ATen's {@code norm_except_dim} special case; the legacy {@code torch.nn.utils.weight_norm}
 *   passes {@code dim=None} as -1);</li>
 *   <li>{@code -dims.length <= dim < -1} is wrapped to {@code dim + dims.length}, as ATen's transpose does.</li>
 * </ul>
 * Use {@link #normSize(long[], int)} for the number of floats of g and the norms.
 *
 * <h2>No eps</h2>
 * Like ATen, nothing is added to the norm: a slice of v that is all zeros has norm 0, so its w is
 * {@code 0 * (g/0)} = NaN, and the backward divides by the saved 0 (inf/NaN gradients). This is
 * propagated, not rejected, to match PyTorch; callers who need a guard must keep v away from 0.
 *
 * <h2>Aliasing</h2>
 * {@code w} may be exactly {@code v} (same start and size): every norm is computed before w is written.
 * {@code gradV} may be exactly {@code gradW}. Any other overlap between a written segment and another
 * argument is rejected.
 *
 * <h2>Threads</h2>
 * Work is cut into pieces fixed by the shape alone (slices, parts of slices, or tiles of columns); each
 * piece's sum is a double partial and the partials are added in a fixed order, so results are bitwise
 * the same for every thread count.
 *
 * <h2>Differences from ATen, on purpose</h2>
 * <ul>
 *   <li>{@code Σ v²} is accumulated in float vector lanes over pieces of at most a few thousand values,
 *   pieces added in double; the norm and {@code g/norm} are computed in double (ATen: float).</li>
 *   <li>Any dim goes through the same kernel (ATen fuses only dim 0 and the last; other dims are
 *   differentiated through its primitive ops: same formula, different rounding).</li>
 * </ul>
 *
 * <h2>Errors</h2>
 * Every argument is checked before anything is written: {@link IllegalArgumentException} for null or
 * empty dims, a dimension that is not positive, a dim out of range, a null required segment, a wrong
 * size, a read-only output or forbidden aliasing; {@link IllegalStateException} for a segment whose
 * arena is closed or that is confined to another thread.
 */
public final class WeightNorm {

    /** PyTorch's default dim: one norm per output channel (per index of the first dimension). */
    public static final int DEFAULT_DIM = 0;

    private WeightNorm() {
    }

    /**
     * The number of floats of g and of the norms for v of dimensions {@code dims} and this {@code dim}:
     * {@code dims[dim]} (after wrapping), or 1 for dim = -1.
     *
     * @throws IllegalArgumentException for bad dims or dim (see the class documentation)
     */
    public static long normSize(long[] dims, int dim) {
        return view(dims, dim)[1];
    }

    /** {@link #forward(long[], int, MemorySegment, MemorySegment, MemorySegment, MemorySegment, Parallelism)} on the calling thread. */
    public static void forward(long[] dims, int dim, MemorySegment v, MemorySegment g, MemorySegment w,
                               MemorySegment norm) {
        forward(dims, dim, v, g, w, norm, Parallelism.serial());
    }

    /**
     * Forward ({@code _weight_norm_interface}): per slice k of v (every element whose index along
     * {@code dim} is k), {@code norm_k = sqrt(Σ v²)}, and {@code w = v * (g_k / norm_k)}.
     *
     * @param dims        the dimensions of v, each at least 1
     * @param dim         the kept dimension: 0 … dims.length-1, -1 for the whole tensor, or a wrapped negative
     * @param v           direction, numel(dims) floats, read
     * @param g           magnitude, {@link #normSize} floats, read
     * @param w           the weight, numel(dims) floats, written; may be exactly {@code v}
     * @param norm        {@link #normSize} floats written with the norms (for the backward), or null
     * @param parallelism how pieces of work are spread over threads
     * @throws IllegalArgumentException for a bad argument (see the class documentation)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void forward(long[] dims, int dim, MemorySegment v, MemorySegment g, MemorySegment w,
                               MemorySegment norm, Parallelism parallelism) {
        long[] akS = view(dims, dim);
        BatchNorm.requireParallelism(parallelism);
        String what = "dims " + Arrays.toString(dims);
        long numel = akS[0] * akS[1] * akS[2], k = akS[1];
        Checks.tensor("v", v, numel, what, false);
        Checks.tensor("g", g, k, "one per index of dim", false);
        Checks.tensor("w", w, numel, what, true);
        Checks.optionalTensor("norm", norm, k, "one per index of dim", true);
        Checks.noOverlap("w", w, v, "v", v, "g", g, "norm", norm);
        Checks.noOverlap("norm", norm, null, "v", v, "g", g);

        WeightNormOps.forward(Kernels.primitives(), akS[0], k, akS[2], v, g, w, norm,
                BatchNorm.loop(parallelism, v, g, w, norm));
    }

    /** {@link #backward(long[], int, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, MemorySegment, Parallelism)} on the calling thread. */
    public static void backward(long[] dims, int dim, MemorySegment gradW, MemorySegment v, MemorySegment g,
                                MemorySegment norm, MemorySegment gradV, MemorySegment gradG) {
        backward(dims, dim, gradW, v, g, norm, gradV, gradG, Parallelism.serial());
    }

    /**
     * Backward ({@code _weight_norm_interface_backward}) from the norms saved by {@link #forward}: per slice k,
     * <pre>
     *   sum_k  = Σ gradW * v
     *   gradG_k = sum_k / norm_k
     *   gradV  = (g_k / norm_k) * (gradW - v * sum_k / norm_k²)
     * </pre>
     * Each output is optional: pass null for what is not wanted.
     *
     * @param dims        the dimensions of v
     * @param dim         as for {@link #forward}
     * @param gradW       gradient of w, numel(dims) floats
     * @param v           the forward's v, numel(dims) floats
     * @param g           the forward's g, {@link #normSize} floats
     * @param norm        the norms saved by the forward, {@link #normSize} floats
     * @param gradV       numel(dims) floats written, or null; may be exactly {@code gradW}
     * @param gradG       {@link #normSize} floats written, or null
     * @param parallelism how pieces of work are spread over threads
     * @throws IllegalArgumentException for a bad argument (see the class documentation)
     * @throws IllegalStateException    for a closed or inaccessible segment
     */
    public static void backward(long[] dims, int dim, MemorySegment gradW, MemorySegment v, MemorySegment g,
                                MemorySegment norm, MemorySegment gradV, MemorySegment gradG, Parallelism parallelism) {
        long[] akS = view(dims, dim);
        BatchNorm.requireParallelism(parallelism);
        String what = "dims " + Arrays.toString(dims);
        long numel = akS[0] * akS[1] * akS[2], k = akS[1];
        Checks.tensor("gradW", gradW, numel, what, false);
        Checks.tensor("v", v, numel, what, false);
        Checks.tensor("g", g, k, "one per index of dim", false);
        Checks.tensor("norm", norm, k, "one per index of dim", false);
        Checks.optionalTensor("gradV", gradV, numel, what, true);
        Checks.optionalTensor("gradG", gradG, k, "one per index of dim", true);
        Checks.noOverlap("gradV", gradV, gradW, "gradW", gradW, "v", v, "g", g, "norm", norm, "gradG", gradG);
        Checks.noOverlap("gradG", gradG, null, "gradW", gradW, "v", v, "g", g, "norm", norm);

        WeightNormOps.backward(Kernels.primitives(), akS[0], k, akS[2], gradW, v, g, norm, gradV, gradG,
                BatchNorm.loop(parallelism, gradW, v, g, norm, gradV, gradG));
    }

    /** (A, K, S): the product of the dims before dim, dims[dim], the product after; (1, 1, numel) for dim = -1. */
    static long[] view(long[] dims, int dim) {
        if (dims == null || dims.length == 0) {
            throw new IllegalArgumentException("dims: expected at least 1 dimension, got "
                    + (dims == null ? "null" : "[]"));
        }
        long numel = 1;
        for (int i = 0; i < dims.length; i++) {
            if (dims[i] <= 0) {
                throw new IllegalArgumentException("dims: dimension " + i + " must be positive, got " + dims[i]
                        + " in " + Arrays.toString(dims));
            }
            try {
                numel = Math.multiplyExact(numel, dims[i]);
                Math.multiplyExact(numel, (long) Float.BYTES);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("dims: element count of " + Arrays.toString(dims)
                        + " overflows a long byte size");
            }
        }
        if (dim == -1) return new long[] {1, 1, numel};
        int nd = dims.length;
        if (dim < -nd || dim >= nd) {
            throw new IllegalArgumentException("dim: Dimension out of range (expected to be in range of [" + (-nd)
                    + ", " + (nd - 1) + "], but got " + dim + ")");
        }
        int d = dim < 0 ? dim + nd : dim;
        long a = 1, s = 1;
        for (int i = 0; i < d; i++) a *= dims[i];
        for (int i = d + 1; i < nd; i++) s *= dims[i];
        if (dims[d] > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("dim: " + dims[d] + " norms (dims[" + d + "]) exceed a Java array");
        }
        return new long[] {a, dims[d], s};
    }
}
