package io.github.vecnorm.bench;

import io.github.vecnorm.Shape;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * The tensors of one benchmark problem, off-heap in a shared arena (so executor threads and native
 * peers can use them), filled with reproducible data. Every implementation reads the same inputs and
 * writes the same outputs, so results can be compared after a call.
 *
 * <p>Layout: NCHW float32. dims are the tensor's full dimensions (e.g. 32, 64, 56, 56); shape is the
 * (N, C, S) view vecnorm uses.
 */
public final class Problem implements AutoCloseable {
    public final long[] dims;
    public final Shape shape;
    public final int threads;
    public final double eps = 1e-5;
    public final double momentum = 0.1;

    private final Arena arena = Arena.ofShared();
    /** Activations, N*C*S floats. */
    public final MemorySegment x, y, dy, dx;
    /** Per-channel, C floats. */
    public final MemorySegment gamma, beta, runningMean, runningVar, saveMean, saveInvstd, dgamma, dbeta;

    public Problem(String dimsText, int threads) {
        String[] parts = dimsText.split("x");
        this.dims = new long[parts.length];
        for (int i = 0; i < parts.length; i++) dims[i] = Long.parseLong(parts[i]);
        this.shape = Shape.of(dims);
        this.threads = threads;
        long numel = shape.numel(), c = shape.c();
        x = floats(numel);
        y = floats(numel);
        dy = floats(numel);
        dx = floats(numel);
        gamma = floats(c);
        beta = floats(c);
        runningMean = floats(c);
        runningVar = floats(c);
        saveMean = floats(c);
        saveInvstd = floats(c);
        dgamma = floats(c);
        dbeta = floats(c);
        SplittableRandom rnd = new SplittableRandom(42);
        // per-channel offsets and spreads, as activations after a conv have
        long s = shape.s();
        for (long ch = 0; ch < c; ch++) {
            float off = (float) rnd.nextDouble(-2, 2), spread = (float) rnd.nextDouble(0.5, 3);
            for (long n = 0; n < shape.n(); n++) {
                long base = (n * c + ch) * s;
                for (long i = 0; i < s; i++) {
                    x.setAtIndex(ValueLayout.JAVA_FLOAT, base + i, off + spread * (float) gaussian(rnd));
                    dy.setAtIndex(ValueLayout.JAVA_FLOAT, base + i, (float) gaussian(rnd));
                }
            }
            gamma.setAtIndex(ValueLayout.JAVA_FLOAT, ch, (float) rnd.nextDouble(0.5, 1.5));
            beta.setAtIndex(ValueLayout.JAVA_FLOAT, ch, (float) rnd.nextDouble(-0.5, 0.5));
            runningMean.setAtIndex(ValueLayout.JAVA_FLOAT, ch, off);
            runningVar.setAtIndex(ValueLayout.JAVA_FLOAT, ch, spread * spread);
        }
    }

    private MemorySegment floats(long count) {
        return arena.allocate(count * Float.BYTES, 64);
    }

    private static double gaussian(SplittableRandom r) {
        // Box-Muller; SplittableRandom has no nextGaussian on every JDK we may meet
        double u = 1 - r.nextDouble(), v = r.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }

    /** Bytes of one activation tensor. */
    public long activationBytes() {
        return shape.byteSize();
    }

    @Override
    public void close() {
        arena.close();
    }
}
