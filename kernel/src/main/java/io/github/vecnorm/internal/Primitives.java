package io.github.vecnorm.internal;

import java.lang.foreign.MemorySegment;

/**
 * The four loops every normalization layer is made of, over float32 values in memory segments.
 * Each works on a strided set of runs: {@code runs} runs of {@code len} contiguous floats, the
 * {@code r}-th starting {@code r * stride} bytes after {@code off} (byte offsets throughout). A
 * BatchNorm channel is N runs of S values, stride C*S floats; a LayerNorm row is one run.
 *
 * <p>Two implementations with the same contract: {@link ScalarPrimitives}, the readable statement
 * of each algorithm and the fallback, and the Vector API one, chosen once by {@link Kernels}.
 * Callers have validated every argument; implementations only {@code assert}.
 */
public interface Primitives {

    /** A short name for logs and benchmark parameters: "scalar" or "vector". */
    String name();

    /** Float lanes per vector (1 for scalar). */
    int lanes();

    /**
     * Moments of the runs, merged into {@code acc}. The values are shifted by {@code shift} (a value
     * near the data, e.g. its first element) before accumulating, so that a large common offset does
     * not cost float precision; {@code acc} receives the moments of the unshifted values.
     */
    void moments(MemorySegment x, long off, long runs, int len, long stride, float shift, Moments acc);

    /**
     * Adds {@code Σ (x - c)} to {@code acc.sum} and {@code Σ (x - c)²} to {@code acc.sumSquares} over the runs,
     * in the implementation's accumulator precision. The two passes of the cached sets' statistics
     * ({@link SetStats}): once about a value of the data, once about the mean found.
     */
    void centredSums(MemorySegment x, long off, long runs, int len, long stride, float c, CentredSums acc);

    /** {@code y = (x - c) * a + b} over the runs; y may be x (same offsets). */
    void affine(MemorySegment x, long xOff, MemorySegment y, long yOff,
                long runs, int len, long stride, float c, float a, float b);

    /**
     * {@link #affine} over {@code runs} consecutive runs of {@code len} floats (run r from byte
     * {@code r * len * 4} on), each with its own coefficients {@code c = coef[k]}, {@code a = coef[k + 1]},
     * {@code b = coef[k + 2]}, {@code k = coefOff + r * coefStride}: the same float operations as affine
     * run by run, in one call (a BatchNorm sample's channels with short S). y may be x (same offsets).
     */
    void affineRuns(MemorySegment x, long xOff, MemorySegment y, long yOff, int runs, int len,
                    float[] coef, int coefOff, int coefStride);

