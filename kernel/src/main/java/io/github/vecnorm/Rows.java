package io.github.vecnorm;

import java.util.Arrays;

/**
 * A float32 tensor seen as M rows of D contiguous floats, the view of LayerNorm and RMSNorm: D is the
 * product of the normalized (trailing) dimensions, M the product of the others. Row {@code r} occupies
 * floats {@code [r*D, (r+1)*D)}.
 *
 * @param m rows, at least 1
 * @param d floats per row, at least 1
 */
public record Rows(long m, long d) {

    /** Validates the dimensions and that the element count (and its size in bytes) fits a long. */
    public Rows {
        if (m <= 0) throw new IllegalArgumentException("rows: M must be positive, got " + m);
        if (d <= 0) throw new IllegalArgumentException("rows: D must be positive, got " + d);
        try {
            Math.multiplyExact(Math.multiplyExact(m, d), (long) Float.BYTES);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("rows: element count M*D = " + m + "*" + d + " overflows a long byte size");
        }
    }

    /** M rows of D floats. */
    public static Rows of(long m, long d) {
        return new Rows(m, d);
    }

    /**
     * The view of {@code layer_norm(input, normalized_shape)}: {@code normalizedShape} must equal the
     * trailing dimensions of {@code inputShape}, as ATen checks it (and with its message).
     * {@code normalizing(new long[] {8, 128, 768}, 768)} is 1024 rows of 768.
     *
     * @throws IllegalArgumentException if either is null, normalizedShape is empty, a dimension is not
     *                                  positive, the trailing dimensions differ, or the count overflows
     */
    public static Rows normalizing(long[] inputShape, long... normalizedShape) {
        if (inputShape == null) throw new IllegalArgumentException("inputShape must not be null");
        if (normalizedShape == null || normalizedShape.length == 0) {
            throw new IllegalArgumentException("Expected normalized_shape to be at least 1-dimensional, i.e., "
                    + "containing at least one element, but got normalized_shape = "
                    + (normalizedShape == null ? "null" : Arrays.toString(normalizedShape)));
        }
        int axis = inputShape.length - normalizedShape.length;
        boolean ok = axis >= 0;
        for (int i = 0; ok && i < normalizedShape.length; i++) ok = inputShape[axis + i] == normalizedShape[i];
        if (!ok) {
            StringBuilder sb = new StringBuilder("Given normalized_shape=").append(Arrays.toString(normalizedShape))
                    .append(", expected input with shape [*");
            for (long v : normalizedShape) sb.append(", ").append(v);
            throw new IllegalArgumentException(sb.append("], but got input of size").append(Arrays.toString(inputShape))
                    .toString());
        }
        long m = 1, d = 1;
        try {
            for (int i = 0; i < inputShape.length; i++) {
                if (inputShape[i] <= 0) {
                    throw new IllegalArgumentException("rows: dimension " + i + " must be positive, got "
                            + inputShape[i] + " in " + Arrays.toString(inputShape));
                }
                if (i < axis) m = Math.multiplyExact(m, inputShape[i]);
                else d = Math.multiplyExact(d, inputShape[i]);
            }
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("rows: element count of " + Arrays.toString(inputShape) + " overflows a long");
        }
        return new Rows(m, d);
    }

    /** Number of elements, M*D. */
    public long numel() {
        return m * d;
    }

    /** Size in bytes of a float32 tensor of this shape. */
    public long byteSize() {
        return numel() * Float.BYTES;
    }

    @Override
    public String toString() {
        return m + " rows x " + d;
    }
}
