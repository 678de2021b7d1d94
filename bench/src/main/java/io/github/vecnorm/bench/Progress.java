package io.github.vecnorm.bench;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.infra.IterationParams;
import org.openjdk.jmh.results.BenchmarkResult;
import org.openjdk.jmh.results.IterationResult;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.format.OutputFormat;

/**
 * JMH output for the report: one line per fork ({@code [ 7/98] kernel shape impl threads .... 1.234 ±
 * 0.010 ms/op}), the agreement check's verdict, and for a fork that failed the first exception line
 * as its reason, instead of JMH's full log.
 */
final class Progress implements OutputFormat {

    private static final Pattern EXCEPTION = Pattern.compile("^(?:Caused by: )?([\\w.$]+(?:Exception|Error))(?::\\s*(.*))?$");
    private static final Pattern AGREES = Pattern.compile("agrees with the scalar twin: (.*)$");

    private final int total;
    private final long start = System.nanoTime();
    private final List<String> failures = new ArrayList<>();
    private final StringBuilder partial = new StringBuilder();
    private int done;
    private String current;
    private String reason;
    private String check;

    Progress(int total) {
        this.total = total;
    }

    List<String> failures() {
        return failures;
    }

    void failJob(String why) {
        failures.add(why);
        System.out.println("  job failed: " + why);
    }

    private static String label(BenchmarkParams p) {
        String bench = p.getBenchmark().substring(p.getBenchmark().lastIndexOf('.', p.getBenchmark().lastIndexOf('.') - 1) + 1);
        String kernel = bench.startsWith("CopyBench") ? "copy" : p.getParam("kernel");
        String impl = bench.startsWith("CopyBench") ? "copy" : p.getParam("impl");
        return String.format(Locale.ROOT, "%-28s %-13s %-9s t=%s", kernel, p.getParam("shape"), impl, p.getParam("threads"));
    }

    @Override
    public void startBenchmark(BenchmarkParams p) {
        done++;
        current = label(p);
        reason = null;
        check = null;
        long s = (System.nanoTime() - start) / 1_000_000_000L;
        System.out.printf(Locale.ROOT, "[%3d/%d %2d:%02d] %s ", done, total, s / 60, s % 60, current);
        System.out.flush();
    }

    @Override
    public void iteration(BenchmarkParams p, IterationParams ip, int i) {
    }

    @Override
    public void iterationResult(BenchmarkParams p, IterationParams ip, int i, IterationResult r) {
        System.out.print('.');
        System.out.flush();
    }

    @Override
    public void endBenchmark(BenchmarkResult r) {
        flushPartial();
        if (r == null || r.getPrimaryResult() == null || r.getIterationResults().isEmpty()) {
            String why = reason == null ? "failed (no result)" : reason;
            System.out.println(" SKIPPED: " + why);
            failures.add(current.replaceAll("\\s+", " ") + ": " + why);
        } else {
            double err = r.getPrimaryResult().getScoreError();
            System.out.printf(Locale.ROOT, " %s ± %s ms/op%s%n", Report.ms(r.getPrimaryResult().getScore()),
                    Double.isNaN(err) ? "?" : Report.ms(err), check == null ? "" : "  [check: " + check + "]");
        }
        System.out.flush();
    }

    @Override
    public void startRun() {
    }

    @Override
    public void endRun(Collection<RunResult> results) {
        flushPartial();
    }

    @Override
    public void print(String s) {
        partial.append(s);
        int nl;
        while ((nl = partial.indexOf("\n")) >= 0) {
            line(partial.substring(0, nl));
            partial.delete(0, nl + 1);
        }
    }

    @Override
    public void println(String s) {
        print(s + "\n");
    }

    @Override
    public void flush() {
        System.out.flush();
    }

    @Override
    public void close() {
        flushPartial();
    }

    @Override
    public void verbosePrintln(String s) {
    }

    @Override
    public void write(int b) {
        print(String.valueOf((char) b));
    }

    @Override
    public void write(byte[] b) {
        print(new String(b, java.nio.charset.StandardCharsets.UTF_8));
    }

    private void flushPartial() {
        if (!partial.isEmpty()) {
            line(partial.toString());
            partial.setLength(0);
        }
    }

    /** Keeps the agreement verdict and the first exception of the current fork; drops JMH's log. */
    private void line(String raw) {
        String l = raw.strip();
        Matcher a = AGREES.matcher(l);
        if (a.find()) {
            check = a.group(1);
            return;
        }
        Matcher e = EXCEPTION.matcher(l);
        if (e.matches() && reason == null) {
            reason = e.group(2) == null || e.group(2).isBlank() ? e.group(1) : e.group(2);
            return;
        }
        if (l.startsWith("<forked VM failed") && reason == null) reason = l;
    }
}
