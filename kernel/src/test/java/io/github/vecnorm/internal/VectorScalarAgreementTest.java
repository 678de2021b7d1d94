package io.github.vecnorm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.quicktheories.QuickTheory.qt;

import io.github.vecnorm.Cases;
import io.github.vecnorm.Cases.Case;
import io.github.vecnorm.Cases.Data;
import io.github.vecnorm.ErrorModel;
import io.github.vecnorm.Reference;
import io.github.vecnorm.Tally;
import io.github.vecnorm.TestData;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The BatchNorm bodies run on the Vector API primitives and on the scalar twin agree: each result of
 * either is within its {@link ErrorModel} bound of the double reference, so the two differ by at most
 * the sum of the two bounds. Element-wise passes with the same coefficients (inference forward and
 * backward dx) must agree bit for bit, and so must everything on the column path (small S), whose
 * columns go through the same float operations in both. Skipped where the Vector API cannot be loaded (the 'scalar'
 * surefire execution).
 */
class VectorScalarAgreementTest {

    @Test
    void vectorAgreesWithScalar() {
        Primitives vector = Kernels.vectorOrNull();
        Assumptions.assumeTrue(vector != null, "the Vector API is not available in this JVM");
        Primitives scalar = Kernels.scalar();
        ErrorModel mv = ErrorModel.of(vector), ms = ErrorModel.of(scalar);
        Tally t = new Tally("vectorVsScalar", Tally.keys(Tally.SHAPE_KEYS, Tally.DATA_KEYS));
        qt().withExamples(600).withShrinkCycles(60).forAll(Cases.cases(2)).checkAssert(k -> {
            Data d = Cases.data(k);
            int n = k.n(), cs = k.c(), s = k.s(), m = k.m();
            double eps = k.recipe().eps();
            double factor = k.recipe().momentum() < 0 ? 0.5 : k.recipe().momentum();
            double[] x = Reference.widen(d.x);
            Reference.Stats st = Reference.stats(n, cs, s, x, eps);
            t.shape(k);
            t.data(k, st, eps);
            try (Arena arena = Arena.ofConfined()) {
                Out ov = training(arena, vector, k, d, factor), os = training(arena, scalar, k, d, factor);
                boolean columns = BatchNormOps.columnPath(n, cs, s);
                if (columns) {
                    // the same float operations on every column, the same double finishing: the same bits
                    assertArrayEquals(os.mean, ov.mean, "column path saveMean, vector vs scalar: " + k);
                    assertArrayEquals(os.invstd, ov.invstd, "column path saveInvstd, vector vs scalar: " + k);
                    assertArrayEquals(os.rm, ov.rm, "column path runningMean, vector vs scalar: " + k);
                    assertArrayEquals(os.rv, ov.rv, "column path runningVar, vector vs scalar: " + k);
                    assertArrayEquals(os.y, ov.y, "column path y, vector vs scalar: " + k);
                }
                for (int c = 0; c < cs; c++) {
                    double mu = st.mean()[c], inv = st.invstd()[c], first = x[Reference.at(0, c, 0, cs, s)];
                    ErrorModel.StatBounds bv = mv.stats(n, cs, s, st.range()[c], st.var()[c], eps, mu, first);
                    ErrorModel.StatBounds bs = ms.stats(n, cs, s, st.range()[c], st.var()[c], eps, mu, first);
                    String in = "channel " + c + " of " + k;
                    t.close("saveMean", c, ov.mean[c], os.mean[c], mv.saveMean(bv, mu) + ms.saveMean(bs, mu), in);
                    t.close("saveInvstd", c, ov.invstd[c], os.invstd[c], mv.saveInvstd(bv, inv) + ms.saveInvstd(bs, inv), in);
                    double rmRef = (1 - factor) * d.runMean[c] + factor * mu;
                    double rvRef = (1 - factor) * d.runVar[c] + factor * st.var()[c] * m / (m - 1);
                    t.close("runningMean", c, ov.rm[c], os.rm[c], mv.runningMean(bv, factor, rmRef, d.runMean[c], mu)
                            + ms.runningMean(bs, factor, rmRef, d.runMean[c], mu), in);
                    t.close("runningVar", c, ov.rv[c], os.rv[c], mv.runningVar(bv, factor, m, rvRef, d.runVar[c], st.var()[c])
                            + ms.runningVar(bs, factor, m, rvRef, d.runVar[c], st.var()[c]), in);
                    double g = d.gamma == null ? 1 : d.gamma[c], be = d.beta == null ? 0 : d.beta[c];
                    for (int b = 0; b < n; b++) {
                        for (int i = 0; i < s; i++) {
                            int j = Reference.at(b, c, i, cs, s);
                            double yRef = (x[j] - mu) * inv * g + be;
                            t.close("y", j, ov.y[j], os.y[j], mv.y(bv, x[j] - mu, mu, g, inv, be, yRef)
                                    + ms.y(bs, x[j] - mu, mu, g, inv, be, yRef), "x = " + d.x[j] + ", " + in);
                        }
                    }
                }

                // backward from the same saved statistics (the scalar ones)
                MemorySegment xs = TestData.copyOf(arena, d.x), dys = TestData.copyOf(arena, d.dy);
                MemorySegment gs = TestData.copyOf(arena, d.gamma);
                MemorySegment sm = TestData.copyOf(arena, os.mean), si = TestData.copyOf(arena, os.invstd);
                float[][] gv = backward(arena, vector, k, dys, xs, gs, sm, si), gsc = backward(arena, scalar, k, dys, xs, gs, sm, si);
                if (columns) {
                    assertArrayEquals(gsc[0], gv[0], "column path dx, vector vs scalar: " + k);
                    assertArrayEquals(gsc[1], gv[1], "column path dgamma, vector vs scalar: " + k);
                    assertArrayEquals(gsc[2], gv[2], "column path dbeta, vector vs scalar: " + k);
                }
                double[] mean = Reference.widen(os.mean), invF = Reference.widen(os.invstd);
                Reference.Grads ref = Reference.backward(n, cs, s, Reference.widen(d.dy), x, Reference.widen(d.gamma), mean, invF);
                for (int c = 0; c < cs; c++) {
                    Reference.Sum absDy = new Reference.Sum(), absDyXc = new Reference.Sum(), a = new Reference.Sum(), bb = new Reference.Sum();
                    for (int b = 0; b < n; b++) {
                        for (int i = 0; i < s; i++) {
                            int j = Reference.at(b, c, i, cs, s);
                            absDy.add(Math.abs(d.dy[j]));
                            absDyXc.add(Math.abs(d.dy[j] * (x[j] - mean[c])));
                            a.add(d.dy[j]);
                            bb.add(d.dy[j] * (x[j] - mean[c]));
                        }
                    }
                    ErrorModel.SumBounds sv = mv.sums(n, cs, s, absDy.value(), absDyXc.value());
                    ErrorModel.SumBounds ss = ms.sums(n, cs, s, absDy.value(), absDyXc.value());
                    String in = "channel " + c + " of " + k;
                    t.close("dgamma", c, gv[1][c], gsc[1][c], ErrorModel.dgamma(sv, invF[c], ref.dgamma()[c])
                            + ErrorModel.dgamma(ss, invF[c], ref.dgamma()[c]), in);
                    t.close("dbeta", c, gv[2][c], gsc[2][c], ErrorModel.dbeta(sv, ref.dbeta()[c])
                            + ErrorModel.dbeta(ss, ref.dbeta()[c]), in);
                    double g = d.gamma == null ? 1 : d.gamma[c];
                    for (int b = 0; b < n; b++) {
                        for (int i = 0; i < s; i++) {
                            int j = Reference.at(b, c, i, cs, s);
                            double tol = ErrorModel.dx(sv, m, g, invF[c], d.dy[j], x[j] - mean[c], a.value(), bb.value(), ref.dx()[j])
                                    + ErrorModel.dx(ss, m, g, invF[c], d.dy[j], x[j] - mean[c], a.value(), bb.value(), ref.dx()[j]);
                            t.close("dx", j, gv[0][j], gsc[0][j], tol, "x = " + d.x[j] + ", dy = " + d.dy[j] + ", " + in);
                        }
                    }
                }

                // element-wise passes with identical coefficients: identical bits
                MemorySegment rms = TestData.copyOf(arena, d.runMean), rvs = TestData.copyOf(arena, d.runVar);
                MemorySegment bes = TestData.copyOf(arena, d.beta);
                MemorySegment yv = TestData.allocate(arena, x.length, 1), ys = TestData.allocate(arena, x.length, 2);
                BatchNormOps.forwardInference(vector, n, cs, s, xs, yv, gs, bes, rms, rvs, eps, Loop.SERIAL);
                BatchNormOps.forwardInference(scalar, n, cs, s, xs, ys, gs, bes, rms, rvs, eps, Loop.SERIAL);
                assertArrayEquals(TestData.read(ys), TestData.read(yv), "inference y, vector vs scalar: " + k);
                BatchNormOps.backwardInference(vector, n, cs, s, dys, xs, gs, rms, rvs, eps, yv, null, null, Loop.SERIAL);
                BatchNormOps.backwardInference(scalar, n, cs, s, dys, xs, gs, rms, rvs, eps, ys, null, null, Loop.SERIAL);
                assertArrayEquals(TestData.read(ys), TestData.read(yv), "inference dx, vector vs scalar: " + k);
            }
        });
        t.report();
    }

