package io.github.vecnorm;

import io.github.vecnorm.internal.Kernels;
import io.github.vecnorm.internal.Primitives;

/**
 * Error bounds for the row and group layers against {@link FamilyReference}, derived from how the
 * kernels compute, never tuned. Notation for one set (a row, a group or an instance) of n values:
 * mean mu, biased variance var, sigma = sqrt(var), range R = max - min, r = 1/sqrt(var + eps); L lanes;
 * u = 2^-24 (float rounding, |fl(a) - a| <= u|a|); uA = unit roundoff of the kernels' accumulators (u for
 * the Vector API, whose lanes accumulate in float; 2^-53 for the scalar twin, which accumulates in double).
 *
 * <p><b>Reductions.</b> A lane adds at most k = ceil(n/L) terms one after another, then at most L lane
 * values and a few pairwise merges are combined. Each rounding is at most uA times a partial sum, itself
 * bounded by the sum of magnitudes S: deterministically k*uA*S (Higham's gamma_k); treating the roundings
 * as independent zero-mean errors (Higham and Mary 2019), Hoeffding bounds them by lambda*sqrt(k)*uA*S
 * except with probability 2*exp(-lambda^2/2) = 2.5e-14 for lambda = 8. We use H(k) = min(k, 8*sqrt(k)),
 * and add L + a few for the lane reduction and merges.
 *
 * <p><b>Welford statistics</b> (sets too large for the caches; shifted by the set's first value x0, so every
 * shifted |v| <= R): the mean moves by at most uA*R per step, so dMu = uA*(R*(H(k) + L + 8) + 3*sigma); the
 * sum of squared deviations has non-negative terms, so its relative error is uA*(H(k) + L + 16), and a mean
 * that is off by dMu moves it by at most 11*dMu*sigma*n + dMu^2*n (Cauchy-Schwarz over the Welford terms and
 * the merges): dVar = uA*var*(H(k) + L + 16) + 11*dMu*sigma + dMu^2.
 *
 * <p><b>Sums about a shift</b> (sets that fit: Σd and Σd², d = fl(x - c), c = x0, or c = fl(mean) when x0 is
 * more than two deviations out): |d| <= R, and fl(x - c) rounds by u|d| (exact in the scalar twin), so the
 * mean's error is within the dMu above. Σd² has non-negative terms adding to n*(var + delta²),
 * delta = mean - c, so its error is uA*(H(k) + L + 16)*n*(var + delta²) (2u of it for fl(d)²); the
 * correction (Σd)²/n moves by 2*|delta|*dMu*n + dMu²*n: dVar = uA*(var + delta²)*(H(k) + L + 16)
 * + 11*dMu*sigma + 2*|delta|*dMu + dMu², which covers Welford's too. delta = |mean - x0| unless the kernel
 * certainly took the second pass (then delta <= dMu + u*(|mean| + dMu)). Then rstd = (var + eps)^-1/2 has relative error rho = dVar / (2*(var + eps))
 * + rho^2 to second order.
 *
 * <p>Element-wise passes add their own float roundings, counted at each method. The reference is
 * within ~n*2^-52 relative of exact: {@link #REF} covers it.
 */
final class FamilyBounds {

    static final double U = 0x1p-24;
    static final double REF = 0x1p-40;

    final int lanes;
    final double uA;
    final String impl;

    private FamilyBounds(Primitives p) {
        this.lanes = p.lanes();
        this.impl = p.name();
        this.uA = p.name().equals("scalar") ? 0x1p-53 : U;
    }

    /** The bounds of the implementation the public API uses in this JVM. */
    static FamilyBounds active() {
        return new FamilyBounds(Kernels.primitives());
    }

    static double h(double k) {
        return Math.min(k, 8 * Math.sqrt(k));
    }

    /** Steps one lane takes over n values. */
    double steps(long n) {
        return Math.ceil((double) n / lanes);
    }

    /** Error of the kernel's (double) mean of a set. */
    double dMu(long n, FamilyReference.Stats st) {
        return uA * (st.range() * (h(steps(n)) + lanes + 8) + 3 * st.sigma()) + REF * Math.abs(st.mean());
    }

    /** Error of the kernel's (double) biased variance of a set. */
    double dVar(long n, FamilyReference.Stats st) {
        double dmu = dMu(n, st);
        double fromFirst = Math.abs(st.mean() - st.first());
        // kept the sums about x0: |mean - x0| = fromFirst
        double aboutFirst = dVar(n, st, fromFirst, dmu);
        // the kernel keeps them only when its |mean - x0| <= 2 of its sigmas; certainly not when even the
        // least |mean - x0| and the largest variance its errors allow are on the other side. Then it
        // summed about c = fl(mean'), |mean - c| <= dMu + u*(|mean| + dMu).
        double least = fromFirst - dmu;
        boolean reshifted = least > 0 && least * least > 4 * (st.var() + aboutFirst);
        return reshifted ? dVar(n, st, dmu + U * (Math.abs(st.mean()) + dmu), dmu) : aboutFirst;
    }

