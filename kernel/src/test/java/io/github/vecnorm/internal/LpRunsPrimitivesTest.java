package io.github.vecnorm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.longRange;
import static org.quicktheories.generators.Generate.range;

import io.github.vecnorm.ErrorModel;
import io.github.vecnorm.Reference;
import io.github.vecnorm.Tally;
import io.github.vecnorm.TestData;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The L_p primitives over a sample's consecutive short runs ({@link Primitives#sumAbsDiffRuns},
 * {@link Primitives#minMaxRuns}, {@link Primitives#countStepsRuns}, {@link Primitives#gradApplyStepsRuns}), for
 * both implementations: each run's results against a double computation over its own values (Σ|x - c - c2|
 * within the sums' bounds; the extremes and the counts exactly), the same bits whatever [from, to) holds the
 * run and whatever another run holds (an infinity, a NaN), and no slot outside [from, to) written;
 * gradApplyStepsRuns bit for bit gradApplySteps run by run.
 */
class LpRunsPrimitivesTest {

    /** A sample layout: samples of runs runs of len floats, gap floats apart, from float off; slots from outOff. */
    private record Lay(int off, int samples, int sample, int runs, int len, int coefOff, int coefStride, int outOff) {
        int at(int i, int r, int e) {
            return off + i * sample + r * len + e;
        }
    }

    private static final double SUM0 = 1.5, LO0 = 7.25, HI0 = -7.25, HI_COUNT0 = 3, LO_COUNT0 = 5;

    /** {Σ|x - c - c2|, lo, hi, #x >= hi_r, #x <= lo_r} by run of runs [from, to); asserts other slots untouched. */
    private static double[][] results(Primitives p, float[] x, float[] coef, Lay k, int from, int to) {
        int slots = k.outOff() + k.runs() + 2;
        double[][] raw = new double[5][slots];
        double[] init = {SUM0, LO0, HI0, HI_COUNT0, LO_COUNT0};
        for (int j = 0; j < 5; j++) java.util.Arrays.fill(raw[j], init[j]);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment xs = TestData.copyOf(arena, x);
            long o = k.off() * 4L, stride = k.sample() * 4L;
            p.sumAbsDiffRuns(xs, o, k.samples(), stride, k.runs(), k.len(), from, to, coef, k.coefOff(), k.coefStride(),
                    raw[0], k.outOff());
            p.minMaxRuns(xs, o, k.samples(), stride, k.runs(), k.len(), from, to, raw[1], raw[2], k.outOff());
            // countStepsRuns reads hi at +2 and lo at +4 of a gradApplyStepsRuns block
            p.countStepsRuns(xs, o, k.samples(), stride, k.runs(), k.len(), from, to, coef, k.coefOff() + 2,
                    k.coefStride(), raw[3], raw[4], k.outOff());
        }
        double[][] out = new double[5][k.runs()];
        for (int slot = 0; slot < slots; slot++) {
            int r = slot - k.outOff();
            for (int j = 0; j < 5; j++) {
                if (r >= from && r < to) {
                    out[j][r] = raw[j][slot];
                } else {
                    assertEquals(init[j], raw[j][slot], p.name() + ": result " + j + " wrote slot " + slot
                            + " outside runs [" + from + ", " + to + ") from slot " + k.outOff());
                }
            }
        }
        return out;
    }

    @Test
    void reductionsAreEachRunsOwnWhateverTheSplit() {
        Primitives vector = Kernels.vectorOrNull();
        Tally t = new Tally("primitive sumAbsDiffRuns/minMaxRuns/countStepsRuns", "examples", "len<16", "16<=len<64",
                "split", "poisoned", "samples>16", "manyRuns", "ties", "wholeVectors");
        // past this many runs the vector implementation reduces each run where it ends, not across the samples
        int manyRuns = 8192 / (vector == null ? 1 : vector.lanes()) + 1;
        qt().withExamples(250).forAll(range(1, 5), range(1, 9), range(1, 70), longRange(0, Long.MAX_VALUE))
                .checkAssert((fewSamples, fewRuns, anyLen, seed) -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    // now and then whole vectors of either width
                    int len = rnd.nextInt(5) == 0 ? 16 * (1 + rnd.nextInt(3)) : anyLen;
                    boolean many = rnd.nextInt(8) == 0;
                    int runs = many ? manyRuns + rnd.nextInt(3) : fewRuns;
                    int samples = !many && rnd.nextInt(6) == 0 ? 17 + rnd.nextInt(4) : fewSamples;
                    t.count("manyRuns", many);
                    t.count("samples>16", samples > 16);
                    // tight buffers: a read past the last run throws
                    int gap = rnd.nextInt(3), sample = runs * len + gap, off = rnd.nextInt(4);
                    int total = off + (samples - 1) * sample + runs * len;
                    int coefStride = 6 + rnd.nextInt(2), coefOff = rnd.nextInt(3), outOff = rnd.nextInt(3);
                    Lay lay = new Lay(off, samples, sample, runs, len, coefOff, coefStride, outOff);
                    float[] x = new float[total], coef = new float[coefOff + runs * coefStride];
                    double offset = rnd.nextBoolean() ? 0 : 1000;
                    // now and then few distinct values: ties at the steps and at the extremes
                    boolean ties = rnd.nextInt(4) == 0;
                    for (int i = 0; i < total; i++) {
                        x[i] = ties ? (float) (offset + rnd.nextInt(3) - 1) : (float) (offset + 5 * rnd.nextGaussian());
                    }
                    t.count("ties", ties);
                    for (int r = 0; r < runs; r++) {
                        int k = coefOff + r * coefStride;
                        double mean = offset + 0.3 * rnd.nextGaussian();
                        coef[k] = (float) mean;
                        coef[k + 1] = (float) (mean - coef[k]);
                        // steps at values of the run (ties) or about its centre
                        coef[k + 2] = rnd.nextBoolean() ? x[lay.at(rnd.nextInt(samples), r, rnd.nextInt(len))] : coef[k];
                        coef[k + 4] = rnd.nextBoolean() ? x[lay.at(rnd.nextInt(samples), r, rnd.nextInt(len))] : coef[k];
                    }
                    int cut = rnd.nextInt(runs + 1), poisoned = rnd.nextInt(runs);
                    t.count("examples", true);
                    t.count("len<16", len < 16);
                    t.count("16<=len<64", len >= 16 && len < 64);
                    // runs of whole vectors: the vector implementation reads each run's own vectors
                    t.count("wholeVectors", len % 16 == 0);
                    t.count("split", cut > 0 && cut < runs);
                    for (Primitives p : PrimitivesPropertiesTest.implementations()) {
                        ErrorModel model = ErrorModel.of(p);
                        long chain = Math.min(samples, 16) * ((len + p.lanes() - 1) / p.lanes());
                        double[][] whole = results(p, x, coef, lay, 0, runs);
                        double[][] cutA = results(p, x, coef, lay, 0, cut);
                        double[][] cutB = results(p, x, coef, lay, cut, runs);
                        for (int r = 0; r < runs; r++) {
                            double[][] part = r < cut ? cutA : cutB;
                            for (int j = 0; j < 5; j++) {
                                assertEquals(Double.doubleToRawLongBits(whole[j][r]), Double.doubleToRawLongBits(part[j][r]),
                                        p.name() + ": result " + j + " of run " + r + " depends on the split at " + cut
                                                + " (samples " + samples + " runs " + runs + " len " + len + ")");
                            }
                            int k = coefOff + r * coefStride;
                            Reference.Sum abs = new Reference.Sum();
                            double lo = LO0, hi = HI0, atHi = HI_COUNT0, atLo = LO_COUNT0;
                            for (int i = 0; i < samples; i++) {
                                for (int e = 0; e < len; e++) {
                                    float v = x[lay.at(i, r, e)];
                                    abs.add(Math.abs((double) v - ((double) coef[k] + coef[k + 1])));
                                    lo = Math.min(lo, v);
                                    hi = Math.max(hi, v);
                                    if (v >= coef[k + 2]) atHi++;
                                    if (v <= coef[k + 4]) atLo++;
                                }
                            }
                            String what = p.name() + " run " + r + " (samples " + samples + " runs " + runs + " len " + len + ")";
                            // each term: two float subtractions (2u|d| and u² of the centre); then the sums' chain
                            double tol = model.sumsOfChain(chain, abs.value(), abs.value()).sumDy()
                                    + 2 * ErrorModel.U * abs.value() + 3 * ErrorModel.U * ErrorModel.U * samples * len
                                    * Math.abs(offset + 1) + 0x1p-50;
                            t.close(what + " Σ|x - c|", r, whole[0][r] - SUM0, abs.value(), tol, seed);
                            assertEquals(lo, whole[1][r], what + ": minimum");
                            assertEquals(hi, whole[2][r], what + ": maximum");
                            assertEquals(atHi, whole[3][r], what + ": count of x >= " + coef[k + 2]);
                            assertEquals(atLo, whole[4][r], what + ": count of x <= " + coef[k + 4]);
                        }
                        // another run's values, even non-finite, leave a run's results alone; its own go NaN
                        float[] px = x.clone();
                        boolean nan = rnd.nextBoolean();
                        for (int i = 0; i < samples; i++) {
                            px[lay.at(i, poisoned, rnd.nextInt(len))] = nan ? Float.NaN : Float.POSITIVE_INFINITY;
                        }
                        t.count("poisoned", runs > 1);
                        double[][] after = results(p, px, coef, lay, 0, runs);
                        for (int r = 0; r < runs; r++) {
                            if (r == poisoned) {
                                assertEquals(nan ? Double.NaN : Double.POSITIVE_INFINITY, after[2][r],
                                        p.name() + ": maximum of the poisoned run " + r);
                                continue;
                            }
                            for (int j = 0; j < 5; j++) {
                                assertEquals(Double.doubleToRawLongBits(whole[j][r]), Double.doubleToRawLongBits(after[j][r]),
                                        p.name() + ": result " + j + " of run " + r + " changed with run " + poisoned
                                                + "'s values (samples " + samples + " runs " + runs + " len " + len + ")");
                            }
                        }
                    }
                });
        t.report();
    }

    /** gradApplyStepsRuns is gradApplySteps run by run, bit for bit, in place or not, with ties at the steps. */
    @Test
    void gradApplyStepsRunsIsGradApplyStepsRunByRun() {
        Tally t = new Tally("primitive gradApplyStepsRuns", "examples", "inPlace", "len<16", "len%8!=0");
        qt().withExamples(300).forAll(range(1, 9), range(1, 70), range(6, 8), longRange(0, Long.MAX_VALUE))
                .checkAssert((runs, len, stride, seed) -> {
                    SplittableRandom rnd = new SplittableRandom(seed);
                    boolean inPlace = rnd.nextBoolean();
                    int off = rnd.nextInt(4), total = off + runs * len + 5, coefOff = rnd.nextInt(3);
                    float[] x = new float[total], dy = new float[total], coef = new float[coefOff + runs * stride];
                    for (int i = 0; i < total; i++) {
                        x[i] = (float) rnd.nextInt(-3, 4);
                        dy[i] = (float) rnd.nextGaussian();
                    }
                    for (int i = 0; i < coef.length; i++) coef[i] = (float) (10 * rnd.nextGaussian());
                    for (int r = 0; r < runs; r++) {
                        // the steps at values of the data: ties
                        coef[coefOff + r * stride + 2] = rnd.nextInt(-3, 4);
                        coef[coefOff + r * stride + 4] = rnd.nextInt(-3, 4);
                    }
                    t.count("examples", true);
                    t.count("inPlace", inPlace);
                    t.count("len<16", len < 16);
                    t.count("len%8!=0", len % 8 != 0);
                    for (Primitives p : PrimitivesPropertiesTest.implementations()) {
                        try (Arena arena = Arena.ofConfined()) {
                            MemorySegment xs = TestData.copyOf(arena, x), dys = TestData.copyOf(arena, dy);
                            MemorySegment dxs = inPlace ? dys : TestData.filled(arena, total, -7f, 0);
                            MemorySegment wantDy = TestData.copyOf(arena, dy);
                            MemorySegment want = inPlace ? wantDy : TestData.filled(arena, total, -7f, 0);
                            long o = off * 4L;
                            p.gradApplyStepsRuns(dys, o, xs, o, dxs, o, runs, len, coef, coefOff, stride);
                            for (int r = 0; r < runs; r++) {
                                int k = coefOff + r * stride;
                                long ro = (off + (long) r * len) * 4;
                                p.gradApplySteps(wantDy, ro, xs, ro, want, ro, 1, len, 0, coef[k], coef[k + 1],
                                        coef[k + 2], coef[k + 3], coef[k + 4], coef[k + 5]);
                            }
                            assertEquals(-1, dxs.mismatch(want), p.name() + ": gradApplyStepsRuns differs from"
                                    + " gradApplySteps run by run, runs " + runs + " len " + len + " in place " + inPlace);
                        }
                    }
                });
        t.report();
    }
}
