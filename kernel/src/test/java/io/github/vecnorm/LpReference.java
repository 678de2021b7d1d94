package io.github.vecnorm;

/**
 * Independent double-precision references for {@link LpBatchNorm} and {@link WeightNorm}, written from
 * the formulas in their Javadoc (two passes: the mean first, then the deviations). Layout (N, C, S) for
 * L_p BatchNorm; for WeightNorm, element e of v belongs to slice {@code (e / s) % k} of the (a, k, s) view.
 */
final class LpReference {

    private LpReference() {
    }

    /** p as an index: 1, 2, or 0 for infinity. */
    static int code(double p) {
        return p == 1 ? 1 : p == 2 ? 2 : 0;
    }

    /** Per-channel statistics: mean, spread (without eps), invSpread, range max - min. */
    record Stats(double[] mean, double[] spread, double[] inv, double[] range) {
    }

    static Stats stats(double p, int n, int cs, int s, double[] x, double eps) {
        double[] mean = new double[cs], spread = new double[cs], inv = new double[cs], range = new double[cs];
        double m = (double) n * s;
        for (int c = 0; c < cs; c++) {
            double sum = 0, lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < s; i++) {
                    double v = x[(b * cs + c) * s + i];
                    sum += v;
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
            double mu = sum / m;
            // second pass: correct the mean by the mean residual, then the spread
            double res = 0;
            for (int b = 0; b < n; b++) for (int i = 0; i < s; i++) res += x[(b * cs + c) * s + i] - mu;
            mu += res / m;
            double acc = 0;
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < s; i++) {
                    double d = Math.abs(x[(b * cs + c) * s + i] - mu);
                    if (p == 1) acc += d;
                    else if (p == 2) acc += d * d;
                    else acc = Math.max(acc, d);
                }
            }
            mean[c] = mu;
            range[c] = hi - lo;
            if (p == 1) {
                spread[c] = acc / m;
                inv[c] = 1 / (spread[c] + eps);
            } else if (p == 2) {
                spread[c] = acc / m; // the variance
                inv[c] = 1 / Math.sqrt(spread[c] + eps);
            } else {
                spread[c] = acc;
                inv[c] = 1 / (spread[c] + eps);
            }
        }
        return new Stats(mean, spread, inv, range);
    }

    static double[] forward(double p, int n, int cs, int s, double[] x, double[] gamma, double[] beta, double eps) {
        Stats st = stats(p, n, cs, s, x, eps);
        return normalize(n, cs, s, x, st.mean(), st.inv(), gamma, beta);
    }

    static double[] normalize(int n, int cs, int s, double[] x, double[] mean, double[] inv, double[] gamma,
                              double[] beta) {
        double[] y = new double[x.length];
        for (int b = 0; b < n; b++) {
            for (int c = 0; c < cs; c++) {
                for (int i = 0; i < s; i++) {
                    int j = (b * cs + c) * s + i;
                    y[j] = (x[j] - mean[c]) * inv[c] * (gamma == null ? 1 : gamma[c]) + (beta == null ? 0 : beta[c]);
                }
            }
        }
        return y;
    }

    /** Backward outputs and the per-channel quantities the tolerances need. */
    record Grads(double[] dx, double[] dgamma, double[] dbeta, double[] k, double[] q, double[] r, int[] step) {
    }

    /**
     * The backward of the class documentation, from given (saved) mean and invSpread: dx_i = k*(dy_i - A/m
     * - G*D_i). Also returns, per element, the step e_i (sign or tie indicator) and, per channel, the
     * coefficients k = gamma*inv, q (coefficient of e_i) and r (the constant), so that dx = k*dy + r + q*e.
     */
    static Grads backward(double p, int n, int cs, int s, double[] dy, double[] x, double[] gamma, double[] mean,
                          double[] inv) {
        double m = (double) n * s;
        double[] dx = new double[x.length], dgamma = new double[cs], dbeta = new double[cs];
        double[] kk = new double[cs], qq = new double[cs], rr = new double[cs];
        int[] step = new int[x.length];
        for (int c = 0; c < cs; c++) {
            double mu = mean[c], iv = inv[c];
            double a = 0, g = 0, lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < s; i++) {
                    int j = (b * cs + c) * s + i;
                    a += dy[j];
                    g += dy[j] * (x[j] - mu) * iv;
                    lo = Math.min(lo, x[j]);
                    hi = Math.max(hi, x[j]);
                }
            }
            dgamma[c] = g;
            dbeta[c] = a;
            double k = (gamma == null ? 1 : gamma[c]) * iv;
            kk[c] = k;
            // D_i = (e_i - mean e)/den
            double den;
            if (p == 1) {
                den = m;
            } else if (p == 2) {
                den = m; // D_i = xhat_i/m: handled below
            } else {
                boolean useHi = hi - mu >= mu - lo, useLo = mu - lo >= hi - mu;
                int t = 0;
                for (int b = 0; b < n; b++) {
                    for (int i = 0; i < s; i++) {
                        int j = (b * cs + c) * s + i;
                        if (useHi && x[j] == hi) t++;
                        if (useLo && x[j] == lo) t++;
                    }
                }
                den = t;
            }
            double sumE = 0;
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < s; i++) {
                    int j = (b * cs + c) * s + i;
                    int e;
                    if (p == 1) {
                        e = x[j] > mu ? 1 : x[j] < mu ? -1 : 0;
                    } else if (p == 2) {
                        e = 0;
                    } else {
                        boolean useHi = hi - mu >= mu - lo, useLo = mu - lo >= hi - mu;
                        e = (useHi && x[j] == hi ? 1 : 0) - (useLo && x[j] == lo ? 1 : 0);
                    }
                    step[j] = e;
                    sumE += e;
                }
            }
            qq[c] = -k * g / den;
            rr[c] = -k * a / m + k * g * sumE / (m * den);
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < s; i++) {
                    int j = (b * cs + c) * s + i;
                    double d = p == 2 ? (x[j] - mu) * iv / m : (step[j] - sumE / m) / den;
                    dx[j] = k * (dy[j] - a / m - g * d);
                }
            }
        }
        return new Grads(dx, dgamma, dbeta, kk, qq, rr, step);
    }

    /** The scalar loss Σ w*y of the reference forward, for finite differences. */
    static double loss(double p, int n, int cs, int s, double[] x, double[] gamma, double[] beta, double eps,
                       double[] w) {
        double[] y = forward(p, n, cs, s, x, gamma, beta, eps);
        double l = 0;
        for (int i = 0; i < y.length; i++) l += w[i] * y[i];
        return l;
    }

    // --- WeightNorm

    /** (a, k, s) of v with these dims for this dim (ATen's rules: -1 whole tensor, other negatives wrapped). */
    static long[] view(long[] dims, int dim) {
        long numel = 1;
        for (long d : dims) numel *= d;
        if (dim == -1) return new long[] {1, 1, numel};
        int d = dim < 0 ? dim + dims.length : dim;
        long a = 1, s = 1;
        for (int i = 0; i < d; i++) a *= dims[i];
        for (int i = d + 1; i < dims.length; i++) s *= dims[i];
        return new long[] {a, dims[d], s};
    }

    static int slice(long e, long k, long s) {
        return (int) ((e / s) % k);
    }

    /** Per-slice 2-norms of v. */
    static double[] norms(long[] view, double[] v) {
        int k = (int) view[1];
        double[] ss = new double[k];
        for (int e = 0; e < v.length; e++) ss[slice(e, k, view[2])] += v[e] * v[e];
        for (int j = 0; j < k; j++) ss[j] = Math.sqrt(ss[j]);
        return ss;
    }

    static double[] weight(long[] view, double[] v, double[] g) {
        double[] nrm = norms(view, v);
        double[] w = new double[v.length];
        for (int e = 0; e < v.length; e++) {
            int j = slice(e, view[1], view[2]);
            w[e] = g[j] * v[e] / nrm[j];
        }
        return w;
    }

    /** grad_v and grad_g from the given (saved) norms; also the per-slice sums Σ gradW*v. */
    record WGrads(double[] gradV, double[] gradG, double[] sum) {
    }

    static WGrads weightBackward(long[] view, double[] gw, double[] v, double[] g, float[] norm) {
        int k = (int) view[1];
        double[] sum = new double[k];
        for (int e = 0; e < v.length; e++) sum[slice(e, k, view[2])] += gw[e] * v[e];
        double[] gg = new double[k];
        for (int j = 0; j < k; j++) gg[j] = sum[j] / norm[j];
        double[] gv = new double[v.length];
        for (int e = 0; e < v.length; e++) {
            int j = slice(e, k, view[2]);
            double n = norm[j];
            gv[e] = g[j] / n * (gw[e] - v[e] * sum[j] / (n * n));
        }
        return new WGrads(gv, gg, sum);
    }

    static double weightLoss(long[] view, double[] v, double[] g, double[] c) {
        double[] w = weight(view, v, g);
        double l = 0;
        for (int i = 0; i < w.length; i++) l += c[i] * w[i];
        return l;
    }

    static double[] widen(float[] f) {
        if (f == null) return null;
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }
}
