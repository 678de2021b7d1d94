package io.github.vecnorm;

/**
 * An independent double-precision reference for the row and group layers (LayerNorm, RMSNorm,
 * GroupNorm, InstanceNorm): two passes (mean, then squared deviations), compensated (Neumaier) sums, no
 * code shared with the kernels. A "set" is what one statistic is taken over: a LayerNorm row, an RMSNorm
 * row, a GroupNorm (sample, group), an InstanceNorm (sample, channel); sets are contiguous, set k
 * starting at {@code k * len}.
 */
final class FamilyReference {

    private FamilyReference() {
    }

    /** Neumaier's compensated sum: within a few ulps of double for the lengths used here. */
    static final class Sum {
        private double s, comp;

        void add(double v) {
            double t = s + v;
            comp += Math.abs(s) >= Math.abs(v) ? (s - t) + v : (v - t) + s;
            s = t;
        }

        double value() {
            return s + comp;
        }
    }

    /** Exact statistics of one set: mean, biased variance, range, and its first value (the kernels' shift). */
    record Stats(double mean, double var, double range, double first) {
        double sigma() {
            return Math.sqrt(var);
        }
    }

    /** Two-pass mean and biased variance of {@code x[from, from+len)}. */
    static Stats stats(float[] x, long from, long len) {
        Sum s = new Sum();
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (long i = from; i < from + len; i++) {
            s.add(x[(int) i]);
            lo = Math.min(lo, x[(int) i]);
            hi = Math.max(hi, x[(int) i]);
        }
        double mean = s.value() / len;
        Sum q = new Sum();
        for (long i = from; i < from + len; i++) {
            double d = x[(int) i] - mean;
            q.add(d * d);
        }
        return new Stats(mean, q.value() / len, hi - lo, x[(int) from]);
    }

    /** Mean of squares of {@code x[from, from+len)}. */
    static double meanSquare(float[] x, long from, long len) {
        Sum s = new Sum();
        for (long i = from; i < from + len; i++) s.add((double) x[(int) i] * x[(int) i]);
        return s.value() / len;
    }

    // ---------------------------------------------------------------- LayerNorm

    /** LayerNorm forward: y (M*D), and per row mean and rstd (exact). gamma/beta null = 1/0. */
    static double[][] layerNorm(float[] x, int m, int d, float[] gamma, float[] beta, double eps) {
        double[] y = new double[m * d], mean = new double[m], rstd = new double[m];
        for (int r = 0; r < m; r++) {
            Stats st = stats(x, (long) r * d, d);
            mean[r] = st.mean();
            rstd[r] = 1.0 / Math.sqrt(st.var() + eps);
            for (int j = 0; j < d; j++) {
                int i = r * d + j;
                y[i] = (x[i] - mean[r]) * rstd[r] * g(gamma, j) + g0(beta, j);
            }
        }
        return new double[][] {y, mean, rstd};
    }

    /**
     * Backward of a normalization over sets of {@code len} values given their statistics (c, r) per set
     * — LayerNorm rows, GroupNorm groups, InstanceNorm instances. {@code chanOf(i)} maps an element to
     * the index of its gamma (per element for LayerNorm, per channel for GroupNorm). Returns
     * {dx, dgamma, dbeta} with dgamma/dbeta indexed like gamma ({@code params} of them).
     */
    static double[][] normBackward(float[] dy, float[] x, int sets, int len, double[] c, double[] r,
                                   float[] gamma, int params, java.util.function.IntUnaryOperator paramOf) {
        double[] dx = new double[sets * len];
        Sum[] dg = new Sum[params], db = new Sum[params];
        for (int j = 0; j < params; j++) {
            dg[j] = new Sum();
            db[j] = new Sum();
        }
        for (int k = 0; k < sets; k++) {
            Sum a = new Sum(), b = new Sum();
            for (int t = 0; t < len; t++) {
                int i = k * len + t;
                double gi = g(gamma, paramOf.applyAsInt(i)) * dy[i];
                double xhat = (x[i] - c[k]) * r[k];
                a.add(gi);
                b.add(gi * xhat);
                dg[paramOf.applyAsInt(i)].add(dy[i] * xhat);
                db[paramOf.applyAsInt(i)].add(dy[i]);
            }
            double meanG = a.value() / len, meanGx = b.value() / len;
            for (int t = 0; t < len; t++) {
                int i = k * len + t;
                double gi = g(gamma, paramOf.applyAsInt(i)) * dy[i];
                double xhat = (x[i] - c[k]) * r[k];
                dx[i] = r[k] * (gi - meanG - xhat * meanGx);
            }
        }
        double[] dgamma = new double[params], dbeta = new double[params];
        for (int j = 0; j < params; j++) {
            dgamma[j] = dg[j].value();
            dbeta[j] = db[j].value();
        }
        return new double[][] {dx, dgamma, dbeta};
    }

