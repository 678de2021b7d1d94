package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.quicktheories.QuickTheory.qt;
import static org.quicktheories.generators.Generate.constant;
import static org.quicktheories.generators.Generate.frequency;
import static org.quicktheories.generators.Generate.longRange;
import static org.quicktheories.generators.Generate.pick;
import static org.quicktheories.generators.Generate.range;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;
import org.quicktheories.api.Pair;
import org.quicktheories.core.Gen;

/**
 * {@link WeightNorm} against the double {@link LpReference}: forward and backward on QuickTheories cases
 * (ranks 1 to 4, awkward sizes around 8 and 16 lanes, primes, size-1 dims, slices longer than a piece,
 * both walks: pieces and columns; dim = 0, last, middle, -1 (whole tensor), wrapped negatives), identities
 * (the norm of each slice of w is |g|; w does not change when v is scaled), finite differences of a double
 * loss, thread-count determinism, the zero-norm NaN, bad input.
 *
 * <h2>Tolerances</h2>
 * Notation: slice of mk values; a float lane accumulates at most k = ceil(min(mk, 8192)/L) products in
 * sequence (the kernel cuts slices into pieces of at most 8192 floats, WeightNormOps.PIECE), then L lanes and
 * 4 accumulators are added (the column walk instead sums at most 32 rows in float, in both implementations:
 * {@link #sumRel}): Σv² (non-negative terms) is
 * within {@code rS = uA*(H(k) + L + 4)} relatively (H and uA as in {@link ErrorModel}: uA = u for float
 * lanes, 2^-53 for the scalar twin's double sums). The norm sqrt(Σv²) is then within rS/2 (+ rS²), plus u for
 * the stored float; g/norm is rounded once to float and w = v * that once more: |w - w_ref| <= |w_ref|*(rS/2 + rS²
 * + 2u). The backward sum Σ gradW*v has mixed signs: error <= (uA*(H(k) + L + 4))*Σ|gradW*v| (fma: no separate
 * product rounding; the twin's products are exact in double). The coefficients propagate it as written at
 * {@link #gradVTolerance}.
 */
class WeightNormTest {

    static final ErrorModel MODEL = ErrorModel.active();
    static final double U = ErrorModel.U;
    static final double REF = ErrorModel.REF;

    /** Sizes around 8 and 16 lanes, primes, 1. */
    static final List<Integer> SIZES = List.of(1, 1, 2, 3, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65,
            127, 129, 207);

    /** A few larger shapes: long slices cut into pieces, many rows for the column walk's bands. */
    static final List<long[]> LARGE = List.of(new long[] {3, 20011}, new long[] {9000}, new long[] {600, 3, 5},
            new long[] {2, 4099, 3}, new long[] {1100, 17}, new long[] {4, 5, 1021});

    /** Dims: rank 1 to 4 of awkward sizes (at most ~70k values), or a larger shape. */
    static Gen<long[]> dims() {
        Gen<long[]> small = range(1, 4).flatMap(rank -> longRange(0, Long.MAX_VALUE / 2).map(seed -> {
            SplittableRandom rnd = new SplittableRandom(seed);
            long[] d = new long[rank];
            long numel = 1;
            for (int i = 0; i < rank; i++) {
                d[i] = SIZES.get(rnd.nextInt(SIZES.size()));
                if (numel * d[i] > 70_000) d[i] = 1;
                numel *= d[i];
            }
            return d;
        }));
        return frequency(List.of(Pair.of(12, small), Pair.of(2, pick(LARGE)),
                Pair.of(1, constant(new long[] {1})), Pair.of(1, constant(new long[] {1, 1}))));
    }

    /**
     * How a case's data is drawn: the kept dim (as an index into dimChoices), scale 10^scaleExp, offset
     * kind (0 none, 1 a few scales, 2 1e3 scales), gKind (0 positive, 1 negative, 2 mixed), misalignment,
     * output mask (bit 0 gradV, bit 1 gradG), in-place bits, seed.
     */
    record Recipe(int dimChoice, int scaleExp, int offsetKind, int gKind, int misalign, int mask, int inPlace, long seed) {
    }

