package io.github.vecnorm;

import static org.quicktheories.generators.Generate.constant;
import static org.quicktheories.generators.Generate.frequency;
import static org.quicktheories.generators.Generate.longRange;
import static org.quicktheories.generators.Generate.pick;
import static org.quicktheories.generators.Generate.range;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.quicktheories.api.Pair;
import org.quicktheories.core.Gen;

/**
 * QuickTheories generators for BatchNorm properties: a shape first (dims as PyTorch writes them), then
 * a recipe for data of that shape. The recipe's regime (spread, offset, constant channels, value
 * distribution, affine, eps, dy, running statistics) is drawn by QuickTheories, so it shrinks; the
 * values themselves come from a seeded generator, bounded by construction (no ±Float.MAX_VALUE).
 */
public final class Cases {

    private Cases() {
    }

    /** Spatial sizes that straddle vector widths (8 and 16 lanes, 4x unrolled), primes, the memory-order switch. */
    static final List<Integer> AWKWARD_S = List.of(1, 2, 3, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33,
            47, 63, 64, 65, 67, 127, 129, 207, 1021);

    /** A few medium shapes: m = N*S from ~6k to ~50k (most cases are small). */
    static final List<long[]> MEDIUM = List.of(
            new long[] {8, 4, 56, 56},      // m = 25088, 4 x 3136: memory-order walk, S % 64 == 0
            new long[] {2, 3, 4099},        // m = 8198, S prime
            new long[] {1, 1, 50021},       // m = 50021, prime, N = 1
            new long[] {32, 2, 1021},       // m = 32672, S prime
            new long[] {16, 3, 17, 23},     // m = 6256, S = 391
            new long[] {4, 2, 13, 11, 7},   // 3d, m = 4004
            new long[] {6000, 5},           // 1d (N, C), m = 6000, S = 1
            new long[] {3, 2, 4097, 3});    // m = 36873, S = 12291

    /** The dims of a tensor (N, C, *spatial), at least 2 of them, with N*S >= minM. */
    public static Gen<long[]> dims(int minM) {
        Gen<long[]> small = range(0, AWKWARD_S.size() + 2).flatMap(idx -> {
            // mostly an awkward S, sometimes any S up to 300
            Gen<Integer> sGen = idx < AWKWARD_S.size() ? constant(AWKWARD_S.get(idx)) : range(1, 300);
            return sGen.flatMap(s -> pick(List.of(1, 1, 2, 3, 4, 5)).flatMap(n ->
                    range(1, 5).flatMap(c -> spatial(s).map(sp -> dimsOf(n, c, sp, minM)))));
        });
        Gen<long[]> mTwo = pick(List.of(
                new long[] {2, 1}, new long[] {2, 3}, new long[] {1, 1, 2}, new long[] {1, 4, 2},
                new long[] {2, 2, 1}, new long[] {1, 2, 1, 2}, new long[] {2, 5, 1, 1, 1}));
        Gen<long[]> bigC = range(256, 300).flatMap(c -> pick(List.of(1, 2, 3, 5, 7, 9, 16, 17)).flatMap(s ->
                range(1, 3).flatMap(n -> spatial(s).map(sp -> dimsOf(n, c, sp, minM)))));
        Gen<long[]> oneD = range(2, 40).flatMap(n -> range(1, 20).map(c -> new long[] {n, c}));
        Gen<long[]> medium = pick(MEDIUM);
        // many rows of a few small columns: BatchNorm's column path with several 32-row blocks and bands (S < 32),
        // or short runs summed in memory order (S >= 32)
        Gen<long[]> tall = range(64, 700).flatMap(n -> range(1, 7).flatMap(c -> pick(List.of(1, 2, 3, 5, 9, 13, 17, 20, 24, 31, 33, 36, 39))
                .map(s -> s == 1 ? new long[] {n, c} : new long[] {n, c, s})));
        return frequency(List.of(Pair.of(68, small), Pair.of(8, mTwo), Pair.of(6, bigC), Pair.of(8, oneD),
                Pair.of(4, medium), Pair.of(8, tall)));
    }

