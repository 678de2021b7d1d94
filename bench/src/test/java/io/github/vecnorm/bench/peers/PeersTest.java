package io.github.vecnorm.bench.peers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.vecnorm.bench.Kernel;
import io.github.vecnorm.bench.Problem;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every native peer kernel on small problems against an independent double-precision reference
 * (two passes: mean, then centred sum of squares). A peer whose natives do not load here is skipped,
 * with the reason.
 *
 * <p>Tolerance per output element: {@code K * ulp(1f) * sqrt(m) * scale}, m the reduction length of
 * the channel (N*S, or 1 where nothing is reduced), scale the magnitude of the terms that make up the
 * value before cancellation (derived per output below), K = 8 ulps.
 */
class PeersTest {

    private static final double K = 8, U = Math.ulp(1f);
    private static final List<String> PEERS = List.of("libtorch", "onednn", "ort");

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String peer : PEERS) {
            for (Kernel k : Kernel.values()) {
                for (String dims : List.of("4x8x5x5", "2x3x7", "6x5")) out.add(Arguments.of(peer, k, dims, 1));
                out.add(Arguments.of(peer, k, "4x8x5x5", 2));
            }
        }
        return out.stream();
    }

    /** The peer, or the test is skipped when its native libraries cannot load on this machine. */
    private static PeerImpl open(String peer, Problem p) {
        Function<Problem, PeerImpl> make = switch (peer) {
            case "libtorch" -> LibTorchImpl::new;
            case "onednn" -> OneDnnImpl::new;
            case "ort" -> OrtImpl::new;
            default -> throw new IllegalArgumentException(peer);
        };
        try {
            return make.apply(p);
        } catch (LinkageError e) {
            Assumptions.abort(peer + ": native library did not load here, skipping: " + e);
        } catch (IllegalStateException e) {
            for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
                if (c instanceof LinkageError || c instanceof java.io.IOException) {
                    Assumptions.abort(peer + ": native library did not load here, skipping: " + c);
                }
            }
            throw e;
        }
        throw new AssertionError("unreachable");
    }

    @ParameterizedTest(name = "{0} {1} {2} threads={3}")
    @MethodSource("cases")
    void agreesWithDoubleReference(String peer, Kernel kernel, String dims, int threads) {
        try (Problem p = new Problem(dims, threads); PeerImpl impl = open(peer, p)) {
            // inputs change after the peer is bound: it must read the segments themselves (zero copy)
            changeInputs(p);
            Ref ref = new Ref(p);
            if (kernel == Kernel.BATCHNORM_BACKWARD) {
                // the saved statistics are inputs here: give the peer the reference's, rounded to float
                for (int c = 0; c < ref.c; c++) {
                    p.saveMean.setAtIndex(ValueLayout.JAVA_FLOAT, c, (float) ref.mean[c]);
                    p.saveInvstd.setAtIndex(ValueLayout.JAVA_FLOAT, c, (float) ref.invstd[c]);
                }
            }
            float[] saveMeanBefore = floats(p.saveMean), saveInvstdBefore = floats(p.saveInvstd);
            float[] runningMeanBefore = floats(p.runningMean), runningVarBefore = floats(p.runningVar);
            if (!impl.supports(kernel)) {
                assertEquals("ort", peer, "only ONNX Runtime lacks a kernel");
                assertEquals(Kernel.BATCHNORM_BACKWARD, kernel);
                assertThrows(IllegalArgumentException.class, () -> impl.run(kernel));
                return;
            }
            impl.publishOutputs(kernel);
            String where = peer + " " + kernel.id() + " " + dims + " threads=" + threads;
            switch (kernel) {
                case BATCHNORM_FORWARD_TRAINING -> ref.checkTraining(p, where);
                case BATCHNORM_FORWARD_INFERENCE -> {
                    ref.checkInference(p, where);
                    assertUnchanged(saveMeanBefore, p.saveMean, where + " saveMean");
                    assertUnchanged(saveInvstdBefore, p.saveInvstd, where + " saveInvstd");
                    assertUnchanged(runningMeanBefore, p.runningMean, where + " runningMean");
                    assertUnchanged(runningVarBefore, p.runningVar, where + " runningVar");
                }
                case BATCHNORM_BACKWARD -> {
                    ref.checkBackward(p, where);
                    assertUnchanged(runningMeanBefore, p.runningMean, where + " runningMean");
                }
            }
        }
    }

    /** New values in every input a kernel reads: x mirrored and shifted, other gammas, running stats moved. */
    private static void changeInputs(Problem p) {
        for (long i = 0; i < p.shape.numel(); i++) {
            p.x.setAtIndex(ValueLayout.JAVA_FLOAT, i, 0.5f - p.x.getAtIndex(ValueLayout.JAVA_FLOAT, i));
            p.dy.setAtIndex(ValueLayout.JAVA_FLOAT, i, -2 * p.dy.getAtIndex(ValueLayout.JAVA_FLOAT, i));
        }
        for (long c = 0; c < p.shape.c(); c++) {
            p.gamma.setAtIndex(ValueLayout.JAVA_FLOAT, c, -1.25f * p.gamma.getAtIndex(ValueLayout.JAVA_FLOAT, c));
            p.beta.setAtIndex(ValueLayout.JAVA_FLOAT, c, p.beta.getAtIndex(ValueLayout.JAVA_FLOAT, c) + 0.25f);
            p.runningMean.setAtIndex(ValueLayout.JAVA_FLOAT, c, 0.5f - p.runningMean.getAtIndex(ValueLayout.JAVA_FLOAT, c));
            p.runningVar.setAtIndex(ValueLayout.JAVA_FLOAT, c, 1.5f * p.runningVar.getAtIndex(ValueLayout.JAVA_FLOAT, c));
        }
    }

    /** libtorch's timed backward drops ATen's fresh tensors: only publishOutputs writes dx. */
    @Test
    void libtorchBackwardRunLeavesOutputsAlone() {
        try (Problem p = new Problem("2x3x7", 1); PeerImpl impl = open("libtorch", p)) {
            impl.run(Kernel.BATCHNORM_FORWARD_TRAINING); // valid saved statistics
            impl.run(Kernel.BATCHNORM_BACKWARD);
            assertTrue(allZero(p.dx) && allZero(p.dgamma) && allZero(p.dbeta), "run() wrote backward outputs");
            impl.publishOutputs(Kernel.BATCHNORM_BACKWARD);
            assertFalse(allZero(p.dx) || allZero(p.dgamma) || allZero(p.dbeta), "publishOutputs() wrote nothing");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("peers")
    void closedPeerRefusesToRun(String peer) {
        try (Problem p = new Problem("2x3x7", 1)) {
            PeerImpl impl = open(peer, p);
            impl.close();
            impl.close(); // idempotent
            assertThrows(IllegalStateException.class, () -> impl.run(Kernel.BATCHNORM_FORWARD_INFERENCE), peer);
        }
    }

    static List<String> peers() {
        return PEERS;
    }

    /** The double-precision reference of the problem's initial state. */
    private static final class Ref {
        final int c, n, s;
        final long m;
        final double eps, momentum;
        final double[] x, dy, gamma, beta, rm, rv;
        final double[] mean, var, invstd, meanSq, maxAbsX;

        Ref(Problem p) {
            n = (int) p.shape.n();
            c = (int) p.shape.c();
            s = (int) p.shape.s();
            m = (long) n * s;
            eps = p.eps;
            momentum = p.momentum;
            x = doubles(p.x);
            dy = doubles(p.dy);
            gamma = doubles(p.gamma);
            beta = doubles(p.beta);
            rm = doubles(p.runningMean);
            rv = doubles(p.runningVar);
            mean = new double[c];
            var = new double[c];
            invstd = new double[c];
            meanSq = new double[c];
            maxAbsX = new double[c];
            for (int ch = 0; ch < c; ch++) {
                double sum = 0;
                for (int i = 0; i < n; i++) for (int j = 0; j < s; j++) sum += x[idx(i, ch, j)];
                mean[ch] = sum / m;
                double sq = 0, raw = 0, max = 0;
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < s; j++) {
                        double v = x[idx(i, ch, j)], d = v - mean[ch];
                        sq += d * d;
                        raw += v * v;
                        max = Math.max(max, Math.abs(v));
                    }
                }
                var[ch] = sq / m;
                meanSq[ch] = raw / m;
                maxAbsX[ch] = max;
                invstd[ch] = 1 / Math.sqrt(var[ch] + eps);
            }
        }

        int idx(int i, int ch, int j) {
            return (i * c + ch) * s + j;
        }

        /** K ulps of the scale, grown by sqrt of the reduction length. */
        double tol(double scale, long length) {
            return K * U * Math.sqrt(length) * scale;
        }

        void checkTraining(Problem p, String where) {
            for (int ch = 0; ch < c; ch++) {
                // a one-pass variance loses about E[x^2]/var of its relative precision: allow for it
                double cancel = meanSq[ch] / (var[ch] + eps);
                near(mean[ch], p.saveMean, ch, tol(maxAbsX[ch], m), where + " saveMean");
                near(invstd[ch], p.saveInvstd, ch, tol(0.5 * invstd[ch] * (1 + cancel), m), where + " saveInvstd");
                double unbiased = var[ch] * m / (m - 1);
                near((1 - momentum) * rm[ch] + momentum * mean[ch], p.runningMean, ch,
                        tol(Math.abs(rm[ch]) + momentum * maxAbsX[ch], m), where + " runningMean");
                near((1 - momentum) * rv[ch] + momentum * unbiased, p.runningVar, ch,
                        tol(Math.abs(rv[ch]) + momentum * meanSq[ch] * m / (m - 1) * (1 + cancel), m),
                        where + " runningVar");
                double g = gamma[ch], b = beta[ch], is = invstd[ch];
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < s; j++) {
                        int k = idx(i, ch, j);
                        double d = x[k] - mean[ch];
                        double scale = Math.abs(g) * is * (maxAbsX[ch] + Math.abs(d) * (1 + cancel)) + Math.abs(b);
                        near(d * is * g + b, p.y, k, tol(scale, m), where + " y");
                    }
                }
            }
        }

        void checkInference(Problem p, String where) {
            for (int ch = 0; ch < c; ch++) {
                double is = 1 / Math.sqrt(rv[ch] + eps), g = gamma[ch], b = beta[ch];
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < s; j++) {
                        int k = idx(i, ch, j);
                        double scale = Math.abs(g) * is * (Math.abs(x[k]) + Math.abs(rm[ch]) + Math.abs(x[k] - rm[ch]))
                                + Math.abs(b);
                        near((x[k] - rm[ch]) * is * g + b, p.y, k, tol(scale, 1), where + " y");
                    }
                }
            }
        }

        void checkBackward(Problem p, String where) {
            for (int ch = 0; ch < c; ch++) {
                // the inputs as the peer saw them: float-rounded saved statistics
                double mu = p.saveMean.getAtIndex(ValueLayout.JAVA_FLOAT, ch);
                double is = p.saveInvstd.getAtIndex(ValueLayout.JAVA_FLOAT, ch);
                double sumDy = 0, dot = 0, absDy = 0, absDot = 0;
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < s; j++) {
                        int k = idx(i, ch, j);
                        sumDy += dy[k];
                        absDy += Math.abs(dy[k]);
                        dot += dy[k] * (x[k] - mu);
                        // terms before cancellation, also of the form sum(dy*x) - mu*sum(dy)
                        absDot += Math.abs(dy[k] * (x[k] - mu)) + Math.abs(dy[k]) * maxAbsX[ch];
                    }
                }
                double dbeta = sumDy, dgamma = dot * is;
                near(dbeta, p.dbeta, ch, tol(absDy, m), where + " dbeta");
                near(dgamma, p.dgamma, ch, tol(absDot * is, m), where + " dgamma");
                double g = gamma[ch];
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < s; j++) {
                        int k = idx(i, ch, j);
                        double d = x[k] - mu;
                        double want = g * is * (dy[k] - dbeta / m - d * is * dgamma / m);
                        double scale = Math.abs(g) * is * (Math.abs(dy[k]) + absDy / m
                                + (Math.abs(d) + maxAbsX[ch]) * is * absDot * is / m);
                        near(want, p.dx, k, tol(scale, m), where + " dx");
                    }
                }
            }
        }
    }

    private static void near(double want, MemorySegment seg, long index, double tol, String what) {
        float got = seg.getAtIndex(ValueLayout.JAVA_FLOAT, index);
        if (!(Math.abs(got - want) <= tol)) {
            fail(String.format(Locale.ROOT, "%s at index #%d: got %s, want %.9g (error %.3g, tolerance %.3g)",
                    what, index, got, want, Math.abs(got - want), tol));
        }
    }

    private static void assertUnchanged(float[] before, MemorySegment seg, String what) {
        for (int i = 0; i < before.length; i++) {
            float now = seg.getAtIndex(ValueLayout.JAVA_FLOAT, i);
            if (Float.floatToRawIntBits(now) != Float.floatToRawIntBits(before[i])) {
                fail(what + " changed at index #" + i + ": was " + before[i] + ", now " + now);
            }
        }
    }

    private static boolean allZero(MemorySegment seg) {
        for (long i = 0; i < seg.byteSize() / Float.BYTES; i++) {
            if (seg.getAtIndex(ValueLayout.JAVA_FLOAT, i) != 0) return false;
        }
        return true;
    }

    private static float[] floats(MemorySegment seg) {
        return seg.toArray(ValueLayout.JAVA_FLOAT);
    }

    private static double[] doubles(MemorySegment seg) {
        float[] f = floats(seg);
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }
}
