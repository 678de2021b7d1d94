package io.github.vecnorm.bench;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vecnorm.internal.Kernels;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.function.Consumer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The family benchmarks' pre-timing check ({@link FamilyAgreement}), for every {@link FamilyKernel}: vecnorm
 * through its public API (this JVM's primitives) agrees with the scalar twin, so does an output one ulp off,
 * and a wrong element or a wrong parameter gradient is caught and named.
 */
class FamilyAgreementTest {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    /** A small shape of the kernel's layout (GroupNorm needs C a multiple of its 32 groups). */
    private static String small(FamilyKernel k) {
        return switch (k.group()) {
            case "LayerNorm", "RMSNorm" -> "6x40";
            case "GroupNorm" -> "2x64x5x7";
            case "WeightNorm" -> "8x3x3x3";
            default -> "3x5x7x9";
        };
    }

    /** vecnorm through the public API, then tampered with. */
    private record Tampered(FamilyImpl inner, FamilyProblem p, Consumer<FamilyProblem> tamper) implements FamilyImpl {
        @Override
        public String name() {
            return "fake";
        }

        @Override
        public void run(FamilyKernel kernel) {
            inner.run(kernel);
            tamper.accept(p);
        }

        @Override
        public void close() {
            inner.close();
        }
    }

    private static FamilyProblem problem(FamilyKernel k) {
        FamilyProblem p = new FamilyProblem(k, small(k), 1);
        FamilyAgreement.prepareInputs(p);
        return p;
    }

    private static String check(FamilyProblem p, Consumer<FamilyProblem> tamper) {
        try (FamilyImpl impl = new Tampered(new VecnormFamily(Kernels.primitives().name(), p), p, tamper)) {
            return FamilyAgreement.check(p, impl);
        }
    }

    /** The outputs the check compares, by name. */
    private static MemorySegment[] outputs(FamilyProblem p) {
        if (!FamilyAgreement.backward(p.kernel)) return new MemorySegment[] {p.y};
        boolean noBeta = p.kernel == FamilyKernel.RMSNORM_BACKWARD || p.kernel == FamilyKernel.WEIGHTNORM_BACKWARD;
        return noBeta ? new MemorySegment[] {p.dx, p.dgamma} : new MemorySegment[] {p.dx, p.dgamma, p.dbeta};
    }

    @ParameterizedTest
    @EnumSource(FamilyKernel.class)
    void vecnormAndOneUlpOffAgree(FamilyKernel k) {
        try (FamilyProblem p = problem(k)) {
            String summary = check(p, q -> { });
            assertTrue(summary.contains("agrees"), summary);
            // one ulp up on every compared output is rounding, not a bug
            check(p, q -> {
                for (MemorySegment out : outputs(q)) {
                    for (long i = 0; i < out.byteSize() / 4; i++) out.setAtIndex(F, i, Math.nextUp(out.getAtIndex(F, i)));
                }
            });
        }
    }

    @ParameterizedTest
    @EnumSource(FamilyKernel.class)
    void aWrongElementIsCaughtAndNamed(FamilyKernel k) {
        try (FamilyProblem p = problem(k)) {
            long bad = p.numel / 2 + 1;
            MemorySegment out = FamilyAgreement.backward(k) ? p.dx : p.y;
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> check(p,
                    q -> out.setAtIndex(F, bad, out.getAtIndex(F, bad) * 1.001f + 1e-3f)));
            String what = FamilyAgreement.backward(k) ? "dx" : k.group().equals("WeightNorm") ? "w" : "y";
            assertTrue(e.getMessage().contains(what + "[" + bad + "]") && e.getMessage().contains(k.id()), e.getMessage());
        }
    }

    @ParameterizedTest
    @EnumSource(FamilyKernel.class)
    void aWrongParameterGradientIsCaught(FamilyKernel k) {
        if (!FamilyAgreement.backward(k)) return;
        try (FamilyProblem p = problem(k)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> check(p,
                    q -> q.dgamma.setAtIndex(F, 1, q.dgamma.getAtIndex(F, 1) + 1f))); // far beyond rounding
            assertTrue(e.getMessage().contains("dgamma[1]"), e.getMessage());
        }
    }
}