    /** Spatial dims with product s: 1d (s), or split into 2d / 3d factors, or none when s == 1. */
    private static Gen<long[]> spatial(int s) {
        List<Integer> divs = new ArrayList<>();
        for (int d = 1; d <= s; d++) if (s % d == 0) divs.add(d);
        return range(0, 3).flatMap(rank -> {
            if (rank == 0) return constant(s == 1 ? new long[0] : new long[] {s});
            if (rank == 1) return constant(new long[] {s});
            if (rank == 2) return pick(divs).map(h -> new long[] {h, s / h});
            return pick(divs).flatMap(d -> {
                List<Integer> rest = new ArrayList<>();
                for (int h = 1; h <= s / d; h++) if ((s / d) % h == 0) rest.add(h);
                return pick(rest).map(h -> new long[] {d, h, s / d / h});
            });
        });
    }

    private static long[] dimsOf(int n, int c, long[] spatial, int minM) {
        long s = 1;
        for (long d : spatial) s *= d;
        if (n * s < minM) n = (int) ((minM + s - 1) / s); // training needs m >= 2
        long[] dims = new long[2 + spatial.length];
        dims[0] = n;
        dims[1] = c;
        System.arraycopy(spatial, 0, dims, 2, spatial.length);
        return dims;
    }

    /**
     * How the data of a case is drawn.
     *
     * @param spreadExp  spread of each channel is 10^spreadExp (times up to 2^±1): -3 tiny, 3 huge
     * @param offsetKind 0 centred, 1 offset up to 10 spreads, 2 offset 10^2..10^4 spreads, 3 exactly 1e4 spreads; sign random
     * @param constKind  0 none, 1 every channel constant (variance 0), 2 every other channel constant
     * @param distKind   0 gaussian, 1 uniform, 2 two values, 3 skewed (exponential), 4 sparse outliers
     * @param affineKind 0 no gamma/beta, 1 gamma only, 2 beta only, 3 both
     * @param eps        eps
     * @param dyKind     0 gaussian, 1 gaussian with a common offset, 2 constant per channel, 3 zero, 4 sparse
     * @param momentum   a momentum, or -1 for a cumulative average
     * @param tracked    num_batches_tracked before the call
     * @param misalign   floats by which every segment is shifted from a 64-byte boundary
     * @param mask       backward output mask: bit 0 dx, 1 dgamma, 2 dbeta (never 0)
     * @param seed       seed of the values
     */
    public record Recipe(int spreadExp, int offsetKind, int constKind, int distKind, int affineKind, double eps,
                         int dyKind, double momentum, long tracked, int misalign, int mask, long seed) {
    }

    static final List<Double> EPS = List.of(1e-5, 1e-5, 1e-3, 1e-1, 1.0, 1e-8);
    static final List<Double> MOMENTA = List.of(0.1, 0.1, 0.0, 1.0, 0.37, 0.9, -1.0, -1.0);

    public static Gen<Recipe> recipes() {
        Gen<int[]> regime = range(-3, 3).flatMap(sp -> range(0, 3).flatMap(off -> range(0, 8).flatMap(cst ->
                range(0, 4).flatMap(dist -> range(0, 3).map(aff -> new int[] {
                        sp, off, cst <= 6 ? 0 : cst - 6, dist, aff})))));
        // spreads: the extremes and the unit get extra weight
        Gen<int[]> regimeWeighted = frequency(List.of(Pair.of(5, regime),
                Pair.of(2, regime.map(r -> withSpread(r, -3))), Pair.of(2, regime.map(r -> withSpread(r, 3))),
                Pair.of(2, regime.map(r -> withSpread(r, 0)))));
        return regimeWeighted.flatMap(r -> pick(EPS).flatMap(eps -> range(0, 4).flatMap(dyKind ->
                pick(MOMENTA).flatMap(mom -> pick(List.of(0L, 0L, 1L, 7L, 1000L)).flatMap(tracked ->
                        range(0, 7).flatMap(mis -> pick(List.of(1, 2, 4, 7, 7)).flatMap(mask ->
                                longRange(0, Long.MAX_VALUE / 2).map(seed -> new Recipe(r[0], r[1], r[2], r[3], r[4],
                                        eps, dyKind, mom, tracked, mis, mask, seed)))))))));
    }

