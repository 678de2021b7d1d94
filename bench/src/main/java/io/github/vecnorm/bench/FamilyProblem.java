package io.github.vecnorm.bench;

import io.github.vecnorm.Rows;
import io.github.vecnorm.Shape;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * The tensors of one benchmark problem of a {@link FamilyKernel}, off-heap in a shared arena, filled
 * with reproducible data; every implementation reads the same inputs and writes the same outputs.
 *
 * <p>The elements of x fall into <em>units</em>, the sets one statistic is taken over (a row for
 * LayerNorm/RMSNorm, an (n, group) for GroupNorm, an (n, c) for InstanceNorm, a channel for L_p
 * BatchNorm, an output channel of the weight for WeightNorm), and each element has a <em>parameter
 * index</em> into gamma and beta (a column, a channel, WeightNorm's g per output channel).
 * {@link #unitOf} and {@link #paramOf} give them; {@link FamilyAgreement} derives its tolerances from them.
 *
 * <p>Segments: x, y, dy, dx (numel floats; WeightNorm: v, w, grad w, grad v); gamma, beta, dgamma,
 * dbeta (one per parameter index; WeightNorm: g, unused, grad g, unused); mean, rstd (one per unit; L_p
 * BatchNorm: saveMean, saveInvSpread; WeightNorm: rstd holds the norms). A backward kernel reads the
 * statistics its forward saved: {@link FamilyAgreement#prepareInputs} writes them before timing.
 */
public final class FamilyProblem implements AutoCloseable {
    public final FamilyKernel kernel;
    public final long[] dims;
    public final String shapeText;
    public final int threads;
    public final double eps;
    public final long numel, units, params;

    private final Arena arena = Arena.ofShared();
    public final MemorySegment x, y, dy, dx, gamma, beta, dgamma, dbeta, mean, rstd;

    /** Rows for LayerNorm/RMSNorm: the last dimension is normalized. */
    public final Rows rows;
    /** (N, C, S) for GroupNorm, InstanceNorm, L_p BatchNorm. */
    public final Shape shape;

    /** Layout numbers for {@link #unitOf}/{@link #paramOf}. */
    private final long inner, cycle, unitSpan;

    public FamilyProblem(FamilyKernel kernel, String dimsText, int threads) {
        this.kernel = kernel;
        this.shapeText = dimsText;
        this.threads = threads;
        String[] parts = dimsText.trim().split("x");
        dims = new long[parts.length];
        for (int i = 0; i < parts.length; i++) dims[i] = Long.parseLong(parts[i]);
        long n = 1;
        for (long d : dims) n = Math.multiplyExact(n, d);
        numel = n;
        switch (kernel.group()) {
            case "LayerNorm", "RMSNorm" -> {
                long d = dims[dims.length - 1];
                rows = Rows.of(numel / d, d);
                shape = null;
                units = rows.m();
                params = d;
                inner = 1;
                cycle = d;
                unitSpan = d;
            }
            case "WeightNorm" -> {
                rows = null;
                shape = null;
                units = dims[0];
                params = dims[0];
                long rest = numel / dims[0];
                inner = rest;
                cycle = dims[0];
                unitSpan = rest;
            }
            default -> {
                rows = null;
                shape = Shape.of(dims);
                if (kernel.group().equals("GroupNorm") && shape.c() % FamilyKernel.GROUPS != 0) {
                    throw new IllegalArgumentException(kernel.id() + ": C = " + shape.c() + " is not a multiple of "
                            + FamilyKernel.GROUPS + " groups");
                }
                params = shape.c();
                inner = shape.s();
                cycle = shape.c();
                units = switch (kernel.group()) {
                    case "GroupNorm" -> shape.n() * FamilyKernel.GROUPS;
                    case "InstanceNorm" -> shape.n() * shape.c();
                    default -> shape.c(); // L_p BatchNorm
                };
                unitSpan = switch (kernel.group()) {
                    case "GroupNorm" -> shape.c() / FamilyKernel.GROUPS * shape.s();
                    case "InstanceNorm" -> shape.s();
                    default -> 0;
                };
            }
        }
        // PyTorch's defaults, except RMSNorm: 1e-6 as the LLaMA family uses (the same for every impl)
        eps = kernel.group().equals("RMSNorm") ? 1e-6 : 1e-5;
        x = floats(numel);
        y = floats(numel);
        dy = floats(numel);
        dx = floats(numel);
        gamma = floats(params);
        beta = floats(params);
        dgamma = floats(params);
        dbeta = floats(params);
        mean = floats(units);
        rstd = floats(units);
        fill();
    }

    /** The unit (set of elements one statistic is taken over) of element e. */
    public long unitOf(long e) {
        return unitSpan == 0 ? (e / inner) % cycle : e / unitSpan;
    }

    /** The parameter index (into gamma, beta, dgamma, dbeta) of element e. */
    public long paramOf(long e) {
        return (e / inner) % cycle;
    }

    /** Elements per unit. */
    public long unitSize() {
        return numel / units;
    }

    private void fill() {
        SplittableRandom rnd = new SplittableRandom(42);
        float[] off = new float[(int) params], spread = new float[(int) params];
        for (int c = 0; c < params; c++) {
            off[c] = (float) rnd.nextDouble(-2, 2);
            spread[c] = (float) rnd.nextDouble(0.5, 3);
            gamma.setAtIndex(ValueLayout.JAVA_FLOAT, c, (float) rnd.nextDouble(0.5, 1.5));
            beta.setAtIndex(ValueLayout.JAVA_FLOAT, c, (float) rnd.nextDouble(-0.5, 0.5));
        }
        int chunk = 1 << 16;
        float[] xs = new float[chunk], dys = new float[chunk];
        for (long start = 0; start < numel; start += chunk) {
            int len = (int) Math.min(chunk, numel - start);
            for (int i = 0; i < len; i++) {
                int c = (int) paramOf(start + i);
                xs[i] = off[c] + spread[c] * (float) gaussian(rnd);
                dys[i] = (float) gaussian(rnd);
            }
            MemorySegment.copy(xs, 0, x, ValueLayout.JAVA_FLOAT, start * 4, len);
            MemorySegment.copy(dys, 0, dy, ValueLayout.JAVA_FLOAT, start * 4, len);
        }
    }

    private MemorySegment floats(long count) {
        return arena.allocate(count * Float.BYTES, 64);
    }

    private static double gaussian(SplittableRandom r) {
        double u = 1 - r.nextDouble(), v = r.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    }

    /** Bytes of x. */
    public long activationBytes() {
        return numel * Float.BYTES;
    }

    @Override
    public void close() {
        arena.close();
    }
}
