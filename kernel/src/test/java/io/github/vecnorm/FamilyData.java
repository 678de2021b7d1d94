package io.github.vecnorm;

import static org.quicktheories.generators.Generate.longRange;
import static org.quicktheories.generators.Generate.pick;
import static org.quicktheories.generators.Generate.range;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import org.quicktheories.core.Gen;

/**
 * Test data for the row and group layers: a recipe drawn by QuickTheories (so it shrinks), the values
 * themselves from a seeded generator, bounded by construction. Plus segment helpers and a coverage
 * counter that says how often the interesting cases were generated.
 */
final class FamilyData {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    private FamilyData() {
    }

    /** Lengths that straddle 8- and 16-lane vectors (and their 2x/4x unrolls), primes, 1. */
    static final List<Integer> AWKWARD = List.of(1, 2, 3, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65,
            127, 129, 207, 1021);

    /**
     * How to fill a tensor: {@code kind} 0 = uniform, 1 = Gaussian-like with rare outliers (x40),
     * 2 = every set constant, 3 = some sets constant, 4 = few distinct values; values are
     * {@code offset + scale * noise}.
     */
    record Recipe(long seed, int kind, double offset, double scale) {

        /** {@code sets * len} values; a "set" is what one statistic is taken over. */
        float[] values(int sets, int len) {
            SplittableRandom rnd = new SplittableRandom(seed);
            float[] v = new float[sets * len];
            for (int k = 0; k < sets; k++) {
                boolean constant = kind == 2 || (kind == 3 && rnd.nextInt(3) == 0);
                double level = rnd.nextDouble(-1, 1);
                for (int t = 0; t < len; t++) {
                    double noise = switch (kind) {
                        case 1 -> gauss(rnd) * (rnd.nextInt(50) == 0 ? 40 : 1);
                        case 4 -> rnd.nextInt(3) - 1;
                        default -> rnd.nextDouble(-1, 1);
                    };
                    v[k * len + t] = (float) (offset + scale * (constant ? level : noise));
                }
            }
            return v;
        }

        boolean bigOffset() {
            return Math.abs(offset) >= 100 * scale;
        }

        @Override
        public String toString() {
            return "Recipe[seed=" + seed + ", kind=" + kind + ", offset=" + offset + ", scale=" + scale + "]";
        }
    }

    private static double gauss(SplittableRandom rnd) {
        double s = 0;
        for (int i = 0; i < 4; i++) s += rnd.nextDouble(-1, 1);
        return s * 0.866; // Irwin-Hall, unit variance, bounded by 3.5
    }

    /** Recipes: mostly moderate data, some large offsets (up to 3e4 times the spread), some constant sets. */
    static Gen<Recipe> recipes() {
        Gen<Long> seeds = longRange(0, Long.MAX_VALUE / 2);
        Gen<Integer> kinds = range(0, 4);
        Gen<Double> offsets = pick(List.of(0.0, 0.0, 0.5, -3.0, 1e3, -1e3, 1e4, 3e4));
        Gen<Double> scales = pick(List.of(1.0, 1.0, 1e-3, 1e3, 0.37));
        return seeds.zip(kinds, offsets, scales, Recipe::new);
    }

    /** A parameter vector (gamma in [-2, 2], beta in [-1, 1]) from a seed, or null when absent. */
    static float[] params(long seed, int n, double lo, double hi, boolean present) {
        if (!present) return null;
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) rnd.nextDouble(lo, hi);
        return v;
    }

    /** A segment holding {@code v}, starting {@code misalign} floats after a 64-byte boundary; null for null. */
    static MemorySegment seg(Arena arena, float[] v, int misalign) {
        if (v == null) return null;
        MemorySegment s = alloc(arena, v.length, misalign);
        MemorySegment.copy(v, 0, s, F, 0, v.length);
        return s;
    }

    /** {@code n} floats of NaN ("must be overwritten"), misaligned as asked. */
    static MemorySegment nans(Arena arena, long n, int misalign) {
        MemorySegment s = alloc(arena, n, misalign);
        for (long i = 0; i < n; i++) s.setAtIndex(F, i, Float.NaN);
        return s;
    }

    static MemorySegment alloc(Arena arena, long n, int misalign) {
        return arena.allocate(n * Float.BYTES + 64, 64).asSlice(misalign * (long) Float.BYTES, n * Float.BYTES);
    }

    static float[] read(MemorySegment s) {
        return s == null ? null : s.toArray(F);
    }

    static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }

    /** Counts of interesting cases, printed by each test class (surefire's report file). */
    static final class Coverage {
        private final ConcurrentHashMap<String, LongAdder> counts = new ConcurrentHashMap<>();

        void count(String what, boolean when) {
            if (when) counts.computeIfAbsent(what, k -> new LongAdder()).increment();
        }

        String report() {
            return new java.util.TreeMap<>(counts).toString();
        }
    }
}
