package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.vecnorm.internal.Kernels;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Each surefire execution says which implementation it means to test (-Dvecnorm.expect=vector|scalar,
 * and -Dvecnorm.expectLanes for a capped vector width); this fails if the library picked another, so an
 * execution cannot silently test the wrong one.
 */
class ActiveImplementationTest {

    @Test
    void theExpectedImplementationIsActive() {
        String expect = System.getProperty("vecnorm.expect");
        Assumptions.assumeTrue(expect != null, "no -Dvecnorm.expect given");
        assertEquals(expect, Kernels.primitives().name(), "implementation chosen by the library");
        if (expect.equals("scalar")) {
            assertEquals(1, Kernels.primitives().lanes(), "the scalar twin works one float at a time");
        }
        String lanes = System.getProperty("vecnorm.expectLanes");
        if (lanes != null) {
            assertEquals(Integer.parseInt(lanes.trim()), Kernels.primitives().lanes(), "float lanes per vector");
        }
        System.out.println("[impl] " + Kernels.primitives().name() + ", " + Kernels.primitives().lanes() + " lanes");
    }
}
