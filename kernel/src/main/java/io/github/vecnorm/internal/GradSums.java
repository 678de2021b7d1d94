package io.github.vecnorm.internal;

/** The two reductions of a backward pass: {@code Σ dy} and {@code Σ dy * (x - c)}, in double. */
public final class GradSums {
    public double sumDy;
    public double sumDyXc;

    public GradSums reset() {
        sumDy = 0;
        sumDyXc = 0;
        return this;
    }
}
