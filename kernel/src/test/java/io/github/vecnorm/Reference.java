package io.github.vecnorm;

/**
 * An independent statement of BatchNorm in double precision, for tests: scalar loops, two passes
 * (mean first, then the sum of squared deviations from it), compensated sums. Written from the
 * formulas of ATen's {@code native_batch_norm} / {@code native_batch_norm_backward} (DESIGN.md,
 * ATEN-SEMANTICS.md), sharing no code with the kernels.
 *
 * <p>Arrays hold an (N, C, S) tensor in NCHW order: element (n, c, i) at {@code (n*C + c)*S + i}.
 * Per-channel arrays hold C values; a null gamma means 1, a null beta 0.
 *
 * <p>Accuracy: every sum is Neumaier-compensated, so a reference result is within a few units of
 * 2^-53 of the exact value of the formula for the given float inputs (relative to the magnitudes
 * summed) — far below the float32 rounding (2^-24) the tests allow the kernels.
 */
public final class Reference {

    private Reference() {
    }

    /** Index of element (n, c, i). */
    public static int at(int n, int c, int i, int cs, int s) {
        return (n * cs + c) * s + i;
    }

    /** Neumaier's compensated sum: exact to about one double rounding of the result. */
    public static final class Sum {
        private double sum;
        private double comp;

        public void add(double v) {
            double t = sum + v;
            if (Math.abs(sum) >= Math.abs(v)) {
                comp += (sum - t) + v;
            } else {
                comp += (v - t) + sum;
            }
            sum = t;
        }

        public double value() {
            return sum + comp;
        }
    }

    /** Per-channel batch statistics: mean, biased variance and 1/sqrt(var + eps), plus the range max - min. */
    public record Stats(double[] mean, double[] var, double[] invstd, double[] range, int m) {
    }