    /**
     * Adds {@code Σ dy} to {@code acc.sumDy} and {@code Σ dy * (x - c)} to {@code acc.sumDyXc} over the
     * runs (x and dy laid out alike).
     */
    void gradSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff,
                  long runs, int len, long stride, float c, GradSums acc);

    /** {@code dx = p * dy + q * (x - c) + r} over the runs; dx may be dy (same offsets). */
    void gradApply(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                   long runs, int len, long stride, float p, float q, float c, float r);

    // --- consecutive runs, each with its own coefficients (a BatchNorm sample's channels)
    // A sample is runs runs of len floats back to back (run r from byte r * len * 4 of the sample on). The sums
    // take runs [from, to) of every sample (sample i from byte off + i * sampleStride): run r's centre is the
    // float at byte centreOff + r * centreStride of centres, and its sums over all the samples are added into
    // a[outOff + r] and b[outOff + r]; no other slot is written. A run's sums are the same bits whatever
    // [from, to) holds it (the thread-count determinism rests on this). Each sum of a run is float lanes of
    // at most 16 * ceil(len / lanes) values (16 samples' worth), their tree, and the scalar tails, in double.
    // The implementation may read the floats of runs next to [from, to) in the same sample (a vector shared
    // with them) and the centres of runs up to min(to + 1, runs - 1); nothing outside the samples' runs.

    /**
     * {@link #centredSums} of each run r in [from, to) over the samples, about its own centre c_r: Σ(x - c_r)
     * added into {@code a[outOff + r]}, Σ(x - c_r)² into {@code b[outOff + r]}.
     */
    void centredSumsRuns(MemorySegment x, long off, long samples, long sampleStride, int runs, int len, int from,
                         int to, MemorySegment centres, long centreOff, long centreStride, double[] a, double[] b,
                         int outOff);

    /**
     * {@link #gradSums} of each run r in [from, to) over the samples, about its own centre c_r: Σdy added into
     * {@code a[outOff + r]}, Σdy * (x - c_r) into {@code b[outOff + r]} (x and dy laid out alike from their
     * offsets).
     */
    void gradSumsRuns(MemorySegment dy, long dyOff, MemorySegment x, long xOff, long samples, long sampleStride,
                      int runs, int len, int from, int to, MemorySegment centres, long centreOff, long centreStride,
                      double[] a, double[] b, int outOff);

    /**
     * {@link #gradApply} over consecutive runs, each with its own coefficients {@code p = coef[k]},
     * {@code q = coef[k + 1]}, {@code c = coef[k + 2]}, {@code r = coef[k + 3]}, {@code k = coefOff +
     * run * coefStride}: the same float operations as gradApply run by run (so the same bits). dx may be dy
     * (same offsets).
     */
    void gradApplyRuns(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                       int runs, int len, float[] coef, int coefOff, int coefStride);

    // --- row primitives (LayerNorm, RMSNorm)
    // One contiguous run of len floats, with a per-element weight vector w (gamma) read from wOff on.

    /** {@code Σ x²} over the runs (same run layout as {@link #moments}). */
    double sumSquares(MemorySegment x, long off, long runs, int len, long stride);

    /**
     * {@code y = ((x - c) * a + b) * w + beta} element by element over one run of {@code len} floats:
     * a per-run affine, then a per-element one. w may be null (1), beta may be null (0); y may be x (same offsets).
     */
    void rowAffine(MemorySegment x, long xOff, MemorySegment y, long yOff, int len, float c, float a, float b,
                   MemorySegment w, long wOff, MemorySegment beta, long betaOff);

    /** Adds {@code Σ w*dy} to {@code acc.sumDy} and {@code Σ w*dy*(x - c)} to {@code acc.sumDyXc} over one run. */
    void rowGradSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment w, long wOff,
                     int len, float c, GradSums acc);

    /** {@code dx = p * w * dy + q * (x - c) + r} over one run; dx may be dy (same offsets). */
    void rowGradApply(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment w, long wOff,
                      MemorySegment dx, long dxOff, int len, float p, float q, float c, float r);

    /**
     * Column accumulation over one run (a row): {@code sumDy[accOff + i] += dy[i]} and
     * {@code sumDyXhat[accOff + i] += dy[i] * ((x[i] - c) * a)}, in float; either array may be null.
     * Every element goes through the same float operations (vector lanes and tail alike), so a column's
     * sum does not depend on where a run starts or on the implementation.
     */
    void columnGradSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff, int len, float c, float a,
                        float[] sumDy, float[] sumDyXhat, int accOff);

    // --- WeightNorm / Lp primitives
    // Strided runs as in moments (except rowLinear: one run). Step functions [x >= hi], [x <= lo] give
    // sign(x - c) = [x >= c] - [x <= c] and the ties of a maximum; all compare the float values exactly.

    /**
     * {@code Σ |(x - c) - c2|} over the runs, each term in float. The center is given as two floats, c
     * its rounded value and c2 what the rounding left (0 if nothing), so that deviations from a double
     * center keep float precision even when the center is large.
     */
    double sumAbsDiff(MemorySegment x, long off, long runs, int len, long stride, float c, float c2);

    /**
     * Merges the minimum of the runs into {@code minMax[0]} and the maximum into {@code minMax[1]}
     * (start from {+inf, -inf}); a NaN propagates as in {@link Math#min}/{@link Math#max}. A zero extreme
     * may come back as either zero: they compare equal, and the L_p spread max(hi - mean, mean - lo) is the
     * same for both.
     */
    void minMax(MemorySegment x, long off, long runs, int len, long stride, float[] minMax);

    /**
     * Adds to {@code counts[0]} the number of values {@code >= hi} and to {@code counts[1]} the number
     * {@code <= lo} over the runs (NaN counts in neither). With hi = lo = c, {@code counts[0] - counts[1]}
     * is {@code Σ sign(x - c)}; with hi = max and lo = min it counts the ties of each extreme.
     */
    void countSteps(MemorySegment x, long off, long runs, int len, long stride, float hi, float lo, long[] counts);

    /**
     * {@code dx = p * dy + (r + (sHi + sLo))} over the runs, {@code sHi = x >= hi ? u : 0},
     * {@code sLo = x <= lo ? v : 0}; dx may be dy (same offsets). With hi = lo = c, u = q, v = -q the
     * step term is exactly {@code q * sign(x - c)}.
     */
    void gradApplySteps(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                        long runs, int len, long stride, float p, float r, float hi, float u, float lo, float v);

    // --- the same over consecutive short runs, each with its own coefficients (L_p BatchNorm with short S):
    // the layout of centredSumsRuns (a sample is `runs` runs of len floats back to back, runs [from, to) of every
    // sample, sample i from byte off + i * sampleStride); run r's coefficients from coef[coefOff + r * coefStride]
    // on, its results added into out[outOff + r] (no other slot is written). A run's results are the same bits
    // whatever [from, to) holds it. Each sum of a run is float lanes of at most 16 * ceil(len / lanes) values,
    // their tree, in double. The implementation may read the floats of runs next to [from, to) in the same
    // sample; nothing outside the samples' runs.

    /**
     * {@link #sumAbsDiff} of each run r in [from, to) over the samples, about its own centre c = coef[k],
     * c2 = coef[k + 1] (k = coefOff + r * coefStride), added into {@code out[outOff + r]}.
     */
    void sumAbsDiffRuns(MemorySegment x, long off, long samples, long sampleStride, int runs, int len, int from,
                        int to, float[] coef, int coefOff, int coefStride, double[] out, int outOff);

    /**
     * {@link #minMax} of each run r in [from, to) over the samples, merged into {@code lo[outOff + r]} and
     * {@code hi[outOff + r]} (start from +inf, -inf) as {@link Math#min}/{@link Math#max} merge: a NaN makes
     * its own run's extremes NaN and no other run's. A zero extreme may come back as either zero.
     */
    void minMaxRuns(MemorySegment x, long off, long samples, long sampleStride, int runs, int len, int from, int to,
                    double[] lo, double[] hi, int outOff);

    /**
     * {@link #countSteps} of each run r in [from, to) over the samples with its own steps hi = coef[k],
     * lo = coef[k + 2] (k = coefOff + r * coefStride: {@link #gradApplyStepsRuns}' layout): the number of
     * values >= hi added into {@code atHi[outOff + r]}, of values <= lo into {@code atLo[outOff + r]}.
     */
    void countStepsRuns(MemorySegment x, long off, long samples, long sampleStride, int runs, int len, int from,
                        int to, float[] coef, int coefOff, int coefStride, double[] atHi, double[] atLo, int outOff);

    /**
     * {@link #gradApplySteps} over consecutive runs (run r from byte {@code r * len * 4} on), each with its own
     * {@code p, r, hi, u, lo, v = coef[k .. k + 5]}, {@code k = coefOff + run * coefStride}: the same float
     * operations as gradApplySteps run by run (so the same bits). dx may be dy (same offsets).
     */
    void gradApplyStepsRuns(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                            int runs, int len, float[] coef, int coefOff, int coefStride);

    /**
     * {@code out = a * u + b * v} element by element over one run of len floats, {@code fma(a, u, b * v)},
     * with per-element coefficients {@code a[coefOff + i]}, {@code b[coefOff + i]}. b may be null
     * ({@code out = a * u}; v is then not read and may be null). out may be u or v (same offsets).
     */
    void rowLinear(MemorySegment u, long uOff, MemorySegment v, long vOff, MemorySegment out, long outOff, int len,
                   float[] a, float[] b, int coefOff);

    // --- column primitives (BatchNorm with small S)
    // rows rows of len floats, the r-th starting r * stride bytes after the offset: a tile of an (N, C*S)
    // matrix. Per-column arrays are indexed from their offset by the column: acc[accOff + i], coef[off + i].
    // Every element goes through the same float operations (vector lanes and tail alike), so a column's
    // result does not depend on where a row starts, on the lane count or on the implementation.

    /**
     * {@code v = x[i] - shift[shiftOff + i]}, then {@code sum[accOff + i] += v} and
     * {@code sumSq[accOff + i] = fma(v, v, sumSq[accOff + i])}, in float, row after row.
     */
    void columnMoments(MemorySegment x, long xOff, int rows, int len, long stride, float[] shift, int shiftOff,
                       float[] sum, float[] sumSq, int accOff);

    /**
     * {@code sumDy[accOff + i] += dy[i]} and {@code sumDyXc[accOff + i] = fma(dy[i], x[i] - center[cOff + i],
     * sumDyXc[accOff + i])}, in float, row after row (x and dy laid out alike).
     */
    void columnCenteredSums(MemorySegment dy, long dyOff, MemorySegment x, long xOff, int rows, int len, long stride,
                            float[] center, int cOff, float[] sumDy, float[] sumDyXc, int accOff);

    /**
     * {@code y = fma(x - c, a, b)} with per-column coefficients {@code c = coef[off + i]},
     * {@code a = coef[off + cStride + i]}, {@code b = coef[off + 2*cStride + i]}: {@link #affine}'s float
     * operations; y may be x (same offsets).
     */
    void columnAffine(MemorySegment x, long xOff, MemorySegment y, long yOff, int rows, int len, long stride,
                      float[] coef, int off, int cStride);

    /**
     * {@code dx = fma(p, dy, fma(q, x - c, r))} with per-column coefficients p, q, c, r at
     * {@code coef[off + k*cStride + i]}, k = 0..3: {@link #gradApply}'s float operations; dx may be dy.
     */
    void columnGradApply(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment dx, long dxOff,
                         int rows, int len, long stride, float[] coef, int off, int cStride);

    /**
     * {@link #rowGradApply} and {@link #columnGradSums} of one run (a row) in one pass, with the same float
     * operations as the two (so the same bits): {@code dx = p * w * dy + q * (x - c) + r},
     * {@code sumDy[accOff + i] += dy[i]} and {@code sumDyXhat[accOff + i] += dy[i] * ((x[i] - c) * a)};
     * sumDyXhat is required, sumDy may be null (RMSNorm, or no dbeta wanted). dx may be dy (same offsets):
     * each element of dy is read before its dx is written.
     */
    void rowGradApplyColumns(MemorySegment dy, long dyOff, MemorySegment x, long xOff, MemorySegment w, long wOff,
                             MemorySegment dx, long dxOff, int len, float p, float q, float c, float r, float a,
                             float[] sumDy, float[] sumDyXhat, int accOff);
}
