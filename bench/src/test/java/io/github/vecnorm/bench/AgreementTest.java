package io.github.vecnorm.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vecnorm.internal.BatchNormOps;
import io.github.vecnorm.internal.Kernels;
import io.github.vecnorm.internal.Loop;
import io.github.vecnorm.internal.Primitives;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.function.Consumer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/** The benchmarks' pre-timing check must accept rounding-level differences and reject real ones. */
class AgreementTest {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    /** An implementation computed by the given primitives, then optionally tampered with. */
    private record Fake(Primitives prims, Problem p, Consumer<Problem> tamper) implements Impl {
        @Override
        public String name() {
            return "fake";
        }

        @Override
        public boolean supports(Kernel kernel) {
            return true;
        }

        @Override
        public void run(Kernel k) {
            long n = p.shape.n(), c = p.shape.c(), s = p.shape.s();
            switch (k) {
                case BATCHNORM_FORWARD_TRAINING -> BatchNormOps.forwardTraining(prims, n, c, s, p.x, p.y, p.gamma, p.beta,
                        p.saveMean, p.saveInvstd, null, null, 0, p.eps, Loop.SERIAL);
                case BATCHNORM_FORWARD_INFERENCE -> BatchNormOps.forwardInference(prims, n, c, s, p.x, p.y, p.gamma,
                        p.beta, p.runningMean, p.runningVar, p.eps, Loop.SERIAL);
                case BATCHNORM_BACKWARD -> BatchNormOps.backward(prims, n, c, s, p.dy, p.x, p.gamma, p.saveMean,
                        p.saveInvstd, p.dx, p.dgamma, p.dbeta, Loop.SERIAL);
            }
            tamper.accept(p);
        }
    }

    private static MemorySegment output(Problem p, Kernel k) {
        return k == Kernel.BATCHNORM_BACKWARD ? p.dx : p.y;
    }

    @ParameterizedTest
    @EnumSource(Kernel.class)
    void anotherImplementationAndOneUlpOffAgree(Kernel k) {
        Primitives v = Kernels.vectorOrNull();
        try (Problem p = new Problem("3x5x7x9", 1)) {
            Agreement.prepareInputs(p, k);
            String summary = Agreement.check(p, k, new Fake(v == null ? Kernels.scalar() : v, p, q -> { }));
            assertTrue(summary.contains("agrees"), summary);
            // one ulp up on every output element is rounding, not a bug
            Agreement.check(p, k, new Fake(Kernels.scalar(), p, q -> {
                MemorySegment out = output(q, k);
                for (long i = 0; i < out.byteSize() / 4; i++) out.setAtIndex(F, i, Math.nextUp(out.getAtIndex(F, i)));
            }));
        }
    }

    @ParameterizedTest
    @EnumSource(Kernel.class)
    void aWrongElementIsCaughtAndNamed(Kernel k) {
        try (Problem p = new Problem("3x5x7x9", 1)) {
            Agreement.prepareInputs(p, k);
            long bad = 2 * 5 * 63 + 3 * 63 + 17; // n = 2, channel 3, index 17 of the run
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> Agreement.check(p, k,
                    new Fake(Kernels.scalar(), p, q -> {
                        MemorySegment out = output(q, k);
                        out.setAtIndex(F, bad, out.getAtIndex(F, bad) * 1.001f + 1e-3f);
                    })));
            String what = k == Kernel.BATCHNORM_BACKWARD ? "dx" : "y";
            assertTrue(e.getMessage().contains(what + "[channel 3, index " + bad + "]"), e.getMessage());
        }
    }

    @Test
    void outputsLeftUnwrittenAreCaught() {
        try (Problem p = new Problem("2x4x5x5", 1)) {
            Impl lazy = new Impl() {
                @Override
                public String name() {
                    return "lazy";
                }

                @Override
                public boolean supports(Kernel kernel) {
                    return true;
                }

                @Override
                public void run(Kernel kernel) {
                }
            };
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> Agreement.check(p, Kernel.BATCHNORM_FORWARD_INFERENCE, lazy));
            assertTrue(e.getMessage().contains("NaN"), e.getMessage());
        }
    }

    @Test
    void wrongSavedStatisticsAreCaught() {
        try (Problem p = new Problem("4x3x6x6", 1)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> Agreement.check(p,
                    Kernel.BATCHNORM_FORWARD_TRAINING, new Fake(Kernels.scalar(), p,
                            q -> q.saveInvstd.setAtIndex(F, 1, q.saveInvstd.getAtIndex(F, 1) * 1.01f))));
            assertTrue(e.getMessage().contains("saveInvstd[channel 1]"), e.getMessage());
        }
    }

    @Test
    void trainingNeedsTwoValuesPerChannel() {
        try (Problem p = new Problem("1x256x1x1", 1)) {
            assertThrows(IllegalArgumentException.class, () -> Agreement.requireValid(p, Kernel.BATCHNORM_BACKWARD));
            Agreement.requireValid(p, Kernel.BATCHNORM_FORWARD_INFERENCE);
        }
    }

    @Test
    void theCopyCoversEverySliceWhateverTheThreads() {
        for (int t = 1; t <= 5; t++) {
            try (Problem p = new Problem("1x3x5x7", t); CopyImpl copy = new CopyImpl(p)) {
                copy.copy();
                assertEquals(-1, p.x.mismatch(p.y), "threads " + t);
            }
        }
    }
}