    /** Two-pass statistics of every channel over its m = N*S values. */
    public static Stats stats(int n, int cs, int s, double[] x, double eps) {
        double[] mean = new double[cs], var = new double[cs], invstd = new double[cs], range = new double[cs];
        int m = n * s;
        for (int c = 0; c < cs; c++) {
            Sum sum = new Sum();
            double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < n; k++) {
                for (int i = 0; i < s; i++) {
                    double v = x[at(k, c, i, cs, s)];
                    sum.add(v);
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
            double mu = sum.value() / m;
            Sum sq = new Sum();
            for (int k = 0; k < n; k++) {
                for (int i = 0; i < s; i++) {
                    double d = x[at(k, c, i, cs, s)] - mu;
                    sq.add(d * d);
                }
            }
            mean[c] = mu;
            var[c] = sq.value() / m;
            invstd[c] = 1.0 / Math.sqrt(var[c] + eps);
            range[c] = hi - lo;
        }
        return new Stats(mean, var, invstd, range, m);
    }

    /** y = (x - mean) * invstd * gamma + beta, per channel. */
    public static double[] normalize(int n, int cs, int s, double[] x, double[] mean, double[] invstd,
                                     double[] gamma, double[] beta) {
        double[] y = new double[x.length];
        for (int k = 0; k < n; k++) {
            for (int c = 0; c < cs; c++) {
                double g = gamma == null ? 1 : gamma[c], b = beta == null ? 0 : beta[c];
                for (int i = 0; i < s; i++) {
                    int j = at(k, c, i, cs, s);
                    y[j] = (x[j] - mean[c]) * invstd[c] * g + b;
                }
            }
        }
        return y;
    }

    /** Training forward output from the batch statistics. */
    public static double[] forwardTraining(int n, int cs, int s, double[] x, double[] gamma, double[] beta, double eps) {
        Stats st = stats(n, cs, s, x, eps);
        return normalize(n, cs, s, x, st.mean(), st.invstd(), gamma, beta);
    }

    /** running_mean update: (1 - f) * old + f * mean. */
    public static double[] runningMean(double[] old, double[] mean, double factor) {
        double[] r = new double[old.length];
        for (int c = 0; c < r.length; c++) r[c] = (1 - factor) * old[c] + factor * mean[c];
        return r;
    }

    /** running_var update with the unbiased variance: (1 - f) * old + f * var * m / (m - 1). */
    public static double[] runningVar(double[] old, double[] var, int m, double factor) {
        double[] r = new double[old.length];
        for (int c = 0; c < r.length; c++) r[c] = (1 - factor) * old[c] + factor * (var[c] * m / (m - 1));
        return r;
    }

    /** The factor of the next update: the momentum, or 1/(tracked + 1) for a cumulative average. */
    public static double factor(Double momentum, long trackedBefore) {
        return momentum == null ? 1.0 / (trackedBefore + 1) : momentum;
    }

    /** Inference forward: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta. */
    public static double[] forwardInference(int n, int cs, int s, double[] x, double[] gamma, double[] beta,
                                            double[] runMean, double[] runVar, double eps) {
        double[] inv = new double[cs];
        for (int c = 0; c < cs; c++) inv[c] = 1.0 / Math.sqrt(runVar[c] + eps);
        return normalize(n, cs, s, x, runMean, inv, gamma, beta);
    }

    /** Gradients; an entry is null when not computed. */
    public record Grads(double[] dx, double[] dgamma, double[] dbeta) {
    }

    /**
     * Training backward from saved statistics (as the kernel receives them): with
     * xhat = (x - mean) * invstd, dbeta = Σ dy, dgamma = Σ dy * xhat,
     * dx = gamma * invstd * (dy - dbeta/m - xhat * dgamma/m).
     */
    public static Grads backward(int n, int cs, int s, double[] dy, double[] x, double[] gamma,
                                 double[] mean, double[] invstd) {
        int m = n * s;
        double[] dx = new double[x.length], dgamma = new double[cs], dbeta = new double[cs];
        for (int c = 0; c < cs; c++) {
            Sum sdy = new Sum(), sdyx = new Sum();
            for (int k = 0; k < n; k++) {
                for (int i = 0; i < s; i++) {
                    int j = at(k, c, i, cs, s);
                    sdy.add(dy[j]);
                    sdyx.add(dy[j] * ((x[j] - mean[c]) * invstd[c]));
                }
            }
            dbeta[c] = sdy.value();
            dgamma[c] = sdyx.value();
            double g = gamma == null ? 1 : gamma[c];
            for (int k = 0; k < n; k++) {
                for (int i = 0; i < s; i++) {
                    int j = at(k, c, i, cs, s);
                    double xhat = (x[j] - mean[c]) * invstd[c];
                    dx[j] = g * invstd[c] * (dy[j] - dbeta[c] / m - xhat * dgamma[c] / m);
                }
            }
        }
        return new Grads(dx, dgamma, dbeta);
    }

    /**
     * Inference backward (statistics are constants): invstd = 1/sqrt(running_var + eps),
     * dx = dy * gamma * invstd, dgamma = Σ dy * (x - running_mean) * invstd, dbeta = Σ dy.
     */
    public static Grads backwardInference(int n, int cs, int s, double[] dy, double[] x, double[] gamma,
                                          double[] runMean, double[] runVar, double eps) {
        double[] dx = new double[x.length], dgamma = new double[cs], dbeta = new double[cs];
        for (int c = 0; c < cs; c++) {
            double inv = 1.0 / Math.sqrt(runVar[c] + eps);
            double g = gamma == null ? 1 : gamma[c];
            Sum sdy = new Sum(), sdyx = new Sum();
            for (int k = 0; k < n; k++) {
                for (int i = 0; i < s; i++) {
                    int j = at(k, c, i, cs, s);
                    sdy.add(dy[j]);
                    sdyx.add(dy[j] * (x[j] - runMean[c]) * inv);
                    dx[j] = dy[j] * g * inv;
                }
            }
            dbeta[c] = sdy.value();
            dgamma[c] = sdyx.value();
        }
        return new Grads(dx, dgamma, dbeta);
    }

    /** The loss L = Σ w * y of a training forward, all in double: the function whose gradient backward computes. */
    public static double loss(int n, int cs, int s, double[] x, double[] gamma, double[] beta, double eps, double[] w) {
        double[] y = forwardTraining(n, cs, s, x, gamma, beta, eps);
        Sum l = new Sum();
        for (int j = 0; j < y.length; j++) l.add(w[j] * y[j]);
        return l.value();
    }

    /** Widens floats to doubles (exact). */
    public static double[] widen(float[] v) {
        if (v == null) return null;
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }
}