    static Gen<Recipe> recipes() {
        return range(0, 5).flatMap(dc -> range(-3, 3).flatMap(sc -> range(0, 2).flatMap(off -> range(0, 2).flatMap(gk ->
                range(0, 7).flatMap(mis -> pick(List.of(1, 2, 3, 3)).flatMap(mask -> range(0, 3).flatMap(ip ->
                        longRange(0, Long.MAX_VALUE / 2).map(seed -> new Recipe(dc, sc, off, gk, mis, mask, ip, seed)))))))));
    }

    /** The dim of a recipe for these dims: 0, last, -1, a middle one, or a wrapped negative. */
    static int dimOf(long[] dims, int choice, long seed) {
        int nd = dims.length;
        return switch (choice) {
            case 0 -> 0;
            case 1 -> nd - 1;
            case 2 -> -1;
            case 3 -> (int) Math.floorMod(seed, nd);
            default -> nd >= 2 ? -2 - (int) Math.floorMod(seed, nd - 1) : 0; // -2 .. -nd
        };
    }

    @Test
    void forwardAndBackwardMatchReference() {
        Map<String, Integer> seen = new TreeMap<>();
        for (String key : List.of("dim=0", "dim=last", "dim=-1", "middleDim", "wrappedNegative", "columnWalk",
                "sliceLongerThanPiece", "bigOffset", "inPlaceW", "inPlaceGradV", "rank1", "rank4", "sliceOf1")) {
            seen.put(key, 0);
        }
        qt().withExamples(350).withShrinkCycles(30).forAll(dims(), recipes())
                .checkAssert((d, r) -> check(d, r, seen));
        System.out.println("WeightNorm cases seen: " + seen);
        seen.forEach((key, count) -> assertTrue(count > 0, "no case with " + key + " was generated: " + seen));
    }

    /** Column walks with more than one band of super-rows, and super-rows of 3-float rows (conv weights, dim = last). */
    @Test
    void manyBandsAndNarrowRowsMatchReference() {
        Map<String, Integer> seen = new TreeMap<>();
        check(new long[] {600, 1000}, new Recipe(1, 0, 1, 2, 3, 3, 0, 11), seen);   // 300 super-rows of 2 rows
        check(new long[] {64, 32, 3, 3}, new Recipe(1, -1, 2, 0, 1, 3, 1, 12), seen); // rows of 3 floats
        check(new long[] {200, 30, 3, 3}, new Recipe(3, 1, 0, 1, 0, 3, 2, 2), seen);  // dim 2: slices of s = 3
        assertEquals(3, seen.get("columnWalk"));
    }

