package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.quicktheories.QuickTheory.qt;

import io.github.vecnorm.Cases.Case;
import io.github.vecnorm.Cases.Data;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/**
 * Training and inference forward of the public API against the double {@link Reference}, with the
 * tolerances of {@link ErrorModel} (derived there, per channel, from m, the range, the variance, eps).
 */
class BatchNormForwardPropertiesTest {

    static final ErrorModel MODEL = ErrorModel.active();

    @Test
    void trainingForwardMatchesReference() {
        Tally t = new Tally("trainingForward", Tally.keys(Tally.SHAPE_KEYS, Tally.DATA_KEYS,
                new String[] {"momentum", "cumulative", "noRunningStats", "affineOff", "misaligned"}));
        qt().withExamples(1000).withShrinkCycles(60).forAll(Cases.cases(2)).checkAssert(k -> training(k, t));
        t.report();
    }

    @Test
    void inferenceForwardMatchesReference() {
        Tally t = new Tally("inferenceForward", Tally.keys(Tally.SHAPE_KEYS, Tally.DATA_KEYS));
        qt().withExamples(600).withShrinkCycles(60).forAll(Cases.cases(1)).checkAssert(k -> inference(k, t));
        t.report();
    }

    static void training(Case k, Tally t) {
        Data d = Cases.data(k);
        Shape shape = k.shape();
        int n = k.n(), cs = k.c(), s = k.s(), m = k.m();
        Cases.Recipe r = k.recipe();
        double eps = r.eps();
        boolean cumulative = r.momentum() < 0;
        boolean withRunning = (r.seed() & 7) != 0;
        t.shape(k);
        t.count("momentum", withRunning && !cumulative);
        t.count("cumulative", withRunning && cumulative);
        t.count("noRunningStats", !withRunning);
        t.count("affineOff", d.gamma == null && d.beta == null);
        t.count("misaligned", r.misalign() != 0);

        double[] x = Reference.widen(d.x);
        Reference.Stats st = Reference.stats(n, cs, s, x, eps);
        t.data(k, st, eps);
        double[] gamma = Reference.widen(d.gamma), beta = Reference.widen(d.beta);
        double[] yRef = Reference.normalize(n, cs, s, x, st.mean(), st.invstd(), gamma, beta);

        try (Arena arena = Arena.ofConfined()) {
            int mis = r.misalign();
            MemorySegment xs = TestData.copyOf(arena, d.x, mis);
            MemorySegment ys = TestData.filled(arena, x.length, Float.NaN, (mis + 3) % 8);
            MemorySegment gs = TestData.copyOf(arena, d.gamma, mis);
            MemorySegment bs = TestData.copyOf(arena, d.beta, mis);
            MemorySegment sm = TestData.filled(arena, cs, Float.NaN, mis);
            MemorySegment si = TestData.filled(arena, cs, Float.NaN, mis);
            MemorySegment rm = TestData.copyOf(arena, d.runMean, mis);
            MemorySegment rv = TestData.copyOf(arena, d.runVar, mis);
            RunningStats running = !withRunning ? null
                    : cumulative ? RunningStats.cumulative(rm, rv, r.tracked())
                    : RunningStats.withMomentum(rm, rv, r.momentum());
            long trackedBefore = running == null ? 0 : running.numBatchesTracked();

            BatchNorm.forwardTraining(shape, xs, ys, gs, bs, sm, si, running, eps);

            float[] y = TestData.read(ys), saveMean = TestData.read(sm), saveInvstd = TestData.read(si);
            ErrorModel.StatBounds[] bounds = new ErrorModel.StatBounds[cs];
            for (int c = 0; c < cs; c++) {
                bounds[c] = MODEL.stats(n, cs, s, st.range()[c], st.var()[c], eps, st.mean()[c], x[Reference.at(0, c, 0, cs, s)]);
                String in = "channel " + c + " of " + k;
                t.close("saveMean", c, saveMean[c], st.mean()[c], MODEL.saveMean(bounds[c], st.mean()[c]), in);
                t.close("saveInvstd", c, saveInvstd[c], st.invstd()[c], MODEL.saveInvstd(bounds[c], st.invstd()[c]), in);
            }
            for (int b = 0; b < n; b++) {
                for (int c = 0; c < cs; c++) {
                    double g = gamma == null ? 1 : gamma[c], be = beta == null ? 0 : beta[c];
                    for (int i = 0; i < s; i++) {
                        int j = Reference.at(b, c, i, cs, s);
                        double tol = MODEL.y(bounds[c], x[j] - st.mean()[c], st.mean()[c], g, st.invstd()[c], be, yRef[j]);
                        t.close("y", j, y[j], yRef[j], tol, "x = " + d.x[j] + ", channel " + c + " of " + k);
                    }
                }
            }
            if (running == null) {
                // untouched
                assertEquals(d.runMean[0], TestData.read(rm)[0]);
                return;
            }
            assertEquals(trackedBefore + 1, running.numBatchesTracked(), "numBatchesTracked after one batch");
            float[] rmOld = d.runMean, rvOld = d.runVar;
            checkRunning(t, k, st, bounds, Reference.factor(cumulative ? null : r.momentum(), trackedBefore),
                    rmOld, rvOld, TestData.read(rm), TestData.read(rv));

            // a second batch (the same data) folds in with the next factor: 1/(tracked+2) when cumulative
            float[] rm1 = TestData.read(rm), rv1 = TestData.read(rv);
            BatchNorm.forwardTraining(shape, xs, ys, gs, bs, sm, si, running, eps);
            assertEquals(trackedBefore + 2, running.numBatchesTracked(), "numBatchesTracked after two batches");
            checkRunning(t, k, st, bounds, Reference.factor(cumulative ? null : r.momentum(), trackedBefore + 1),
                    rm1, rv1, TestData.read(rm), TestData.read(rv));
        }
    }

