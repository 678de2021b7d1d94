package io.github.vecnorm;

import io.github.vecnorm.internal.Kernels;
import io.github.vecnorm.internal.Primitives;

/**
 * How far a kernel's float32 results may be from the double {@link Reference}, derived from how the
 * kernels compute (not tuned). Notation, per channel: m = N*S values, mean mu, biased variance var,
 * range R = max - min, sigma = sqrt(var), iota = 1/sqrt(var + eps), L = lanes, u = 2^-24 (float
 * round-to-nearest: |fl(a) - a| <= u|a|), uA = the unit roundoff of the accumulators (u for the
 * Vector API kernels, whose lanes accumulate in float; 2^-53 for the scalar twin, which accumulates in
 * double).
 *
 * <h2>Length of a reduction</h2>
 * A lane accumulates at most k = ceil(m / L) values one after the other; then up to L lane values
 * and a few (<= 4) pairwise merges are combined. Each of the k roundings is at most uA times the
 * magnitude of the running value. Summed deterministically that is k*uA*scale (Higham's gamma_k);
 * treating the rounding errors as independent and mean zero (Higham and Mary, "A new approach to
 * probabilistic rounding error analysis", 2019), Hoeffding's inequality bounds the sum by
 * lambda*sqrt(k)*uA*scale except with probability 2*exp(-lambda^2/2). With lambda = 8 that is
 * 2.5e-14 per bound, negligible over the ~1e6 bounds a suite run evaluates. We use
 * H(k) = min(k, lambda*sqrt(k)), both being valid bounds.
 *
 * <h2>Statistics (training forward)</h2>
 * The kernel shifts the values by the channel's first value x0 (so |v| <= R whatever the offset),
 * runs Welford (m_j = m_{j-1} + d_j/j, q_j = q_{j-1} + d_j*(v_j - m_j)) per lane, merges.
 * <ul>
 *   <li>mean: step j makes an error <= u*(|m_j| + 2|d_j|/j) <= u*R + 2u|d_j|/j; the later steps damp it by
 *   j/k. The first part sums to uA*R*min((k+1)/2, lambda*sqrt(k/3)) (Hoeffding with weights j/k,
 *   sum of squares k/3); the second to 2uA*sum|d_j|/k <= 2*sqrt(2)*uA*sigma (Cauchy-Schwarz, sum d_j^2 <= 2*M2).
 *   Lane means add at most (L + 2)*uA*R (reduction of L values <= R, divide, the shift subtraction).
 *   So dMu = uA*(R*(min((k+1)/2, lambda*sqrt(k/3)) + L + 2) + 3*sigma).</li>
 *   <li>variance: q accumulates k non-negative terms: H(k)*uA*M2, plus 2uA*M2 for the two roundings
 *   inside each term, (L + 12)*uA*M2 for the lane reduction and four float merges of (mean, M2). A
 *   mean that is off by delta changes a Welford term by -2*d_j*delta (+delta^2): over all steps
 *   <= 2*sqrt(2)*dMu*sigma*m (Cauchy-Schwarz again); each of the four merges' between-group terms
 *   w*d^2 (which are parts of M2) move by <= 2*dMu*sqrt(w*d^2) <= 2*dMu*sigma*m. So
 *   dVar = uA*var*(H(k) + L + 14) + 11*dMu*sigma + dMu^2.</li>
 *   <li>invstd = (var + eps)^-1/2: relative error rI = dVar / (2*(var + eps)) to first order (+ rI^2
 *   for the second); eps damps the variance error of near-constant channels.</li>
 * </ul>
 *
 * <h2>Sums of the backward</h2>
 * Σ dy and Σ dy*(x - c) in float lanes (double in the scalar twin): every partial sum of a lane is at
 * most the sum of the magnitudes, so dSum = uA*(H(k) + L + 2)*Σ|term|, plus u*Σ|dy*(x - c)| for the
 * float subtraction x - c (float in both implementations).
 *
 * <p>Element-wise outputs add their own float roundings (each u times the magnitude it rounds), listed
 * at each method. The reference itself is within ~2^-50 of exact (compensated sums in double): REF
 * relative covers it.
 */
public final class ErrorModel {

    /** Unit roundoff of float32. */
    public static final double U = 0x1p-24;
    /** Hoeffding multiplier: a bound fails with probability 2*exp(-lambda^2/2) = 2.5e-14. */
    public static final double LAMBDA = 8;
    /** Relative error allowed to the double reference and to the kernels' own double arithmetic. */
    public static final double REF = 0x1p-45;

    public final String impl;
    public final int lanes;
    public final double uAcc;

    private ErrorModel(String impl, int lanes, double uAcc) {
        this.impl = impl;
        this.lanes = lanes;
        this.uAcc = uAcc;
    }

    /** The model of an implementation: float lanes for the Vector API, double for the scalar twin. */
    public static ErrorModel of(Primitives p) {
        boolean scalar = p.name().equals("scalar");
        return new ErrorModel(p.name(), p.lanes(), scalar ? 0x1p-53 : U);
    }

    /** The model of the implementation the public API uses in this JVM. */
    public static ErrorModel active() {
        return of(Kernels.primitives());
    }

    /** Values one lane accumulates in sequence. */
    long chain(long m) {
        return (m + lanes - 1) / lanes;
    }

    /** H(k) = min(k, lambda*sqrt(k)). */
    static double h(double k) {
        return Math.min(k, LAMBDA * Math.sqrt(k));
    }

