package io.github.vecnorm.internal;

/** {@code Σ (x - c)} and {@code Σ (x - c)²} of a set of values about a float center c, in double. */
public final class CentredSums {
    public double sum;
    public double sumSquares;

    public CentredSums reset() {
        sum = 0;
        sumSquares = 0;
        return this;
    }
}