    static void check(long[] dims, Recipe r, Map<String, Integer> seen) {
        int dim = dimOf(dims, r.dimChoice(), r.seed());
        long[] view = LpReference.view(dims, dim);
        int a = (int) view[0], k = (int) view[1], s = (int) view[2], numel = a * k * s, mk = a * s;
        String where = Arrays.toString(dims) + " dim " + dim + " " + r;
        count(seen, dim == 0, "dim=0");
        count(seen, dim == dims.length - 1 && dims.length > 1, "dim=last");
        count(seen, dim == -1, "dim=-1");
        count(seen, dim > 0 && dim < dims.length - 1, "middleDim");
        count(seen, dim < -1, "wrappedNegative");
        count(seen, a > 1 && s < 64, "columnWalk");
        count(seen, mk > 8192, "sliceLongerThanPiece");
        count(seen, r.offsetKind() == 2, "bigOffset");
        count(seen, dims.length == 1, "rank1");
        count(seen, dims.length == 4, "rank4");
        count(seen, mk == 1, "sliceOf1");

        SplittableRandom rnd = new SplittableRandom(r.seed());
        double scale = Math.pow(10, r.scaleExp());
        double offset = r.offsetKind() == 0 ? 0 : r.offsetKind() == 1 ? 3 * scale : 1e3 * scale;
        float[] vf = new float[numel], gwf = new float[numel], gf = new float[k];
        double gwScale = Math.pow(10, rnd.nextDouble(-2, 2));
        for (int i = 0; i < numel; i++) {
            vf[i] = (float) (offset + scale * rnd.nextGaussian());
            if (vf[i] == 0) vf[i] = (float) scale; // keep every slice's norm away from 0
            gwf[i] = (float) (gwScale * rnd.nextGaussian());
        }
        for (int j = 0; j < k; j++) {
            double mag = rnd.nextDouble(0.1, 3);
            gf[j] = (float) (r.gKind() == 0 ? mag : r.gKind() == 1 ? -mag : (rnd.nextBoolean() ? mag : -mag));
        }
        double[] v = LpReference.widen(vf), gw = LpReference.widen(gwf), g = LpReference.widen(gf);
        double[] normRef = LpReference.norms(view, v), wRef = LpReference.weight(view, v, g);
        double rS = sumRel(a, s, mk);

        try (Arena arena = Arena.ofConfined()) {
            int mis = r.misalign();
            boolean inPlaceW = (r.inPlace() & 1) != 0, inPlaceGv = (r.inPlace() & 2) != 0;
            MemorySegment vs = TestData.copyOf(arena, vf, mis), gs = TestData.copyOf(arena, gf, mis);
            MemorySegment ws = inPlaceW ? TestData.copyOf(arena, vf, mis) : TestData.filled(arena, numel, Float.NaN, (mis + 5) % 8);
            MemorySegment ns = TestData.filled(arena, k, Float.NaN, mis);
            WeightNorm.forward(dims, dim, inPlaceW ? ws : vs, gs, ws, ns);
            count(seen, inPlaceW, "inPlaceW");
            float[] w = TestData.read(ws), norm = TestData.read(ns);
            for (int j = 0; j < k; j++) {
                close("norm", norm[j], normRef[j], normRef[j] * (rS / 2 + rS * rS + U + REF), "slice " + j + " of " + where);
            }
            double[] wNorm = new double[k];
            for (int e = 0; e < numel; e++) {
                close("w", w[e], wRef[e], Math.abs(wRef[e]) * (rS / 2 + rS * rS + 2 * U + REF),
                        "index " + e + " v=" + vf[e] + " of " + where);
                wNorm[LpReference.slice(e, k, s)] += (double) w[e] * w[e];
            }
            // identity: every slice of w has norm |g|, within w's relative error
            for (int j = 0; j < k; j++) {
                close("||w|| of a slice", (float) Math.sqrt(wNorm[j]), Math.abs(g[j]),
                        Math.abs(g[j]) * (rS / 2 + rS * rS + 3 * U + REF), "slice " + j + " of " + where);
            }
            // identity: w does not depend on the scale of v; scaling by 4 is exact, so bit for bit
            MemorySegment v4 = TestData.allocate(arena, numel, mis), w4 = TestData.allocate(arena, numel, 0);
            MemorySegment n4 = TestData.allocate(arena, k, 0);
            for (int e = 0; e < numel; e++) v4.setAtIndex(ValueLayout.JAVA_FLOAT, e, 4 * vf[e]);
            WeightNorm.forward(dims, dim, v4, gs, w4, n4);
            assertArrayEquals(w, TestData.read(w4), "w of 4*v differs from w of v for " + where);
            for (int j = 0; j < k; j++) assertEquals(4 * norm[j], TestData.read(n4)[j], "norm of 4*v, slice " + j);

            // backward from the kernel's saved norms (its inputs)
            boolean wantV = (r.mask() & 1) != 0, wantG = (r.mask() & 2) != 0;
            MemorySegment gws = TestData.copyOf(arena, gwf, mis);
            MemorySegment gvs = !wantV ? null : inPlaceGv ? gws : TestData.filled(arena, numel, Float.NaN, (mis + 2) % 8);
            count(seen, wantV && inPlaceGv, "inPlaceGradV");
            MemorySegment ggs = wantG ? TestData.filled(arena, k, Float.NaN, mis) : null;
            WeightNorm.backward(dims, dim, gws, vs, gs, ns, gvs, ggs);
            LpReference.WGrads ref = LpReference.weightBackward(view, gw, v, g, norm);
            double[] absSum = new double[k];
            for (int e = 0; e < numel; e++) absSum[LpReference.slice(e, k, s)] += Math.abs(gw[e] * v[e]);
            double[] dS = new double[k];
            for (int j = 0; j < k; j++) dS[j] = rS * absSum[j];
            if (wantG) {
                float[] gradG = TestData.read(ggs);
                for (int j = 0; j < k; j++) {
                    close("gradG", gradG[j], ref.gradG()[j], dS[j] / norm[j] + U * Math.abs(ref.gradG()[j]),
                            "slice " + j + " of " + where);
                }
            }
            if (wantV) {
                float[] gradV = TestData.read(gvs);
                for (int e = 0; e < numel; e++) {
                    int j = LpReference.slice(e, k, s);
                    close("gradV", gradV[e], ref.gradV()[e], gradVTolerance(g[j], norm[j], ref.sum()[j], dS[j], gw[e], v[e],
                            ref.gradV()[e]), "index " + e + " of " + where);
                }
            }
        }
    }