    /** Bounds on one channel's statistics: |mean - mu|, |var - var_ref|, relative error of invstd. */
    public record StatBounds(double mean, double var, double relInvstd) {
    }

    public StatBounds stats(long m, double range, double var, double eps) {
        long k = chain(m);
        double sigma = Math.sqrt(var);
        double dMu = uAcc * (range * (Math.min((k + 1) / 2.0, LAMBDA * Math.sqrt(k / 3.0)) + lanes + 2) + 3 * sigma);
        double dVar = uAcc * var * (h(k) + lanes + 14) + 11 * dMu * sigma + dMu * dMu;
        double rI = dVar / (2 * (var + eps));
        return new StatBounds(dMu, dVar, rI + rI * rI);
    }

    /** save_mean = fl(kernel mean): dMu plus its float rounding. */
    public double saveMean(StatBounds b, double mu) {
        return b.mean() + U * (Math.abs(mu) + b.mean()) + REF * Math.abs(mu);
    }

    /** save_invstd = fl(kernel invstd): relative rI plus its float rounding. */
    public double saveInvstd(StatBounds b, double invstd) {
        return invstd * (b.relInvstd() + U * (1 + b.relInvstd()) + REF);
    }

    /**
     * Training y = fma(fl(x - meanF), fl(invstd*gamma), fl(beta - (mean - meanF)*a)), with meanF = fl(mean):
     * the scale's relative error rI + u and the subtraction's u act on |x - mu|; the mean's error dMu
     * (and u of it from the subtraction and b) on the scale; u|mu| enters only through b's rounding of
     * (mean - meanF)*a, times u again; the fma and b roundings add u(|y| + |beta|).
     */
    public double y(StatBounds b, double xMinusMu, double mu, double gamma, double invstd, double beta, double y) {
        double scale = Math.abs(gamma) * invstd;
        return scale * (Math.abs(xMinusMu) * (b.relInvstd() + 2 * U) + b.mean() * (1 + 3 * U) + 2 * U * U * Math.abs(mu))
                + U * (Math.abs(y) + Math.abs(beta)) + REF * (scale * Math.abs(xMinusMu) + Math.abs(beta));
    }

    /** running_mean = fl((1-f)*old + f*mean): f*dMu plus one float rounding. */
    public double runningMean(StatBounds b, double factor, double expected, double old, double mu) {
        return factor * b.mean() + U * Math.abs(expected) + REF * (Math.abs(old) + Math.abs(mu));
    }

    /** running_var = fl((1-f)*old + f*M2/(m-1)): f*dVar*m/(m-1) plus one float rounding. */
    public double runningVar(StatBounds b, double factor, long m, double expected, double old, double var) {
        return factor * b.var() * m / (m - 1) + U * Math.abs(expected) + REF * (Math.abs(old) + 2 * var);
    }

    /**
     * Inference y = fma(fl(x - rm), fl(gamma/sqrt(rv + eps)), beta): two roundings on |x - rm|*|a|, one on y.
     */
    public static double yInference(double xMinusRm, double a, double y, double beta) {
        return 2 * U * Math.abs(xMinusRm * a) + U * Math.abs(y) + REF * (Math.abs(xMinusRm * a) + Math.abs(beta));
    }

    /** Bounds on the two backward sums of one channel. */
    public record SumBounds(double sumDy, double sumDyXc) {
    }

    /**
     * @param absDy   Σ|dy|
     * @param absDyXc Σ|dy*(x - c)|
     */
    public SumBounds sums(long m, double absDy, double absDyXc) {
        double g = uAcc * (h(chain(m)) + lanes + 2);
        return new SumBounds(g * absDy + REF * absDy, (g + U) * absDyXc + REF * absDyXc);
    }

    /** dbeta = fl(Σ dy). */
    public static double dbeta(SumBounds b, double expected) {
        return b.sumDy() + U * Math.abs(expected);
    }

    /** dgamma = fl(Σ dy*(x - c) * invstd). */
    public static double dgamma(SumBounds b, double invstd, double expected) {
        return b.sumDyXc() * invstd + U * Math.abs(expected);
    }

    /**
     * Training dx = fma(p, dy, fma(q, fl(x - c), r)) with p = fl(gamma*iota), q = fl(-p*iota^2*B/m),
     * r = fl(-p*A/m), A = Σdy, B = Σdy*(x - c): p's rounding on |p*dy|; q's sum error dB and two roundings
     * (q, x - c) on |q*xc|; r's sum error dA and rounding; the two fma roundings on |q*xc| + |r| and |dx|.
     */
    public static double dx(SumBounds b, long m, double gamma, double invstd, double dy, double xc,
                            double sumDy, double sumDyXc, double expected) {
        double p = Math.abs(gamma) * invstd;
        double qxc = p * invstd * invstd * Math.abs(xc) / m;
        double r = p / m;
        return U * p * Math.abs(dy) + qxc * (b.sumDyXc() + 3 * U * Math.abs(sumDyXc))
                + r * (b.sumDy() + 2 * U * Math.abs(sumDy)) + U * Math.abs(expected)
                + REF * (p * Math.abs(dy) + qxc * Math.abs(sumDyXc) + r * Math.abs(sumDy));
    }

    /** Inference dx = fl(dy * fl(gamma*invstd)): two roundings. */
    public static double dxInference(double expected) {
        return (2 * U + REF) * Math.abs(expected);
    }
}
