package io.github.vecnorm;

import io.github.vecnorm.internal.BatchNormOps;
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
 * With runs of at least 64 floats (and not the column path below) the kernel adds Σ(x - x0) and
 * Σ(x - x0)² in memory order: {@link #shiftedSums} gives those bounds. Otherwise it
 * shifts the values by the channel's first value x0 (so |v| <= R whatever the offset),
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
 * <h2>The column path (small S, {@link BatchNormOps#columnPath})</h2>
 * x is an (N, C*S) matrix reduced down its columns: every column adds its N values in float, b =
 * min(N, 32) rows at a time ({@code ColumnSums.ROW_BLOCK}), each block flushed into a double partial;
 * then per-band partials, a channel's S columns and the statistics follow in double, at most
 * nD = ceil(N/32) + 64 + S + 4 double roundings along any chain, each <= 2^-53 times the sum of the
 * magnitudes: uD = nD*2^-53 relative to it. Both implementations do the same float operations (u, not
 * uA, for the scalar twin too), and no lanes are reduced.
 * <ul>
 *   <li>statistics: v = fl(x - shift), Σv and Σv² (fma) per column, mean = shift + Σv/m,
 *   M2 = Σv² - Σv*(Σv/m). Within a block the i-th partial of Σv is at most i*Rv (Rv = max|x - shift|),
 *   and adding it rounds by <= u*i*Rv: over a block sum_{i=2..b} i < b(b+1)/2 roundings of Rv, so per
 *   value at most (b+1)/2, plus u*Rv for v's own rounding: e = u*Rv*((b+1)/2 + 2) + uD*Rv bounds the
 *   error of Σv/m = mean - shift = d, and dMu = e + 2^-52*(|mu| + Rv) (adding the shift).
 *   Σv² has non-negative terms: each fma rounds by <= u times the block's partial <= u*Q_block, b of
 *   them, and fl(v)² carries 2u + u²: u*(b + 3)*Q with Q = Σv² = m*(var + d²) exactly. The
 *   cancellation Σv² - (Σv)²/m adds |Σv_err/m|*|Σv + Σv_err|/m <= e*(2|d| + e) to the variance, the
 *   double roundings of the difference <= 2^-50*(var + d²): dVar = (u*(b + 3) + uD + 2^-50)*(var + d²)
 *   + e*(2|d| + e). Unlike Welford this grows with d², which is why the kernel redoes a channel
 *   shifted by its mean when d² > 16 var: the first pass, shift = x[0, c, 0], Rv <= R, has d1 = mu - x0
 *   (known here); the second, shift = fl(mean1), has |d2| <= dMu1 + u*(|mu| + dMu1) and Rv <= R + |d2|.
 *   Which pass the kernel kept is certain when (|d1| ± e1)² and 16*(var ∓ dVar1) are on the same side;
 *   otherwise both bounds are taken (the larger).</li>
 *   <li>backward sums: Σdy adds b - 1 partials per block, each <= Σ_block|dy|; Σdy*fl(x - c) rounds its b
 *   fmas by u*(1 + u) times Σ_block|term|, plus u|dy*(x - c)| for the subtraction (as before):
 *   dSum = (u*b*(1 + u) + uD)*Σ|term| (+ u*Σ|dy*(x - c)|).</li>
 * </ul>
 * A block of 32 float rows can cost more than a short Welford chain (k = ceil(m/L) steps, small when
 * N*S is small), so the bounds above do not cover these; they do not grow with the column length.
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

    /** Rows a column adds in float before a flush to double (ColumnSums.ROW_BLOCK). */
    static final int ROW_BLOCK = 32;

    /** Whether an (n, cs, s) BatchNorm takes the column path. */
    public static boolean columnPath(long n, long cs, long s) {
        return BatchNormOps.columnPath(n, cs, s);
    }

    /**
     * Bounds on one channel's statistics on the path the kernel takes for (n, cs, s): sums about x0 in memory
     * order ({@link #shiftedSums}), or the column path's ({@code mu} the channel's mean, {@code first} its first
     * value x[0, c, 0]).
     */
    public StatBounds stats(long n, long cs, long s, double range, double var, double eps, double mu, double first) {
        if (BatchNormOps.sumsInMemoryOrder(n, cs, s)) return shiftedSums(n * s, laneChain(n, s), range, var, eps, mu, first);
        double b = Math.min(n, ROW_BLOCK), ud = columnDoubleRounding(n, s);
        double d1 = Math.abs(mu - first);
        double[] p1 = columnPass(b, ud, range, var, d1, mu);
        double d2 = p1[1] + U * (Math.abs(mu) + p1[1]);
        double[] p2 = columnPass(b, ud, range + d2, var, d2, mu);
        double lo = d1 - p1[0], hi = d1 + p1[0];
        boolean first1 = hi * hi <= 16 * (var - p1[2]);
        boolean second = lo > 0 && lo * lo > 16 * (var + p1[2]);
        double dMu = first1 ? p1[1] : second ? p2[1] : Math.max(p1[1], p2[1]);
        double dVar = first1 ? p1[2] : second ? p2[2] : Math.max(p1[2], p2[2]);
        double rI = dVar / (2 * (var + eps));
        return new StatBounds(dMu, dVar, rI + rI * rI);
    }

    /**
     * Bounds of the statistics as sums about a shift (see the class comment): Σd and Σd² of d = fl(x - x0),
     * x0 = the channel's first value, kept when |mean - x0| <= 2 sigma, else taken again about fl(mean).
     * Every lane chain is at most k = ceil(m/L) long (a run's chains are shorter; the second pass's run across
     * runs, in blocks into a second float level), then L lane values, the runs' totals in double.
     * dMu = uA*(R*(H(k) + L + 8) + 3*sigma); Σd² has non-negative terms adding to m*(var + delta²),
     * delta = |mean - shift|: dVar = uA*(var + delta²)*(H(k) + L + 16) + 11*dMu*sigma + 2*delta*dMu + dMu².
     * delta = |mu - x0| unless the kernel certainly redid the channel (then delta <= dMu + u*(|mu| + dMu)).
     */
    StatBounds shiftedSums(long m, double range, double var, double eps, double mu, double first) {
        return shiftedSums(m, chain(m), range, var, eps, mu, first);
    }

    /** Runs shorter than this are summed by the primitives' *SumsRuns (BatchNormOps.MEMORY_ORDER_MIN_RUN). */
    static final int SHORT_RUNS_BELOW = 64;

    /** Samples whose lanes *SumsRuns keeps before reducing them (VectorPrimitives.SAMPLES_PER_FLUSH). */
    static final int SAMPLES_PER_FLUSH = 16;

    /**
     * The longest lane chain of a BatchNorm channel's memory-order sums over n runs of s floats: ceil(m/L) for
     * runs of at least 64 floats (each run reduced by itself); shorter runs (the primitives' *SumsRuns) either
     * reduce each run where it ends, ceil(s/L) values a lane, or keep a run's lanes over up to 16 samples,
     * min(n, 16) * ceil(s/L): the longer of the two.
     */
    long laneChain(long n, long s) {
        return s >= SHORT_RUNS_BELOW ? chain(n * s) : Math.min(n, SAMPLES_PER_FLUSH) * chain(s);
    }

    /** {@link #shiftedSums(long, double, double, double, double, double)} with lane chains of at most k values. */
    StatBounds shiftedSums(long m, long k, double range, double var, double eps, double mu, double first) {
        double sigma = Math.sqrt(var);
        double dMu = uAcc * (range * (h(k) + lanes + 8) + 3 * sigma) + REF * Math.abs(mu);
        double fromFirst = Math.abs(mu - first);
        double aboutFirst = shiftedVar(k, var, sigma, fromFirst, dMu);
        double least = fromFirst - dMu;
        boolean redone = least > 0 && least * least > 4 * (var + aboutFirst);
        double dVar = redone ? shiftedVar(k, var, sigma, dMu + U * (Math.abs(mu) + dMu), dMu) : aboutFirst;
        double rI = dVar / (2 * (var + eps));
        return new StatBounds(dMu, dVar, rI + rI * rI);
    }

    private double shiftedVar(long k, double var, double sigma, double delta, double dMu) {
        return uAcc * (var + delta * delta) * (h(k) + lanes + 16) + 11 * dMu * sigma + 2 * delta * dMu + dMu * dMu
                + REF * var;
    }

    /** uD: the double roundings along a column-path total, relative to the sum of magnitudes. */
    static double columnDoubleRounding(long n, long s) {
        return 0x1p-53 * (Math.ceil(n / (double) ROW_BLOCK) + 64 + s + 4);
    }

    /** One pass of the column statistics with shift distance d and |x - shift| <= rv: {e, dMu, dVar}. */
    private static double[] columnPass(double b, double ud, double rv, double var, double d, double mu) {
        double e = U * rv * ((b + 1) / 2 + 2) + ud * rv;
        double dMu = e + 0x1p-52 * (Math.abs(mu) + rv);
        double dVar = (U * (b + 3) + ud + 0x1p-50) * (var + d * d) + e * (2 * d + e);
        return new double[] {e, dMu, dVar};
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
        return sumsOfChain(chain(m), absDy, absDyXc);
    }

    /** {@link #sums(long, double, double)} with lane chains of at most k values. */
    public SumBounds sumsOfChain(long k, double absDy, double absDyXc) {
        double g = uAcc * (h(k) + lanes + 2);
        return new SumBounds(g * absDy + REF * absDy, (g + U) * absDyXc + REF * absDyXc);
    }

    /** Bounds on the two backward sums of one channel on the path the kernel takes for (n, cs, s). */
    public SumBounds sums(long n, long cs, long s, double absDy, double absDyXc) {
        if (!columnPath(n, cs, s)) return sumsOfChain(laneChain(n, s), absDy, absDyXc);
        double g = U * Math.min(n, ROW_BLOCK) * (1 + U) + columnDoubleRounding(n, s);
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