    /**
     * Relative error of a slice's sum of non-negative terms (or of |terms| for mixed signs): the pieces walk
     * as in the class comment; the column walk (a > 1, s < 64) sums at most 32 rows in float in both
     * implementations (the twin's column primitive works in float on purpose, to give the lanes' bits).
     */
    static double sumRel(long a, long s, long mk) {
        long chain = (Math.min(mk, 8192) + MODEL.lanes - 1) / MODEL.lanes;
        double pieces = MODEL.uAcc * (ErrorModel.h(chain) + MODEL.lanes + 4);
        double columns = a > 1 && s < 64 ? U * (Math.min(a, 32) + 1) : 0;
        return Math.max(pieces, columns) + REF;
    }

    /**
     * gradV = fma(fl(g/n), gradW, fl(fl(-a*gg/n) * v)) with a = g/n, gg = sum/n (n the saved norm, exact input):
     * a's rounding u on |a*gradW|; b = a*sum/n² is off by |a|*dS/n² (the sum's error) and 2u|b| (its float
     * rounding and that of b*v, the latter on |b*v|); the fma rounds once on |gradV|.
     */
    static double gradVTolerance(double g, double n, double sum, double dS, double gw, double v, double expected) {
        double a = Math.abs(g / n), b = a * Math.abs(sum) / (n * n);
        return U * a * Math.abs(gw) + (a * dS / (n * n) + 2 * U * b) * Math.abs(v) + U * Math.abs(expected)
                + REF * (a * Math.abs(gw) + b * Math.abs(v));
    }

    private static void count(Map<String, Integer> seen, boolean happened, String key) {
        if (happened) seen.merge(key, 1, Integer::sum);
    }

    private static void close(String what, float actual, double expected, double tol, String where) {
        double err = Math.abs(actual - expected);
        if (!(err <= tol)) {
            fail(what + ": got " + actual + ", expected " + expected + " (error " + err + " > tolerance " + tol
                    + ") at " + where);
        }
    }

