package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vecnorm.internal.Kernels;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * The 'scalar' surefire execution runs without {@code --add-modules jdk.incubator.vector} and without
 * {@code -Dvecnorm.impl}: the library must notice on its own and fall back to the scalar twin, and the
 * Vector API implementation must not be loadable there. Skipped in the other executions.
 */
@EnabledIfSystemProperty(named = "vecnorm.expect", matches = "scalar")
class ScalarFallbackTest {

    @Test
    void noIncubatorModuleMeansTheScalarTwin() {
        assertTrue(ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty(),
                "this execution is meant to run without the incubator module");
        assertEquals("auto", System.getProperty(Kernels.PROPERTY, "auto"), "the fallback must not be forced");
        assertEquals("scalar", Kernels.primitives().name());
        assertSame(Kernels.scalar(), Kernels.primitives());
        assertNull(Kernels.vectorOrNull(), "the Vector API implementation loaded without its module");
    }

    /** The public API works through the fallback: inference on (2, 2, 3) against a double computation. */
    @Test
    void batchNormRunsOnTheFallback() {
        Shape shape = new Shape(2, 2, 3);
        ValueLayout.OfFloat f = ValueLayout.JAVA_FLOAT;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = arena.allocate(shape.byteSize()), y = arena.allocate(shape.byteSize());
            for (int i = 0; i < shape.numel(); i++) x.setAtIndex(f, i, i * 0.5f - 1);
            MemorySegment rm = arena.allocate(8), rv = arena.allocate(8);
            rm.setAtIndex(f, 0, 0.25f);
            rm.setAtIndex(f, 1, -1f);
            rv.setAtIndex(f, 0, 4f);
            rv.setAtIndex(f, 1, 0.5f);
            double eps = 1e-3;
            BatchNorm.forwardInference(shape, x, y, null, null, rm, rv, eps);
            for (int i = 0; i < shape.numel(); i++) {
                int c = (int) ((i / shape.s()) % shape.c());
                double want = (x.getAtIndex(f, i) - rm.getAtIndex(f, c)) / Math.sqrt(rv.getAtIndex(f, c) + eps);
                assertEquals(want, y.getAtIndex(f, i), 4 * Math.ulp((float) want) + 1e-7, "y at index #" + i);
            }
        }
    }
}
