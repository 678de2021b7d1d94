package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.quicktheories.QuickTheory.qt;

import io.github.vecnorm.Cases.Case;
import io.github.vecnorm.Cases.Data;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/**
 * Training and inference backward of the public API against the double {@link Reference} (fed the
 * statistics the kernel saved, as floats), with {@link ErrorModel}'s derived tolerances; and the output
 * mask: any subset of (dx, dgamma, dbeta) requested gives the same bits as all three.
 */
class BatchNormBackwardPropertiesTest {

    static final ErrorModel MODEL = ErrorModel.active();

    @Test
    void trainingBackwardMatchesReference() {
        Tally t = new Tally("trainingBackward", Tally.keys(Tally.SHAPE_KEYS, Tally.DATA_KEYS,
                new String[] {"mask dx", "mask dgamma", "mask dbeta", "mask all", "gammaNull", "dyZeroMean", "dyConstant"}));
        qt().withExamples(1000).withShrinkCycles(60).forAll(Cases.cases(2)).checkAssert(k -> training(k, t));
        t.report();
    }

    @Test
    void inferenceBackwardMatchesReference() {
        Tally t = new Tally("inferenceBackward", Tally.keys(Tally.SHAPE_KEYS, Tally.DATA_KEYS,
                new String[] {"mask dx", "mask dgamma", "mask dbeta", "mask all"}));
        qt().withExamples(600).withShrinkCycles(60).forAll(Cases.cases(1)).checkAssert(k -> inference(k, t));
        t.report();
    }

    private static void countMask(Tally t, int mask) {
        t.count("mask dx", mask == 1);
        t.count("mask dgamma", mask == 2);
        t.count("mask dbeta", mask == 4);
        t.count("mask all", mask == 7);
    }