    private static void checkRunning(Tally t, Case k, Reference.Stats st, ErrorModel.StatBounds[] bounds,
                                     double factor, float[] rmOld, float[] rvOld, float[] rmNew, float[] rvNew) {
        int m = k.m();
        double[] rmRef = Reference.runningMean(Reference.widen(rmOld), st.mean(), factor);
        double[] rvRef = Reference.runningVar(Reference.widen(rvOld), st.var(), m, factor);
        for (int c = 0; c < rmRef.length; c++) {
            String in = "channel " + c + ", factor " + factor + ", old (" + rmOld[c] + ", " + rvOld[c] + ") of " + k;
            t.close("runningMean", c, rmNew[c], rmRef[c],
                    MODEL.runningMean(bounds[c], factor, rmRef[c], rmOld[c], st.mean()[c]), in);
            t.close("runningVar", c, rvNew[c], rvRef[c],
                    MODEL.runningVar(bounds[c], factor, m, rvRef[c], rvOld[c], st.var()[c]), in);
        }
    }

    static void inference(Case k, Tally t) {
        Data d = Cases.data(k);
        int n = k.n(), cs = k.c(), s = k.s();
        double eps = k.recipe().eps();
        t.shape(k);
        double[] x = Reference.widen(d.x);
        t.data(k, Reference.stats(n, cs, s, x, eps), eps);
        double[] gamma = Reference.widen(d.gamma), beta = Reference.widen(d.beta);
        double[] rm = Reference.widen(d.runMean), rv = Reference.widen(d.runVar);
        double[] yRef = Reference.forwardInference(n, cs, s, x, gamma, beta, rm, rv, eps);
        try (Arena arena = Arena.ofConfined()) {
            int mis = k.recipe().misalign();
            MemorySegment xs = TestData.copyOf(arena, d.x, mis);
            MemorySegment ys = TestData.filled(arena, x.length, Float.NaN, 7 - mis);
            BatchNorm.forwardInference(k.shape(), xs, ys, TestData.copyOf(arena, d.gamma, mis),
                    TestData.copyOf(arena, d.beta, mis), TestData.copyOf(arena, d.runMean, mis),
                    TestData.copyOf(arena, d.runVar, mis), eps);
            float[] y = TestData.read(ys);
            for (int b = 0; b < n; b++) {
                for (int c = 0; c < cs; c++) {
                    double a = (gamma == null ? 1 : gamma[c]) / Math.sqrt(rv[c] + eps);
                    double be = beta == null ? 0 : beta[c];
                    for (int i = 0; i < s; i++) {
                        int j = Reference.at(b, c, i, cs, s);
                        t.close("inference y", j, y[j], yRef[j], ErrorModel.yInference(x[j] - rm[c], a, yRef[j], be),
                                "x = " + d.x[j] + ", running (" + rm[c] + ", " + rv[c] + "), channel " + c + " of " + k);
                    }
                }
            }
        }
    }
}
