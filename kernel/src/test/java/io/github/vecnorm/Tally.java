package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.vecnorm.internal.Kernels;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Counts how often a property met the cases it exists for (tails, m = 2, huge offsets, constant
 * channels...), and the largest error/tolerance ratio it saw. {@link #report} prints them (surefire
 * keeps stdout in target/surefire-reports/*-output.txt) and fails if a counted case never occurred,
 * so a generator cannot silently stop producing it.
 */
public final class Tally {

    private final String name;
    private final Map<String, Long> counts = new LinkedHashMap<>();
    private double worst;
    private String worstWhat = "-";

    /** A tally whose every key must be seen at least once. */
    public Tally(String name, String... keys) {
        this.name = name;
        for (String k : keys) counts.put(k, 0L);
    }

    /** The keys {@link #shape} and {@link #data} count. */
    public static final String[] SHAPE_KEYS = {"examples", "S<8", "tail8", "tail16", "S%16==0", "memoryOrder",
            "S=lanes-1,lanes,lanes+1", "m==2", "N==1,S>=2", "C==1", "C>=256", "m>=4000", "1d", "2d", "3d", "prime S",
            "column path", "column path N>=64", "column path S>=16"};
    public static final String[] DATA_KEYS = {"bigOffset", "constantChannel", "tinySpread", "hugeSpread",
            "negativeMean", "nearConstant(var<eps)"};

    public static String[] keys(String[]... groups) {
        int n = 0;
        for (String[] g : groups) n += g.length;
        String[] all = new String[n];
        int i = 0;
        for (String[] g : groups) for (String k : g) all[i++] = k;
        return all;
    }

    public synchronized void count(String key, boolean happened) {
        if (happened) counts.merge(key, 1L, Long::sum);
        else counts.putIfAbsent(key, 0L);
    }

    /** Counts the shape features of a case. */
    public void shape(Cases.Case k) {
        int s = k.s(), n = k.n(), c = k.c();
        count("examples", true);
        count("S<8", s < 8);
        count("tail8", s > 8 && s % 8 != 0);
        count("tail16", s > 16 && s % 16 != 0);
        count("S%16==0", s % 16 == 0);
        count("memoryOrder", s >= 64);
        count("S=lanes-1,lanes,lanes+1", s == 7 || s == 8 || s == 9 || s == 15 || s == 16 || s == 17);
        count("m==2", (long) n * s == 2);
        count("N==1,S>=2", n == 1 && s >= 2);
        count("C==1", c == 1);
        count("C>=256", c >= 256);
        count("m>=4000", (long) n * s >= 4000);
        int rank = k.dims().length;
        count("1d", rank <= 3);
        count("2d", rank == 4);
        count("3d", rank == 5);
        count("prime S", s == 13 || s == 207 || s == 1021 || s == 4099 || s == 50021 || s == 17 || s == 31);
        boolean columns = ErrorModel.columnPath(n, c, s);
        count("column path", columns);
        count("column path N>=64", columns && n >= 64); // blocks of 32 rows flushed, more than one band
        count("column path S>=16", columns && s >= 16);
    }

    /** Counts the data features of a case from its statistics. */
    public void data(Cases.Case k, Reference.Stats st, double eps) {
        boolean big = false, constant = false, negative = false, nearConst = false;
        for (int c = 0; c < st.mean().length; c++) {
            double sd = Math.sqrt(st.var()[c]);
            big |= sd > 0 && Math.abs(st.mean()[c]) >= 1e3 * sd;
            constant |= st.var()[c] == 0;
            negative |= st.mean()[c] < 0;
            nearConst |= st.var()[c] > 0 && st.var()[c] < eps;
        }
        count("bigOffset", big);
        count("constantChannel", constant);
        count("tinySpread", k.recipe().spreadExp() == -3);
        count("hugeSpread", k.recipe().spreadExp() == 3);
        count("negativeMean", negative);
        count("nearConstant(var<eps)", nearConst);
    }

    /** Asserts |actual - expected| <= tol (NaN fails), remembering the largest error/tol ratio. */
    public void close(String what, long index, double actual, double expected, double tol, Object input) {
        double err = Math.abs(actual - expected);
        if (!(err <= tol)) {
            throw new AssertionError(what + " at index #" + index + ": got " + actual + ", expected " + expected
                    + " +- " + tol + " (error " + err + "), input = " + input);
        }
        if (tol > 0) {
            double r = err / tol;
            synchronized (this) {
                if (r > worst) {
                    worst = r;
                    worstWhat = what + " #" + index + ": got " + actual + ", expected " + expected + " +- " + tol;
                }
            }
        }
    }

    /** Prints the counts and fails if any counted case never occurred. */
    public void report() {
        StringBuilder sb = new StringBuilder("[tally] ").append(name).append(" (").append(Kernels.primitives().name())
                .append(", ").append(Kernels.primitives().lanes()).append(" lanes):");
        counts.forEach((k, v) -> sb.append(' ').append(k).append('=').append(v));
        sb.append(String.format(" | worst error/tolerance = %.3g (%s)", worst, worstWhat));
        System.out.println(sb);
        counts.forEach((k, v) -> assertTrue(v > 0, name + ": the generator produced no case of '" + k + "': " + sb));
    }
}