    private static int[] withSpread(int[] r, int sp) {
        int[] c = r.clone();
        c[0] = sp;
        return c;
    }

    /** A shape and the recipe of its data. */
    public record Case(long[] dims, Recipe recipe) {
        public Shape shape() {
            return Shape.of(dims);
        }

        public int n() {
            return (int) dims[0];
        }

        public int c() {
            return (int) dims[1];
        }

        public int s() {
            return (int) shape().s();
        }

        public int m() {
            return n() * s();
        }

        @Override
        public String toString() {
            return "Case" + Arrays.toString(dims) + " " + recipe;
        }
    }

    /** Shape first, then data of that shape. */
    public static Gen<Case> cases(int minM) {
        return dims(minM).flatMap(d -> recipes().map(r -> new Case(d, r)));
    }

    /** The tensors of a case, drawn from its recipe. */
    public static final class Data {
        public final float[] x, gamma, beta, dy, runMean, runVar;

        Data(Case k) {
            Recipe r = k.recipe();
            int n = k.n(), cs = k.c(), s = k.s();
            SplittableRandom rnd = new SplittableRandom(r.seed());
            x = new float[n * cs * s];
            dy = new float[x.length];
            gamma = (r.affineKind() & 1) != 0 ? new float[cs] : null;
            beta = (r.affineKind() & 2) != 0 ? new float[cs] : null;
            runMean = new float[cs];
            runVar = new float[cs];
            double dyScale = Math.pow(10, rnd.nextDouble(-2, 2));
            for (int c = 0; c < cs; c++) {
                double spread = Math.pow(10, r.spreadExp()) * Math.pow(2, rnd.nextDouble(-1, 1));
                double ratio = switch (r.offsetKind()) {
                    case 0 -> 0;
                    case 1 -> rnd.nextDouble(0, 10);
                    case 2 -> Math.pow(10, rnd.nextDouble(2, 4));
                    default -> 1e4;
                };
                double offset = (rnd.nextBoolean() ? 1 : -1) * ratio * spread;
                boolean constant = r.constKind() == 1 || (r.constKind() == 2 && c % 2 == 0);
                double constValue = offset + spread * rnd.nextGaussian();
                double dyOffset = r.dyKind() == 1 ? 3 * dyScale * rnd.nextGaussian() : 0;
                double dyConst = dyScale * rnd.nextGaussian();
                for (int b = 0; b < n; b++) {
                    for (int i = 0; i < s; i++) {
                        int j = Reference.at(b, c, i, cs, s);
                        x[j] = (float) (constant ? constValue : offset + spread * draw(r.distKind(), rnd));
                        dy[j] = (float) switch (r.dyKind()) {
                            case 0, 1 -> dyOffset + dyScale * rnd.nextGaussian();
                            case 2 -> dyConst;
                            case 3 -> 0.0;
                            default -> rnd.nextInt(8) == 0 ? dyScale * rnd.nextGaussian() : 0.0;
                        };
                    }
                }
                if (gamma != null) gamma[c] = (float) rnd.nextDouble(-2, 2);
                if (beta != null) beta[c] = (float) rnd.nextDouble(-5, 5);
                // running statistics near the data's, as a trained layer would hold
                runMean[c] = (float) (offset + spread * rnd.nextGaussian());
                runVar[c] = rnd.nextInt(10) == 0 ? 0f : (float) (spread * spread * Math.pow(10, rnd.nextDouble(-1, 1)));
            }
        }
    }

    private static double draw(int kind, SplittableRandom rnd) {
        return switch (kind) {
            case 0 -> rnd.nextGaussian();
            case 1 -> rnd.nextDouble(-1.7, 1.7);
            case 2 -> rnd.nextBoolean() ? 1 : -1;
            case 3 -> -Math.log(1 - rnd.nextDouble()) - 1;
            default -> rnd.nextInt(16) == 0 ? 4 * rnd.nextGaussian() : 0.0;
        };
    }

    public static Data data(Case k) {
        return new Data(k);
    }
}