    /** Σ|v| per channel and Σ v per channel of v = dy * (x - center[c]) (center null: v = dy). */
    static double[][] channelSums(Case k, float[] dy, float[] x, double[] center) {
        int n = k.n(), cs = k.c(), s = k.s();
        double[] abs = new double[cs];
        double[] sum = new double[cs];
        for (int c = 0; c < cs; c++) {
            Reference.Sum a = new Reference.Sum(), v = new Reference.Sum();
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < s; i++) {
                    int j = Reference.at(b, c, i, cs, s);
                    double term = center == null ? dy[j] : (double) dy[j] * ((double) x[j] - center[c]);
                    a.add(Math.abs(term));
                    v.add(term);
                }
            }
            abs[c] = a.value();
            sum[c] = v.value();
        }
        return new double[][] {abs, sum};
    }

    static void training(Case k, Tally t) {
        Data d = Cases.data(k);
        int n = k.n(), cs = k.c(), s = k.s(), m = k.m();
        Cases.Recipe r = k.recipe();
        int mask = r.mask(), mis = r.misalign();
        t.shape(k);
        countMask(t, mask);
        t.count("gammaNull", d.gamma == null);
        t.count("dyZeroMean", r.dyKind() == 0);
        t.count("dyConstant", r.dyKind() == 2);
        double[] x = Reference.widen(d.x), dy = Reference.widen(d.dy);
        t.data(k, Reference.stats(n, cs, s, x, r.eps()), r.eps());

        try (Arena arena = Arena.ofConfined()) {
            MemorySegment xs = TestData.copyOf(arena, d.x, mis), dys = TestData.copyOf(arena, d.dy, (mis + 5) % 8);
            MemorySegment gs = TestData.copyOf(arena, d.gamma, mis);
            MemorySegment sm = TestData.allocate(arena, cs, mis), si = TestData.allocate(arena, cs, mis);
            MemorySegment ys = TestData.allocate(arena, x.length, mis);
            BatchNorm.forwardTraining(k.shape(), xs, ys, gs, null, sm, si, null, r.eps());
            float[] meanF = TestData.read(sm), invF = TestData.read(si);

            MemorySegment dx = TestData.filled(arena, x.length, Float.NaN, (mis + 1) % 8);
            MemorySegment dg = TestData.filled(arena, cs, Float.NaN, mis), db = TestData.filled(arena, cs, Float.NaN, mis);
            BatchNorm.backward(k.shape(), dys, xs, gs, sm, si, dx, dg, db);
            float[] dxK = TestData.read(dx), dgK = TestData.read(dg), dbK = TestData.read(db);

            double[] mean = Reference.widen(meanF), inv = Reference.widen(invF), gamma = Reference.widen(d.gamma);
            Reference.Grads ref = Reference.backward(n, cs, s, dy, x, gamma, mean, inv);
            double[][] sumDy = channelSums(k, d.dy, d.x, null), sumDyXc = channelSums(k, d.dy, d.x, mean);
            ErrorModel.SumBounds[] bounds = new ErrorModel.SumBounds[cs];
            for (int c = 0; c < cs; c++) {
                bounds[c] = MODEL.sums(n, cs, s, sumDy[0][c], sumDyXc[0][c]);
                String in = "channel " + c + " (saved mean " + meanF[c] + ", invstd " + invF[c] + ") of " + k;
                t.close("dbeta", c, dbK[c], ref.dbeta()[c], ErrorModel.dbeta(bounds[c], ref.dbeta()[c]), in);
                t.close("dgamma", c, dgK[c], ref.dgamma()[c], ErrorModel.dgamma(bounds[c], inv[c], ref.dgamma()[c]), in);
            }
            for (int b = 0; b < n; b++) {
                for (int c = 0; c < cs; c++) {
                    double g = gamma == null ? 1 : gamma[c];
                    for (int i = 0; i < s; i++) {
                        int j = Reference.at(b, c, i, cs, s);
                        double tol = ErrorModel.dx(bounds[c], m, g, inv[c], dy[j], x[j] - mean[c],
                                sumDy[1][c], sumDyXc[1][c], ref.dx()[j]);
                        t.close("dx", j, dxK[j], ref.dx()[j], tol,
                                "x = " + d.x[j] + ", dy = " + d.dy[j] + ", channel " + c + " of " + k);
                    }
                }
            }

            // the output mask: what is requested alone comes out bit for bit as when all are requested
            MemorySegment dx2 = (mask & 1) != 0 ? TestData.filled(arena, x.length, Float.NaN, mis) : null;
            MemorySegment dg2 = (mask & 2) != 0 ? TestData.filled(arena, cs, Float.NaN, mis) : null;
            MemorySegment db2 = (mask & 4) != 0 ? TestData.filled(arena, cs, Float.NaN, mis) : null;
            BatchNorm.backward(k.shape(), dys, xs, gs, sm, si, dx2, dg2, db2);
            if (dx2 != null) assertArrayEquals(dxK, TestData.read(dx2), "dx requested with mask " + mask + ": " + k);
            if (dg2 != null) assertArrayEquals(dgK, TestData.read(dg2), "dgamma requested with mask " + mask + ": " + k);
            if (db2 != null) assertArrayEquals(dbK, TestData.read(db2), "dbeta requested with mask " + mask + ": " + k);
        }
    }

    static void inference(Case k, Tally t) {
        Data d = Cases.data(k);
        int n = k.n(), cs = k.c(), s = k.s(), m = k.m();
        Cases.Recipe r = k.recipe();
        int mask = r.mask(), mis = r.misalign();
        double eps = r.eps();
        t.shape(k);
        countMask(t, mask);
        double[] x = Reference.widen(d.x), dy = Reference.widen(d.dy);
        t.data(k, Reference.stats(n, cs, s, x, eps), eps);
        double[] gamma = Reference.widen(d.gamma), rm = Reference.widen(d.runMean), rv = Reference.widen(d.runVar);
        Reference.Grads ref = Reference.backwardInference(n, cs, s, dy, x, gamma, rm, rv, eps);
        double[][] sumDy = channelSums(k, d.dy, d.x, null), sumDyXc = channelSums(k, d.dy, d.x, rm);

        try (Arena arena = Arena.ofConfined()) {
            MemorySegment xs = TestData.copyOf(arena, d.x, mis), dys = TestData.copyOf(arena, d.dy, (mis + 2) % 8);
            MemorySegment gs = TestData.copyOf(arena, d.gamma, mis);
            MemorySegment rms = TestData.copyOf(arena, d.runMean, mis), rvs = TestData.copyOf(arena, d.runVar, mis);
            MemorySegment dx = (mask & 1) != 0 ? TestData.filled(arena, x.length, Float.NaN, (mis + 1) % 8) : null;
            MemorySegment dg = (mask & 2) != 0 ? TestData.filled(arena, cs, Float.NaN, mis) : null;
            MemorySegment db = (mask & 4) != 0 ? TestData.filled(arena, cs, Float.NaN, mis) : null;
            BatchNorm.backwardInference(k.shape(), dys, xs, gs, rms, rvs, eps, dx, dg, db);

            for (int c = 0; c < cs; c++) {
                double inv = 1.0 / Math.sqrt(rv[c] + eps);
                ErrorModel.SumBounds bounds = MODEL.sums(n, cs, s, sumDy[0][c], sumDyXc[0][c]);
                String in = "channel " + c + " (running " + rm[c] + ", " + rv[c] + ") of " + k;
                if (db != null) {
                    t.close("dbeta", c, TestData.read(db)[c], ref.dbeta()[c], ErrorModel.dbeta(bounds, ref.dbeta()[c]), in);
                }
                if (dg != null) {
                    t.close("dgamma", c, TestData.read(dg)[c], ref.dgamma()[c],
                            ErrorModel.dgamma(bounds, inv, ref.dgamma()[c]), in);
                }
            }
            if (dx != null) {
                float[] dxK = TestData.read(dx);
                for (int j = 0; j < dxK.length; j++) {
                    t.close("dx", j, dxK[j], ref.dx()[j], ErrorModel.dxInference(ref.dx()[j]), "dy = " + d.dy[j] + " of " + k);
                }
            }
        }
    }
}
