package io.github.vecnorm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.range;

import org.junit.jupiter.api.Test;

/**
 * {@link BatchNormOps#runItems}: every run of an (n, c) grid exactly once, an item's runs one sample's
 * channels of one block, forward in memory; a block's items contiguous; b = C is memory order.
 */
class RunItemsTest {

    @Test
    void everyRunOnceAndBlocksHoldTheirChannels() {
        qt().forAll(range(1, 9), range(1, 40), range(1, 45)).checkAssert((n, cs, bRaw) -> {
            long b = Math.min(cs, bRaw);
            boolean[] seen = new boolean[n * cs];
            long prevBlock = 0;
            for (long j = 0; j < BatchNormOps.runItems(n, cs, b); j++) {
                long c0 = BatchNormOps.firstChannel(j, n, b), r0 = BatchNormOps.firstRun(j, n, cs);
                long block = c0 / b;
                assertTrue(block >= prevBlock, "item " + j + " goes back to block " + block);
                prevBlock = block;
                long prev = -1;
                for (long c = c0; c < Math.min(cs, c0 + b); c++) {
                    long r = r0 + c;
                    assertTrue(r >= 0 && r < (long) n * cs, "run " + r + " out of range");
                    assertTrue(!seen[(int) r], "run " + r + " twice");
                    seen[(int) r] = true;
                    assertEquals(c, r % cs, "item " + j + ": run " + r + " is not of channel " + c);
                    assertEquals(block, c / b, "item " + j + " gave channel " + c + " outside its block");
                    assertTrue(r > prev, "an item's runs go forward in memory");
                    prev = r;
                }
            }
            for (int r = 0; r < n * cs; r++) assertTrue(seen[r], "run " + r + " missed");
        });
    }

    @Test
    void oneBlockIsMemoryOrder() {
        long next = 0;
        for (long j = 0; j < BatchNormOps.runItems(5, 7, 7); j++) {
            long r0 = BatchNormOps.firstRun(j, 5, 7);
            for (long c = BatchNormOps.firstChannel(j, 5, 7); c < 7; c++) assertEquals(next++, r0 + c);
        }
        assertEquals(35, next);
    }

    @Test
    void oneBlockPerTask() {
        assertEquals(64, BatchNormOps.blockChannels(64, Loop.SERIAL));
        assertEquals(32, BatchNormOps.blockChannels(64, Loop.of(2, Loop.SERIAL)));
        assertEquals(22, BatchNormOps.blockChannels(64, Loop.of(3, Loop.SERIAL)));
    }
}
