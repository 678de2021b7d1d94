package io.github.vecnorm.internal;

/**
 * A mergeable (count, mean, M2) accumulator in double: Welford's running moments, combined with
 * Chan, Golub and LeVeque's pairwise update. Runs, lanes and threads each accumulate their own and
 * merge, so the order of merging, not the thread count, fixes the result.
 */
public final class Moments {
    private double count;
    private double mean;
    private double m2;

    /** Forgets everything merged so far. */
    public Moments reset() {
        count = 0;
        mean = 0;
        m2 = 0;
        return this;
    }

    /** Merges a partial result: {@code n} values with mean {@code mb} and sum of squared deviations {@code m2b}. */
    public void merge(double n, double mb, double m2b) {
        if (n == 0) return;
        if (count == 0) {
            count = n;
            mean = mb;
            m2 = m2b;
            return;
        }
        double total = count + n;
        double delta = mb - mean;
        mean += delta * (n / total);
        m2 += m2b + delta * delta * (count * n / total);
        count = total;
    }

    /** Adds one value (the scalar Welford step). */
    public void add(double x) {
        count += 1;
        double delta = x - mean;
        mean += delta / count;
        m2 += delta * (x - mean);
    }

    public double count() {
        return count;
    }

    public double mean() {
        return mean;
    }

    /** Sum of squared deviations from the mean. */
    public double m2() {
        return m2;
    }

    /** Biased (population) variance, M2 / count. */
    public double varBiased() {
        return m2 / count;
    }
}