    /** Outputs of a training forward. */
    record Out(float[] y, float[] mean, float[] invstd, float[] rm, float[] rv) {
    }

    static Out training(Arena arena, Primitives p, Case k, Data d, double factor) {
        int cs = k.c(), mis = k.recipe().misalign();
        MemorySegment ys = TestData.allocate(arena, d.x.length, mis);
        MemorySegment sm = TestData.allocate(arena, cs, mis), si = TestData.allocate(arena, cs, mis);
        MemorySegment rm = TestData.copyOf(arena, d.runMean, mis), rv = TestData.copyOf(arena, d.runVar, mis);
        BatchNormOps.forwardTraining(p, k.n(), cs, k.s(), TestData.copyOf(arena, d.x, mis), ys,
                TestData.copyOf(arena, d.gamma, mis), TestData.copyOf(arena, d.beta, mis), sm, si, rm, rv, factor,
                k.recipe().eps(), Loop.SERIAL);
        return new Out(TestData.read(ys), TestData.read(sm), TestData.read(si), TestData.read(rm), TestData.read(rv));
    }

    static float[][] backward(Arena arena, Primitives p, Case k, MemorySegment dy, MemorySegment x, MemorySegment gamma,
                              MemorySegment sm, MemorySegment si) {
        int cs = k.c();
        MemorySegment dx = TestData.allocate(arena, dy.byteSize() / 4, 3);
        MemorySegment dg = TestData.allocate(arena, cs, 0), db = TestData.allocate(arena, cs, 0);
        BatchNormOps.backward(p, k.n(), cs, k.s(), dy, x, gamma, sm, si, dx, dg, db, Loop.SERIAL);
        return new float[][] {TestData.read(dx), TestData.read(dg), TestData.read(db)};
    }
}