    /** dVar of sums about a shift whose distance from the mean is at most {@code delta} (see the class comment). */
    private double dVar(long n, FamilyReference.Stats st, double delta, double dmu) {
        return uA * (st.var() + delta * delta) * (h(steps(n)) + lanes + 16) + 11 * dmu * st.sigma()
                + 2 * delta * dmu + dmu * dmu + REF * st.var();
    }

    /** Relative error of the kernel's rstd before its float rounding. */
    double rho(long n, FamilyReference.Stats st, double eps) {
        double rho = dVar(n, st) / (2 * (st.var() + eps));
        return rho + rho * rho + REF;
    }

    /**
     * Bound for y = (x - mu) * r * gamma + beta computed as fma(fma(x - muF, a, b), gamma, beta) with
     * a = fl(r'), b = fl(-(mu' - muF) * r') (or a = fl(r'*gamma) per channel for GroupNorm): the mean error
     * shifts every value (|gamma| r dMu), the rstd error scales the deviation (|gamma| r |x - mu| rho), and
     * five float roundings (x - muF, a, the inner fma, gamma's product, the outer fma) each cost at most
     * u times the magnitude they round, i.e. u*|gamma r (x - mu)| (+ u*|y| for the last). GroupNorm folds
     * beta into b = fl(beta - (mu' - muF)*a), one more rounding of u*|beta|.
     */
    double forwardElement(double x, double gamma, double beta, double y, double mu, double r, double dMu, double rho) {
        double dev = Math.abs(x - mu);
        return Math.abs(gamma) * r * (dMu * (1 + 2 * U) + dev * (rho + 5 * U)) + U * (Math.abs(y) + Math.abs(beta))
                + REF * (Math.abs(y) + Math.abs(beta));
    }

    /** Saved mean: dMu plus its float rounding. */
    double savedMean(double mu, double dMu) {
        return dMu + U * Math.abs(mu);
    }

    /** Saved rstd: relative rho plus its float rounding. */
    double savedRstd(double r, double rho) {
        return r * (rho + U);
    }

    /**
     * Backward of one element of a set, given the saved (c, r) as exact: with g = gamma*dy and
     * xc = x - c, dx = r*g - r*A/n - r^3*xc*Bs/n where A = Σg, Bs = Σ g*xc. The sums carry
     * (uA*(H(k) + L + 2) + 2u) times the sum of their magnitudes (float lanes, plus the float products
     * gamma*dy and x - c); coefficients p, p*gamma, q, k and the two fmas are float roundings, at most
     * 3u on each of the three terms T1 = r|g|, T2 = r|A|/n, T3 = r^3|xc||Bs|/n, and u|dx| for the last.
     */
    double backwardElement(double n, double r, double g, double xc, double a, double absA, double bs, double absBs,
                           double dx) {
        double sumErr = uA * (h(steps((long) n)) + lanes + 2) + 2 * U;
        double t1 = r * Math.abs(g), t2 = r * Math.abs(a) / n, t3 = r * r * r * Math.abs(xc) * Math.abs(bs) / n;
        return (3 * U + REF) * (t1 + t2 + t3) + U * Math.abs(dx)
                + r * sumErr * absA / n + r * r * r * Math.abs(xc) * sumErr * absBs / n;
    }

    /**
     * A column sum of the row layers (dgamma, dbeta): each term dy * fl(fl(x - c) * a) carries 2u, rows
     * are added by float fma in blocks of at most 32 (each rounding <= u times the block's magnitudes),
     * blocks in double, then the result is rounded to float.
     */
    static double columnSum(double sumAbsTerms, double result) {
        return (2 * U + 32 * U + REF) * sumAbsTerms + U * Math.abs(result);
    }

    /**
     * A per-channel sum of GroupNorm (dgamma, dbeta): float-lane sums over each (n, c) run of s values
     * (uA*(H(k) + L + 2) + u for x - c), added over n in double, then rounded to float.
     */
    double channelSum(long s, double sumAbsTerms, double result) {
        return (uA * (h(steps(s)) + lanes + 2) + U + REF) * sumAbsTerms + U * Math.abs(result);
    }

    /** Fails, naming everything, unless |actual - expected| <= bound (NaN fails). */
    static void check(String what, long index, double actual, double expected, double bound, Object context) {
        if (!(Math.abs(actual - expected) <= bound)) {
            throw new AssertionError(what + " at index #" + index + ": got " + actual + ", expected " + expected
                    + " +- " + bound + " (off by " + Math.abs(actual - expected) + "); " + context);
        }
    }
}
