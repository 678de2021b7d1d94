package io.github.vecnorm;

import java.util.Arrays;

/**
 * The shape of an NCHW float32 tensor, seen as (N, C, S): batch N, channels C, and S the product of
 * the spatial dimensions (S = 1 for an (N, C) tensor). Elements are laid out contiguously, channel
 * {@code c} of sample {@code n} occupying the run {@code [(n*C + c)*S, (n*C + c + 1)*S)}.
 *
 * @param n batch size, at least 1
 * @param c channels, at least 1
 * @param s spatial size (product of the spatial dimensions), at least 1
 */
public record Shape(long n, long c, long s) {

    /** Validates the dimensions and that the element count (and its size in bytes) fits a long. */
    public Shape {
        if (n <= 0) throw new IllegalArgumentException("shape: N must be positive, got " + n);
        if (c <= 0) throw new IllegalArgumentException("shape: C must be positive, got " + c);
        if (s <= 0) throw new IllegalArgumentException("shape: spatial size S must be positive, got " + s);
        try {
            Math.multiplyExact(Math.multiplyExact(Math.multiplyExact(n, c), s), (long) Float.BYTES);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(
                    "shape: element count N*C*S = " + n + "*" + c + "*" + s + " overflows a long byte size");
        }
    }

    /**
     * The shape of a tensor with dimensions {@code (N, C, d2, d3, ...)}, as PyTorch writes it:
     * {@code of(32, 64, 56, 56)} for BatchNorm2d, {@code of(32, 64)} for BatchNorm1d on (N, C).
     *
     * @throws IllegalArgumentException if fewer than two dimensions are given, any is not positive,
     *                                  or the element count overflows
     */
    public static Shape of(long... dims) {
        if (dims == null || dims.length < 2) {
            throw new IllegalArgumentException("shape: expected at least 2 dimensions (N, C, *spatial), got "
                    + (dims == null ? "null" : Arrays.toString(dims)));
        }
        long s = 1;
        for (int i = 2; i < dims.length; i++) {
            if (dims[i] <= 0) {
                throw new IllegalArgumentException("shape: dimension " + i + " must be positive, got "
                        + dims[i] + " in " + Arrays.toString(dims));
            }
            try {
                s = Math.multiplyExact(s, dims[i]);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("shape: element count of " + Arrays.toString(dims) + " overflows a long");
            }
        }
        if (dims[0] <= 0 || dims[1] <= 0) {
            throw new IllegalArgumentException("shape: N and C must be positive, got " + Arrays.toString(dims));
        }
        return new Shape(dims[0], dims[1], s);
    }

    /**
     * Parses {@code "32x64x56x56"} (the form used by the benchmarks) into a shape.
     *
     * @throws IllegalArgumentException if the text is not at least two positive integers joined by 'x'
     */
    public static Shape parse(String text) {
        if (text == null) throw new IllegalArgumentException("shape: text must not be null");
        String[] parts = text.trim().split("x");
        long[] dims = new long[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                dims[i] = Long.parseLong(parts[i]);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("shape: expected dimensions like 32x64x56x56, got '" + text + "'");
            }
        }
        return of(dims);
    }

    /** Number of elements, N*C*S. */
    public long numel() {
        return n * c * s;
    }

    /** Size in bytes of a float32 tensor of this shape. */
    public long byteSize() {
        return numel() * Float.BYTES;
    }

    /** Values per channel, N*S: the reduction length m of BatchNorm. */
    public long perChannel() {
        return n * s;
    }

    @Override
    public String toString() {
        return n + "x" + c + "x" + s;
    }
}
