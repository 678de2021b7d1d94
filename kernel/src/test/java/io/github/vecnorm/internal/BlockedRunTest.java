package io.github.vecnorm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.range;

import org.junit.jupiter.api.Test;

/**
 * {@link BatchNormOps#blockedRun}: every run of an (n, c) grid exactly once, a block's items contiguous and
 * covering its channels only, sample by sample; b = C is memory order.
 */
class BlockedRunTest {

    @Test
    void everyRunOnceAndBlocksHoldTheirChannels() {
        qt().forAll(range(1, 9), range(1, 40), range(1, 45)).checkAssert((n, cs, bRaw) -> {
            long b = Math.min(cs, bRaw);
            boolean[] seen = new boolean[n * cs];
            long prev = -1;
            for (long j = 0; j < (long) n * cs; j++) {
                long r = BatchNormOps.blockedRun(j, n, cs, b);
                assertTrue(r >= 0 && r < (long) n * cs, "run " + r + " out of range");
                assertTrue(!seen[(int) r], "run " + r + " twice");
                seen[(int) r] = true;
                long block = j / (n * b);
                long c = r % cs;
                assertEquals(block, c / b, "item " + j + " gave channel " + c + " outside its block");
                if (j % (n * b) != 0) assertTrue(r > prev, "a block's runs go forward in memory");
                prev = r;
            }
        });
    }

    @Test
    void oneBlockIsMemoryOrder() {
        for (long j = 0; j < 5 * 7; j++) assertEquals(j, BatchNormOps.blockedRun(j, 5, 7, 7));
    }

    @Test
    void oneBlockPerTask() {
        assertEquals(64, BatchNormOps.blockChannels(64, Loop.SERIAL));
        assertEquals(32, BatchNormOps.blockChannels(64, Loop.of(2, Loop.SERIAL)));
        assertEquals(22, BatchNormOps.blockChannels(64, Loop.of(3, Loop.SERIAL)));
    }
}