    // ---------------------------------------------------------------- RMSNorm

    /** RMSNorm forward: y (M*D) and rstd per row. */
    static double[][] rmsNorm(float[] x, int m, int d, float[] gamma, double eps) {
        double[] y = new double[m * d], rstd = new double[m];
        for (int r = 0; r < m; r++) {
            rstd[r] = 1.0 / Math.sqrt(meanSquare(x, (long) r * d, d) + eps);
            for (int j = 0; j < d; j++) y[r * d + j] = x[r * d + j] * rstd[r] * g(gamma, j);
        }
        return new double[][] {y, rstd};
    }

    /** RMSNorm backward given rstd per row: {dx, dgamma}. Derived independently: d/dx_i of x_i * (ms + eps)^-1/2. */
    static double[][] rmsBackward(float[] dy, float[] x, int m, int d, float[] gamma, double[] rstd) {
        double[] dx = new double[m * d];
        Sum[] dg = new Sum[d];
        for (int j = 0; j < d; j++) dg[j] = new Sum();
        for (int r = 0; r < m; r++) {
            Sum s = new Sum();
            for (int j = 0; j < d; j++) s.add(g(gamma, j) * dy[r * d + j] * x[r * d + j]);
            double rs = rstd[r], sgx = s.value();
            for (int j = 0; j < d; j++) {
                int i = r * d + j;
                dx[i] = rs * g(gamma, j) * dy[i] - rs * rs * rs * x[i] * sgx / d;
                dg[j].add(dy[i] * x[i] * rs);
            }
        }
        double[] dgamma = new double[d];
        for (int j = 0; j < d; j++) dgamma[j] = dg[j].value();
        return new double[][] {dx, dgamma};
    }

    // ---------------------------------------------------------------- GroupNorm / InstanceNorm

    /** GroupNorm forward over (n, c, s) in g groups: y, and per (n, group) mean, rstd, unbiased variance. */
    static double[][] groupNorm(float[] x, int n, int c, int s, int groups, float[] gamma, float[] beta, double eps) {
        int cg = c / groups, len = cg * s;
        double[] y = new double[n * c * s], mean = new double[n * groups], rstd = new double[n * groups];
        double[] unbiased = new double[n * groups];
        for (int k = 0; k < n * groups; k++) {
            Stats st = stats(x, (long) k * len, len);
            mean[k] = st.mean();
            rstd[k] = 1.0 / Math.sqrt(st.var() + eps);
            unbiased[k] = len > 1 ? st.var() * len / (len - 1) : Double.NaN;
            for (int t = 0; t < len; t++) {
                int i = k * len + t, ch = (k % groups) * cg + t / s;
                y[i] = (x[i] - mean[k]) * rstd[k] * g(gamma, ch) + g0(beta, ch);
            }
        }
        return new double[][] {y, mean, rstd, unbiased};
    }

    /** The channel of element i of an (n, c, s) tensor. */
    static int channelOf(int i, int c, int s) {
        return (i / s) % c;
    }

    static double g(float[] gamma, int j) {
        return gamma == null ? 1.0 : gamma[j];
    }

    static double g0(float[] beta, int j) {
        return beta == null ? 0.0 : beta[j];
    }
}