    /**
     * The kernel's backward against central differences of the double loss Σ c*w (gradW = c) in v and g.
     * Tolerance: the kernel's bound against the formula with its saved norms (gradVTolerance), widened by
     * what the float rounding of the saved norm (u relative) moves the exact gradient (u on each of the
     * two terms of gradV, 3u on gradG's), plus the finite difference's error estimated by Richardson
     * (2*(4/3)*|fd(h) - fd(h/2)|) and its cancellation 4*2^-53*Σ|c*w|/h.
     */
    @Test
    void backwardMatchesFiniteDifferences() {
        Object[][] cases = {{new long[] {3, 5}, 0}, {new long[] {3, 5}, 1}, {new long[] {4, 3, 2}, 1},
                {new long[] {2, 17}, -1}, {new long[] {7}, 0}, {new long[] {5, 1, 3}, -2}, {new long[] {2, 2, 2, 3}, 3}};
        SplittableRandom rnd = new SplittableRandom(2016);
        for (Object[] cse : cases) {
            long[] dims = (long[]) cse[0];
            int dim = (Integer) cse[1];
            long[] view = LpReference.view(dims, dim);
            int k = (int) view[1], s = (int) view[2], numel = (int) (view[0] * k * s);
            float[] vf = new float[numel], cf = new float[numel], gf = new float[k];
            for (int i = 0; i < numel; i++) {
                vf[i] = (float) rnd.nextGaussian();
                cf[i] = (float) rnd.nextGaussian();
            }
            for (int j = 0; j < k; j++) gf[j] = (float) rnd.nextDouble(-2, 2);
            double[] v = LpReference.widen(vf), c = LpReference.widen(cf), g = LpReference.widen(gf);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment vs = TestData.copyOf(arena, vf), gs = TestData.copyOf(arena, gf);
                MemorySegment ws = arena.allocate(4L * numel), ns = arena.allocate(4L * k);
                MemorySegment gvs = arena.allocate(4L * numel), ggs = arena.allocate(4L * k);
                WeightNorm.forward(dims, dim, vs, gs, ws, ns);
                WeightNorm.backward(dims, dim, TestData.copyOf(arena, cf), vs, gs, ns, gvs, ggs);
                float[] gradV = TestData.read(gvs), gradG = TestData.read(ggs), norm = TestData.read(ns);
                LpReference.WGrads ref = LpReference.weightBackward(view, c, v, g, norm);
                double[] w = LpReference.weight(view, v, g);
                double absLoss = 0;
                for (int i = 0; i < numel; i++) absLoss += Math.abs(c[i] * w[i]);
                double[] absSum = new double[k];
                for (int e = 0; e < numel; e++) absSum[LpReference.slice(e, k, s)] += Math.abs(c[e] * v[e]);
                String where = Arrays.toString(dims) + " dim " + dim;
                for (int e = 0; e < numel; e++) {
                    int j = LpReference.slice(e, k, s);
                    double h = 1e-4 * (Math.abs(v[e]) + 1e-2);
                    double fd = fdV(e, h, view, v, g, c), fd2 = fdV(e, h / 2, view, v, g, c);
                    double fdErr = 2 * (4.0 / 3) * Math.abs(fd - fd2) + 4 * 0x1p-53 * absLoss / (h / 2);
                    double dS = sumRel(view[0], s, view[0] * s) * absSum[j];
                    double a = Math.abs(g[j] / norm[j]);
                    double stat = 2 * U * (a * Math.abs(c[e]) + 2 * a * absSum[j] / (norm[j] * norm[j]) * Math.abs(v[e]));
                    double tol = gradVTolerance(g[j], norm[j], ref.sum()[j], dS, c[e], v[e], ref.gradV()[e]) + stat + fdErr;
                    close("gradV vs finite difference", gradV[e], fd2, tol, "index " + e + " of " + where);
                }
                for (int j = 0; j < k; j++) {
                    double h = 1e-4 * (Math.abs(g[j]) + 1e-2);
                    double fd = fdG(j, h, view, v, g, c), fd2 = fdG(j, h / 2, view, v, g, c);
                    double fdErr = 2 * (4.0 / 3) * Math.abs(fd - fd2) + 4 * 0x1p-53 * absLoss / (h / 2);
                    double dS = sumRel(view[0], s, view[0] * s) * absSum[j];
                    double tol = dS / norm[j] + 4 * U * absSum[j] / norm[j] + fdErr;
                    close("gradG vs finite difference", gradG[j], fd2, tol, "slice " + j + " of " + where);
                }
            }
        }
    }

    private static double fdV(int e, double h, long[] view, double[] v, double[] g, double[] c) {
        double keep = v[e];
        v[e] = keep + h;
        double up = LpReference.weightLoss(view, v, g, c);
        v[e] = keep - h;
        double down = LpReference.weightLoss(view, v, g, c);
        v[e] = keep;
        return (up - down) / (2 * h);
    }

    private static double fdG(int j, double h, long[] view, double[] v, double[] g, double[] c) {
        double keep = g[j];
        g[j] = keep + h;
        double up = LpReference.weightLoss(view, v, g, c);
        g[j] = keep - h;
        double down = LpReference.weightLoss(view, v, g, c);
        g[j] = keep;
        return (up - down) / (2 * h);
    }

    @Test
    void resultsDoNotDependOnThreadCount() {
        Object[][] cases = {{new long[] {300, 7}, 1}, {new long[] {300, 7}, 0}, {new long[] {3, 20011}, 0},
                {new long[] {5, 7000}, -1}, {new long[] {600, 3, 5}, 1}, {new long[] {2, 3, 100}, 1},
                {new long[] {5000, 9}, 1}, {new long[] {4, 5000}, 1}, {new long[] {600, 1000}, 1},
                {new long[] {1100, 17}, 1}};
        ExecutorService pool = Executors.newFixedThreadPool(3);
        SplittableRandom rnd = new SplittableRandom(3);
        try (Arena arena = Arena.ofShared()) {
            for (Object[] cse : cases) {
                long[] dims = (long[]) cse[0];
                int dim = (Integer) cse[1];
                long k = WeightNorm.normSize(dims, dim), numel = Arrays.stream(dims).reduce(1, (x, y) -> x * y);
                float[] vf = new float[(int) numel], gwf = new float[vf.length], gf = new float[(int) k];
                for (int i = 0; i < vf.length; i++) {
                    vf[i] = (float) (1 + rnd.nextGaussian());
                    gwf[i] = (float) rnd.nextGaussian();
                }
                for (int j = 0; j < k; j++) gf[j] = (float) rnd.nextDouble(0.5, 2);
                MemorySegment vs = TestData.copyOf(arena, vf), gws = TestData.copyOf(arena, gwf), gs = TestData.copyOf(arena, gf);
                byte[][] serial = null;
                for (int tasks = 1; tasks <= 4; tasks++) {
                    MemorySegment ws = arena.allocate(4 * numel), ns = arena.allocate(4 * k);
                    MemorySegment gvs = arena.allocate(4 * numel), ggs = arena.allocate(4 * k);
                    Parallelism par = Parallelism.of(pool, tasks);
                    WeightNorm.forward(dims, dim, vs, gs, ws, ns, par);
                    WeightNorm.backward(dims, dim, gws, vs, gs, ns, gvs, ggs, par);
                    byte[][] out = {bytes(ws), bytes(ns), bytes(gvs), bytes(ggs)};
                    if (serial == null) {
                        serial = out;
                    } else {
                        for (int o = 0; o < out.length; o++) {
                            assertArrayEquals(serial[o], out[o], "output " + o + " with " + tasks + " tasks for "
                                    + Arrays.toString(dims) + " dim " + dim);
                        }
                    }
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    private static byte[] bytes(MemorySegment s) {
        return s.toArray(ValueLayout.JAVA_BYTE);
    }

    @Test
    void zeroSliceGivesNanLikeAten() {
        try (Arena arena = Arena.ofConfined()) {
            // rows 0 and 2 ordinary, row 1 all zeros: its norm is 0 and its w is 0 * (g/0) = NaN
            float[] vf = {3, 4, 0, 0, 1, 0};
            MemorySegment vs = TestData.copyOf(arena, vf), gs = TestData.copyOf(arena, new float[] {1, 1, 2});
            MemorySegment ws = arena.allocate(24), ns = arena.allocate(12);
            WeightNorm.forward(new long[] {3, 2}, 0, vs, gs, ws, ns);
            float[] w = TestData.read(ws), norm = TestData.read(ns);
            assertArrayEquals(new float[] {5, 0, 1}, norm);
            assertEquals(0.6f, w[0]);
            assertEquals(0.8f, w[1]);
            assertTrue(Float.isNaN(w[2]) && Float.isNaN(w[3]), Arrays.toString(w));
            assertEquals(2f, w[4]);
            assertEquals(0f, w[5]);
        }
    }

    @Test
    void normSizeFollowsAtenDims() {
        long[] d = {4, 5, 6};
        assertEquals(4, WeightNorm.normSize(d, 0));
        assertEquals(5, WeightNorm.normSize(d, 1));
        assertEquals(6, WeightNorm.normSize(d, 2));
        assertEquals(1, WeightNorm.normSize(d, -1)); // whole tensor, not the last dim
        assertEquals(5, WeightNorm.normSize(d, -2));
        assertEquals(4, WeightNorm.normSize(d, -3));
        assertEquals(1, WeightNorm.normSize(new long[] {7}, -1));
        assertEquals(7, WeightNorm.normSize(new long[] {7}, 0));
    }

    @Test
    void badInputIsRejectedBeforeAnyWrite() {
        try (Arena arena = Arena.ofConfined()) {
            long[] dims = {3, 4};
            MemorySegment v = TestData.filled(arena, 12, 1f, 0), g = TestData.filled(arena, 3, 1f, 0);
            MemorySegment w = TestData.filled(arena, 12, -7f, 0), n = TestData.filled(arena, 3, -7f, 0);
            IllegalArgumentException range = assertThrows(IllegalArgumentException.class,
                    () -> WeightNorm.forward(dims, 2, v, g, w, n));
            assertEquals("dim: Dimension out of range (expected to be in range of [-2, 1], but got 2)", range.getMessage());
            assertThrows(IllegalArgumentException.class, () -> WeightNorm.forward(dims, -3, v, g, w, n));
            assertThrows(IllegalArgumentException.class, () -> WeightNorm.forward(null, 0, v, g, w, n));
            assertThrows(IllegalArgumentException.class, () -> WeightNorm.forward(new long[0], 0, v, g, w, n));
            assertThrows(IllegalArgumentException.class, () -> WeightNorm.forward(new long[] {3, 0}, 0, v, g, w, n));
            assertThrows(IllegalArgumentException.class, () -> WeightNorm.forward(new long[] {Long.MAX_VALUE / 2, 3}, 0, v, g, w, n));
            IllegalArgumentException gSize = assertThrows(IllegalArgumentException.class,
                    () -> WeightNorm.forward(dims, 1, v, g, w, n)); // dim 1 needs 4 floats of g
            assertTrue(gSize.getMessage().startsWith("g: expected 16 bytes"), gSize.getMessage());
            assertThrows(IllegalArgumentException.class, () -> WeightNorm.forward(dims, 0, v, null, w, n));
            MemorySegment big = TestData.filled(arena, 13, 0, 0);
            IllegalArgumentException shifted = assertThrows(IllegalArgumentException.class,
                    () -> WeightNorm.forward(dims, 0, big.asSlice(0, 48), g, big.asSlice(4, 48), n));
            assertTrue(shifted.getMessage().contains("w overlaps v without being exactly the same memory"), shifted.getMessage());
            assertThrows(IllegalArgumentException.class, () -> WeightNorm.forward(dims, 0, v, g, w, v.asSlice(0, 12)));
            assertThrows(IllegalArgumentException.class, () -> WeightNorm.forward(dims, 0, v, g, w.asReadOnly(), n));
            assertThrows(IllegalArgumentException.class, () -> WeightNorm.forward(dims, 0, v, g, w, n, null));
            assertThrows(IllegalArgumentException.class, () -> WeightNorm.backward(dims, 0, v, v, g, null, w, n));
            assertThrows(IllegalArgumentException.class,
                    () -> WeightNorm.backward(dims, 0, v, v, g, n, TestData.filled(arena, 11, 0, 0), null));
            assertThrows(IllegalArgumentException.class, () -> WeightNorm.backward(dims, 0, w, v, g, n, null, g));
            float[] wAfter = TestData.read(w), nAfter = TestData.read(n);
            for (float f : wAfter) assertEquals(-7f, f);
            for (float f : nAfter) assertEquals(-7f, f);
        }
        Arena closed = Arena.ofConfined();
        MemorySegment dead = closed.allocate(48);
        closed.close();
        try (Arena arena = Arena.ofConfined()) {
            assertThrows(IllegalStateException.class, () -> WeightNorm.forward(new long[] {3, 4}, 0, dead,
                    arena.allocate(12), arena.allocate(48), null));
        }
    }
}
