package io.github.vecnorm.bench;

import io.github.vecnorm.internal.Kernels;
import io.github.vecnorm.internal.Primitives;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;

/**
 * The quick benchmark report (the README's first command): every kernel on the headline shape and a
 * few others, vecnorm (scalar twin and Vector API), the native peers and the copy roofline, on 1 and
 * all cores, run with JMH in forks of their own. Writes {@code report.json}, {@code report.md} and
 * {@code report.png} into the output directory and prints a table.
 *
 * <p>Arguments: {@code --out DIR} (default {@code target}), {@code --docs DIR} to also write the
 * results page ({@code results.md} and {@code report.png}) there, unless {@code --publish false}.
 *
 * <p>Each implementation is first probed in a JVM of its own ({@link Probe}): one that does not load
 * or does not agree with the scalar twin is left out of the run with the reason printed.
 */
public final class Report {

    /** The shape of the report's headline (ResNet-50's second stage at batch 32). */
    static final String HEADLINE = "32x64x56x56";
    /** Other shapes of the quick run: last ResNet stage (short runs, S = 49), and batch 1. */
    static final List<String> OTHERS = List.of("32x2048x7x7", "1x64x56x56");
    /** Inference-only latency shape (one value per channel). */
    static final String INFERENCE_ONLY = "1x256x1x1";

    /** The project's goals: vecnorm's Vector API kernels at the headline shape on 1 thread, as a fraction of the copy roofline. */
    static final Map<Kernel, Double> TARGETS = Map.of(
            Kernel.BATCHNORM_FORWARD_TRAINING, 0.80,
            Kernel.BATCHNORM_FORWARD_INFERENCE, 0.90,
            Kernel.BATCHNORM_BACKWARD, 0.75);

    /** One line of report.json. */
    record Row(String kernel, String shape, String impl, int threads, double msPerOp, double msError,
               double gbPerS, double rooflineFraction) {
    }

    /** One JMH invocation: a benchmark over the cross product of its parameters. */
    record Job(String benchmark, Kernel kernel, List<String> shapes, List<String> impls, List<Integer> threads,
               boolean headline) {
        /** Parameter sets, each one line of progress (a headline copy runs its set in three forks). */
        int forks() {
            return shapes.size() * impls.size() * threads.size();
        }
    }

    private Report() {
    }

    public static void main(String[] args) throws IOException {
        Path out = Path.of("target");
        Path docs = null;
        boolean publish = true;
        for (int i = 0; i < args.length; i++) {
            if (i + 1 >= args.length) throw new IllegalArgumentException("Report: " + args[i] + " needs a value");
            switch (args[i]) {
                case "--out" -> out = Path.of(args[++i]);
                case "--docs" -> docs = Path.of(args[++i]).toAbsolutePath().normalize();
                case "--publish" -> publish = Boolean.parseBoolean(args[++i].trim());
                default -> throw new IllegalArgumentException("Report: unknown argument '" + args[i]
                        + "'; expected --out DIR, --docs DIR, --publish true|false");
            }
        }
        if (!publish) docs = null;
        Files.createDirectories(out);
        Instant start = Instant.now();
        Machine machine = Machine.describe();
        System.out.println("vecnorm benchmark report");
        System.out.println("  machine: " + machine.oneLine());
        List<String> loadNotes = new ArrayList<>();
        String before = loadNote("Before the run", otherLoad());
        if (before != null) {
            loadNotes.add(before);
            System.out.println("  " + before);
        }
        int all = Runtime.getRuntime().availableProcessors();
        List<Integer> threads = all > 1 ? List.of(1, all) : List.of(1);

        // 1. which implementations work here, kernel by kernel
        System.out.println();
        System.out.println("Checking implementations (each in its own JVM, on " + Probe.SHAPE + ", " + all + " threads):");
        Map<String, Set<Kernel>> works = new LinkedHashMap<>();
        List<String> skipped = new ArrayList<>();
        for (String impl : Impls.ALL) {
            Set<Kernel> ok = new LinkedHashSet<>();
            String reason = probe(impl, all, ok, skipped);
            works.put(impl, ok);
            System.out.printf(Locale.ROOT, "  %-9s %s%n", impl, reason);
        }

        // 2. the plan
        List<Job> jobs = plan(works, threads);
        // the normalization family (FamilyReport): headline shape per kernel, after BatchNorm
        List<FamilyReport.Job> familyJobs = FamilyReport.plan(threads, copiedShapes());
        int total = jobs.stream().mapToInt(Job::forks).sum() + familyJobs.stream().mapToInt(FamilyReport.Job::forks).sum();
        System.out.println();
        System.out.println("Running " + total + " benchmarks, each in a JVM of its own (JMH fork); progress below:");
        Progress progress = new Progress(total);
        List<RunResult> results = new ArrayList<>();
        Quiet quiet = new Quiet();
        for (Job job : jobs) {
            quiet.await();
            results.addAll(run(job, progress));
        }
        for (FamilyReport.Job job : familyJobs) {
            quiet.await();
            results.addAll(FamilyReport.run(job, progress));
        }
        String quietNote = quiet.note();
        if (quietNote != null) {
            loadNotes.add(quietNote);
            System.out.println(quietNote);
        }
        skipped.addAll(progress.failures());

        // 3. rows, table, files
        List<Row> rows = rows(results);
        String table = table(rows);
        System.out.println();
        System.out.println(table);
        String targets = targets(rows);
        System.out.println(targets);
        System.out.println(FamilyReport.targets(rows, threads));
        if (!skipped.isEmpty()) {
            System.out.println("Skipped:");
            for (String s : skipped) System.out.println("  - " + s);
        }
        String after = loadNote("After the run", otherLoad());
        if (after != null) {
            loadNotes.add(after);
            System.out.println(after);
        }
        Duration took = Duration.between(start, Instant.now());
        Files.writeString(out.resolve("report.json"), json(rows), StandardCharsets.UTF_8);
        String chartNote;
        try {
            ReportChart.write(rows, HEADLINE, threads, out.resolve("report.png"));
            FamilyChart.append(rows, threads, out.resolve("report.png"));
            chartNote = null;
        } catch (RuntimeException | LinkageError | IOException e) {
            chartNote = "chart not drawn: " + Impls.rootMessage(e);
            System.out.println(chartNote);
        }
        String md = markdown(rows, skipped, machine, loadNotes, threads, took, chartNote);
        Files.writeString(out.resolve("report.md"), md, StandardCharsets.UTF_8);
        if (docs != null) {
            Files.createDirectories(docs);
            Files.writeString(docs.resolve("results.md"), md, StandardCharsets.UTF_8);
            if (chartNote == null) {
                Files.copy(out.resolve("report.png"), docs.resolve("report.png"),
                        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
        }
        System.out.println();
        System.out.println("Wrote " + out.resolve("report.json") + ", " + out.resolve("report.md") + ", "
                + out.resolve("report.png") + (docs == null ? "" : " and " + docs.resolve("results.md"))
                + " in " + took.toSeconds() + " s");
        System.exit(0);
    }

    /** Runs {@link Probe} for impl in a child JVM; fills the kernels that work, returns a one-line verdict. */
    static String probe(String impl, int threads, Set<Kernel> ok, List<String> skipped) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("--add-modules=jdk.incubator.vector");
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(Probe.class.getName());
        cmd.add(impl);
        cmd.add(Integer.toString(threads));
        List<String> lines = new ArrayList<>();
        int exit;
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) lines.add(line);
            }
            if (!p.waitFor(5, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                skipped.add(impl + ": probe did not finish in 5 minutes");
                return "SKIPPED: probe did not finish in 5 minutes";
            }
            exit = p.exitValue();
        } catch (IOException e) {
            skipped.add(impl + ": could not start a JVM to probe it (" + e.getMessage() + ")");
            return "SKIPPED: could not start a JVM to probe it (" + e.getMessage() + ")";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
        List<String> fails = new ArrayList<>(), unsupported = new ArrayList<>();
        String error = null;
        for (String l : lines) {
            if (l.startsWith("PROBE ok ")) {
                ok.add(Kernel.byId(l.substring(9).split(" ", 2)[0]));
            } else if (l.startsWith("PROBE unsupported ")) {
                unsupported.add(l.substring(18).trim());
                skipped.add(impl + " " + l.substring(18).trim() + ": not offered by " + impl);
            } else if (l.startsWith("PROBE fail ")) {
                String[] kv = l.substring(11).split(" ", 2);
                fails.add(kv[0]);
                skipped.add(impl + " " + kv[0] + ": " + (kv.length > 1 ? kv[1] : "failed"));
            } else if (l.startsWith("PROBE error ")) {
                error = l.substring(12);
            }
        }
        if (error == null && exit != 0) {
            String last = lines.stream().filter(l -> !l.isBlank() && !l.startsWith("WARNING")).reduce((a, b) -> b).orElse("");
            error = "its JVM exited with status " + exit + (last.isEmpty() ? "" : " (" + last.trim() + ")");
        }
        if (error != null) {
            ok.clear();
            skipped.add(impl + ": " + error);
            return "SKIPPED: " + error;
        }
        StringBuilder sb = new StringBuilder("ok: ");
        sb.append(ok.isEmpty() ? "no kernel" : String.join(", ", ok.stream().map(Kernel::id).toList()));
        if (!unsupported.isEmpty()) sb.append("; has no ").append(String.join(", ", unsupported));
        if (!fails.isEmpty()) sb.append("; FAILED (skipped) ").append(String.join(", ", fails));
        return sb.toString();
    }

    /** The quick selection: copy for every shape, every kernel on the headline and the others. */
    static List<Job> plan(Map<String, Set<Kernel>> works, List<Integer> threads) {
        List<Job> jobs = new ArrayList<>();
        List<String> copyShapes = new ArrayList<>();
        copyShapes.add(HEADLINE);
        copyShapes.addAll(OTHERS);
        copyShapes.add(INFERENCE_ONLY);
        jobs.add(new Job("CopyBench", null, List.of(HEADLINE), List.of(Impls.COPY), threads, true));
        jobs.add(new Job("CopyBench", null, copyShapes.subList(1, copyShapes.size()), List.of(Impls.COPY), threads, false));
        for (boolean headline : new boolean[] {true, false}) {
            for (Kernel k : Kernel.values()) {
                List<String> impls = new ArrayList<>();
                for (String impl : Impls.ALL) if (works.get(impl).contains(k)) impls.add(impl);
                if (impls.isEmpty()) continue;
                List<String> shapes = new ArrayList<>();
                if (headline) {
                    shapes.add(HEADLINE);
                } else {
                    shapes.addAll(OTHERS);
                    if (k == Kernel.BATCHNORM_FORWARD_INFERENCE) shapes.add(INFERENCE_ONLY);
                }
                // one job per implementation: small jobs let the report wait for quiet between them
                for (String impl : impls) jobs.add(new Job("BatchNormBench", k, shapes, List.of(impl), threads, headline));
            }
        }
        return jobs;
    }

    static Collection<RunResult> run(Job job, Progress progress) {
        String bench = "io.github.vecnorm.bench." + job.benchmark();
        ChainedOptionsBuilder o = new OptionsBuilder()
                .include("^" + Pattern.quote(bench) + "\\.")
                .param("shape", job.shapes().toArray(String[]::new))
                .param("threads", job.threads().stream().map(String::valueOf).toArray(String[]::new))
                .forks(1)
                .jvmArgsPrepend("-D" + BatchNormBench.REPORT_MODE + "=true")
                .shouldFailOnError(false)
                .timeUnit(TimeUnit.MILLISECONDS);
        if (job.kernel() != null) {
            o.param("kernel", job.kernel().id()).param("impl", job.impls().toArray(String[]::new));
        }
        // the copy is every roofline fraction's denominator: the longest look; the headline: a longer
        // look; the others: enough for a representative number
        if (job.kernel() == null) {
            o.warmupIterations(5).warmupTime(TimeValue.milliseconds(400))
                    .measurementIterations(10).measurementTime(TimeValue.milliseconds(300));
            // copy speed varies from JVM to JVM by about 10% here (where the pages land): the headline
            // targets are judged against the average of three
            if (job.headline()) o.forks(3);
        } else if (job.headline()) {
            o.warmupIterations(4).warmupTime(TimeValue.milliseconds(400))
                    .measurementIterations(8).measurementTime(TimeValue.milliseconds(300));
        } else {
            o.warmupIterations(2).warmupTime(TimeValue.milliseconds(300))
                    .measurementIterations(3).measurementTime(TimeValue.milliseconds(300));
        }
        // another JMH run on this machine holds JMH's lock (/tmp/jmh.lock): wait for it, bounded, rather
        // than lose the job or time against it
        long lockDeadline = System.nanoTime() + LOCK_PATIENCE.toNanos();
        while (true) {
            try {
                return new Runner(o.build(), progress).run();
            } catch (RunnerException | RuntimeException e) {
                boolean locked = String.valueOf(e.getMessage()).contains("JMH lock");
                if (locked && System.nanoTime() < lockDeadline) {
                    System.out.println("  (another JMH run holds JMH's lock: waiting for it)");
                    try {
                        Thread.sleep(5000);
                    } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                        throw new IllegalStateException("interrupted", ie);
                    }
                    continue;
                }
                progress.failJob(job.benchmark() + (job.kernel() == null ? "" : " " + job.kernel().id()) + ": "
                        + Impls.rootMessage(e));
                return List.of();
            }
        }
    }

    /** How long one job waits for another JMH run's lock before it is given up. */
    static final Duration LOCK_PATIENCE = Duration.ofMinutes(2);

    /** One JMH result, reduced to what the report needs; kernel is "copy" for the roofline. */
    record Measured(String kernel, String shape, String impl, int threads, double ms, double msError) {
    }

    /** Report rows from JMH results. */
    static List<Row> rows(List<RunResult> results) {
        List<Measured> ms = new ArrayList<>();
        for (RunResult r : results) {
            var params = r.getParams();
            boolean copy = params.getBenchmark().endsWith("CopyBench.copy");
            ms.add(new Measured(copy ? "copy" : params.getParam("kernel"), params.getParam("shape"),
                    copy ? Impls.COPY : params.getParam("impl"), Integer.parseInt(params.getParam("threads")),
                    r.getPrimaryResult().getScore(), r.getPrimaryResult().getScoreError()));
        }
        return derive(ms);
    }

    /**
     * GB/s from each kernel's minimal traffic (trafficFactor x bytes(x), copy 2 x bytes(x)), and the
     * roofline fraction against the copy of the same shape and threads (NaN without one), sorted.
     */
    static List<Row> derive(List<Measured> measured) {
        Map<String, Double> copyMs = new LinkedHashMap<>();
        for (Measured m : measured) if (m.kernel().equals("copy")) copyMs.put(m.shape() + "/" + m.threads(), m.ms());
        List<Row> rows = new ArrayList<>();
        for (Measured m : measured) {
            boolean copy = m.kernel().equals("copy");
            long bytes = io.github.vecnorm.Shape.parse(m.shape()).byteSize();
            double traffic = (copy ? 2.0 : trafficFactor(m.kernel())) * bytes;
            double gbs = traffic / (m.ms() * 1e-3) / 1e9;
            Double cms = copyMs.get(m.shape() + "/" + m.threads());
            double frac = cms == null ? Double.NaN : gbs / (2.0 * bytes / (cms * 1e-3) / 1e9);
            rows.add(new Row(m.kernel(), m.shape(), m.impl(), m.threads(), m.ms(),
                    Double.isNaN(m.msError()) ? 0 : m.msError(), gbs, frac));
        }
        rows.sort(ROW_ORDER);
        return rows;
    }

    static final List<String> SHAPE_ORDER = List.of(HEADLINE, "32x2048x7x7", "1x64x56x56", INFERENCE_ONLY);
    static final List<String> IMPL_ORDER = List.of("scalar", "vector", "libtorch", "onednn", "ort", "copy");

    static final Comparator<Row> ROW_ORDER = Comparator
            .comparingInt((Row r) -> rank(SHAPE_ORDER, r.shape()))
            .thenComparing(Row::shape)
            .thenComparingInt(r -> kernelRank(r.kernel()))
            .thenComparingInt(Row::threads)
            .thenComparingInt(r -> rank(IMPL_ORDER, r.impl()));

    /** Bytes moved per call over bytes(x), for BatchNorm's kernels and the family's. */
    static int trafficFactor(String kernel) {
        FamilyKernel f = FamilyKernel.orNull(kernel);
        return f != null ? f.trafficFactor() : Kernel.byId(kernel).trafficFactor();
    }

    /** copy first, then BatchNorm's kernels, then the family's, each in enum order. */
    static int kernelRank(String kernel) {
        if (kernel.equals("copy")) return -1;
        FamilyKernel f = FamilyKernel.orNull(kernel);
        return f != null ? Kernel.values().length + f.ordinal() : Kernel.byId(kernel).ordinal();
    }

    /** The shapes the BatchNorm part's copy jobs measure. */
    static List<String> copiedShapes() {
        List<String> s = new ArrayList<>(List.of(HEADLINE));
        s.addAll(OTHERS);
        s.add(INFERENCE_ONLY);
        return s;
    }

    private static int rank(List<String> order, String s) {
        int i = order.indexOf(s);
        return i < 0 ? order.size() : i;
    }

    static String table(List<Row> rows) {
        StringBuilder sb = new StringBuilder();
        String fmt = "%-28s %-13s %-9s %7s %12s %9s %9s %9s%n";
        sb.append(String.format(Locale.ROOT, fmt, "kernel", "shape", "impl", "threads", "ms/op", "± ms", "GB/s", "roofline"));
        String last = null;
        for (Row r : rows) {
            String group = r.shape() + r.kernel() + r.threads();
            if (last != null && !group.equals(last)) sb.append('\n');
            last = group;
            sb.append(String.format(Locale.ROOT, fmt, r.kernel(), r.shape(), r.impl(), r.threads(),
                    ms(r.msPerOp()), ms(r.msError()), String.format(Locale.ROOT, "%.1f", r.gbPerS()),
                    Double.isNaN(r.rooflineFraction()) ? "-" : String.format(Locale.ROOT, "%.2f", r.rooflineFraction())));
        }
        return sb.toString();
    }

    /** Milliseconds to about 4 significant digits, never in exponent notation. */
    static String ms(double v) {
        if (!Double.isFinite(v)) return "-";
        if (v >= 100) return String.format(Locale.ROOT, "%.1f", v);
        if (v >= 1) return String.format(Locale.ROOT, "%.3f", v);
        if (v >= 0.01 || v == 0) return String.format(Locale.ROOT, "%.4f", v);
        return new java.math.BigDecimal(v).round(new java.math.MathContext(3)).toPlainString();
    }

    static String json(List<Row> rows) {
        StringBuilder sb = new StringBuilder("[\n");
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            sb.append(String.format(Locale.ROOT,
                    "  {\"kernel\": \"%s\", \"shape\": \"%s\", \"impl\": \"%s\", \"threads\": %d, \"msPerOp\": %s, "
                            + "\"msError\": %s, \"gbPerS\": %s, \"rooflineFraction\": %s}",
                    r.kernel(), r.shape(), r.impl(), r.threads(), num(r.msPerOp()), num(r.msError()),
                    num(r.gbPerS()), num(r.rooflineFraction())));
            sb.append(i + 1 < rows.size() ? ",\n" : "\n");
        }
        return sb.append("]\n").toString();
    }

    private static String num(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.6g", v) : "null";
    }

    static String markdown(List<Row> rows, List<String> skipped, Machine machine, List<String> loadNotes,
                           List<Integer> threads, Duration took, String chartNote) {
        StringBuilder sb = new StringBuilder();
        sb.append("# vecnorm benchmark results\n\n");
        sb.append("Generated by the quick benchmark report, `./mvnw -B -Preport verify` (the README's first command; ")
                .append("`-Dreport.publish=true` also writes this page), on ")
                .append(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm 'UTC'").format(Instant.now().atZone(ZoneOffset.UTC)))
                .append(", in ").append(took.toSeconds()).append(" s. JMH, one fork per row (three for the headline copy), ")
                .append("short warmup and measurement: a representative look, not a definitive one. ")
                .append("The ± is the spread within a fork; from one JVM to the next, times on this kind of machine ")
                .append("also move by up to about 10%.\n\n");
        sb.append("## Machine\n\n").append(machine.markdown());
        for (String n : loadNotes) sb.append("- ").append(n).append('\n');
        sb.append('\n');
        sb.append("## How to read it\n\n")
                .append("- ms/op: average time of one call (JMH AverageTime), ± the 99.9% confidence half-width.\n")
                .append("- GB/s: the kernel's minimal memory traffic per call over its time: forward 2 x bytes(x) ")
                .append("(read x, write y), backward 3 x bytes(x) (read x and dy, write dx); copy 2 x bytes(x).\n")
                .append("- roofline: GB/s as a fraction of `MemorySegment.copy` of bytes(x) measured in the same run, ")
                .append("same shape and thread count (1.00 = as fast as copying the bytes it must move).\n")
                .append("- Every implementation was checked against vecnorm's scalar twin before timing.\n\n");
        sb.append("## Headline: ").append(HEADLINE).append("\n\n");
        if (chartNote == null) {
            sb.append("![time per kernel and implementation, ").append(HEADLINE).append("](report.png)\n\n");
        } else {
            sb.append("(").append(chartNote).append(")\n\n");
        }
        sb.append(headlineTable(rows, threads)).append('\n');
        sb.append(targets(rows)).append('\n');
        sb.append(FamilyReport.markdown(rows, threads));
        sb.append("## All rows\n\n");
        sb.append("| kernel | shape | impl | threads | ms/op | ± ms | GB/s | roofline |\n");
        sb.append("|---|---|---|---:|---:|---:|---:|---:|\n");
        for (Row r : rows) {
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %d | %s | %s | %.1f | %s |%n", r.kernel(), r.shape(),
                    r.impl(), r.threads(), ms(r.msPerOp()), ms(r.msError()), r.gbPerS(),
                    Double.isNaN(r.rooflineFraction()) ? "-" : String.format(Locale.ROOT, "%.2f", r.rooflineFraction())));
        }
        if (!skipped.isEmpty()) {
            sb.append("\n## Skipped\n\n");
            for (String s : skipped) sb.append("- ").append(s.replace("|", "\\|")).append('\n');
        }
        return sb.toString();
    }

    /** vector on the headline shape, 1 thread, against {@link #TARGETS}, as a small table. */
    static String targets(List<Row> rows) {
        StringBuilder sb = new StringBuilder("vecnorm (vector, " + HEADLINE + ", 1 thread) against the targets:\n\n");
        sb.append("| kernel | roofline fraction | target | |\n|---|---:|---:|---|\n");
        for (Kernel k : Kernel.values()) {
            Double target = TARGETS.get(k);
            if (target == null) continue;
            Row r = rows.stream().filter(x -> x.kernel().equals(k.id()) && x.shape().equals(HEADLINE)
                    && x.impl().equals(Impls.VECTOR) && x.threads() == 1).findFirst().orElse(null);
            String frac = r == null || Double.isNaN(r.rooflineFraction()) ? "-"
                    : String.format(Locale.ROOT, "%.2f", r.rooflineFraction());
            String verdict = r == null ? "not measured" : r.rooflineFraction() >= target ? "met" : "not met";
            sb.append(String.format(Locale.ROOT, "| %s | %s | >= %.2f | %s |%n", k.id(), frac, target, verdict));
        }
        return sb.toString();
    }

    /** Kernel x impl at the headline shape: ms/op (roofline fraction) per thread count. */
    static String headlineTable(List<Row> rows, List<Integer> threads) {
        StringBuilder sb = new StringBuilder("| kernel | impl |");
        for (int t : threads) sb.append(" ").append(t).append(t == 1 ? " thread" : " threads").append(": ms/op (roofline) |");
        sb.append("\n|---|---|");
        for (int ignored : threads) sb.append("---:|");
        sb.append('\n');
        Map<String, Map<String, Map<Integer, Row>>> byKernel = new LinkedHashMap<>();
        for (Row r : rows) {
            if (!r.shape().equals(HEADLINE) || FamilyKernel.orNull(r.kernel()) != null) continue; // family: own section
            byKernel.computeIfAbsent(r.kernel(), x -> new LinkedHashMap<>())
                    .computeIfAbsent(r.impl(), x -> new LinkedHashMap<>()).put(r.threads(), r);
        }
        for (var k : byKernel.entrySet()) {
            for (var i : k.getValue().entrySet()) {
                sb.append("| ").append(k.getKey()).append(" | ").append(i.getKey()).append(" |");
                for (int t : threads) {
                    Row r = i.getValue().get(t);
                    sb.append(r == null ? " - |" : String.format(Locale.ROOT, " %s (%s) |", ms(r.msPerOp()),
                            Double.isNaN(r.rooflineFraction()) ? "-" : String.format(Locale.ROOT, "%.2f", r.rooflineFraction())));
                }
                sb.append('\n');
            }
        }
        return sb.toString();
    }

    /**
     * The fraction of all cores busy with other work over one second (from /proc/stat), or NaN where
     * that cannot be read: benchmarks on a machine that is busy otherwise are noisy.
     */
    static double otherLoad() {
        return otherLoad(1000);
    }

    /** {@link #otherLoad()} over {@code ms} milliseconds. */
    static double otherLoad(long ms) {
        try {
            long[] a = cpuTimes();
            Thread.sleep(ms);
            long[] b = cpuTimes();
            double busy = b[0] - a[0], total = b[1] - a[1];
            return total <= 0 ? Double.NaN : busy / total;
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Double.NaN;
        }
    }

    /**
     * Before each job, waits while other processes keep the CPU busy (they would be timed along with
     * the benchmark), up to {@link #PER_JOB} per job and {@link #BUDGET} in all, so the report still
     * ends in bounded time on a machine that never quiets down.
     */
    static final class Quiet {
        static final double BUSY = 0.25;
        static final Duration PER_JOB = Duration.ofSeconds(30), BUDGET = Duration.ofMinutes(3);
        private final List<Double> loads = new ArrayList<>();
        private long waitedMs;
        private int busyStarts;

        void await() {
            long start = System.nanoTime();
            double load = otherLoad(300);
            boolean said = false;
            while (load > BUSY && waitedMs + (System.nanoTime() - start) / 1_000_000 < BUDGET.toMillis()
                    && System.nanoTime() - start < PER_JOB.toNanos()) {
                if (!said) {
                    System.out.printf(Locale.ROOT, "  (other processes use %.0f%% of the CPU: waiting for quiet, at most %d s)%n",
                            100 * load, Math.min(PER_JOB.toSeconds(), (BUDGET.toMillis() - waitedMs) / 1000));
                    said = true;
                }
                load = otherLoad(500);
            }
            waitedMs += (System.nanoTime() - start) / 1_000_000;
            if (Double.isNaN(load)) return;
            loads.add(load);
            if (load > BUSY) busyStarts++;
        }

        /** What the waits and the load seen before the jobs say about the numbers, or null if nothing was seen. */
        String note() {
            if (loads.isEmpty()) return null;
            List<Double> sorted = loads.stream().sorted().toList();
            return String.format(Locale.ROOT, "Before each of the %d jobs, other processes used the CPU %.0f%% (median), "
                            + "%.0f%% (max); the report waited %d s in all for quiet, and %d jobs started while it was busy%s",
                    loads.size(), 100 * sorted.get(sorted.size() / 2), 100 * sorted.get(sorted.size() - 1),
                    waitedMs / 1000, busyStarts, busyStarts > 0 ? " (their numbers are likely too slow)" : "");
        }
    }

    /** {busy, total} jiffies of all CPUs. */
    private static long[] cpuTimes() throws IOException {
        String[] f = Files.readAllLines(Path.of("/proc/stat")).get(0).trim().split("\\s+");
        long total = 0;
        for (int i = 1; i < f.length; i++) total += Long.parseLong(f[i]);
        long idle = Long.parseLong(f[4]) + (f.length > 5 ? Long.parseLong(f[5]) : 0);
        return new long[] {total - idle, total};
    }

    static String loadNote(String when, double load) {
        if (Double.isNaN(load)) return null;
        return String.format(Locale.ROOT, "%s, other processes kept %.0f%% of the CPU busy%s", when, 100 * load,
                load > 0.2 ? " - the machine was not quiet, expect noisy numbers (multi-threaded ones most)" : "");
    }

    /** What the numbers were measured on. */
    record Machine(String cpu, String isa, int cores, String lanes, String jdk, String os) {

        static Machine describe() {
            String cpu = "unknown", flags = "";
            try {
                for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                    if (cpu.equals("unknown") && l.startsWith("model name")) cpu = l.substring(l.indexOf(':') + 1).trim();
                    if (flags.isEmpty() && l.startsWith("flags")) flags = " " + l.substring(l.indexOf(':') + 1).trim() + " ";
                }
            } catch (IOException | RuntimeException e) {
                cpu = System.getProperty("os.arch") + " (no /proc/cpuinfo)";
            }
            String isa = flags.contains(" avx512f ") ? "AVX-512" : flags.contains(" avx2 ") ? "AVX2"
                    : flags.contains(" asimd ") ? "NEON" : flags.isEmpty() ? "unknown" : "no AVX2";
            String lanes;
            try {
                Primitives v = Kernels.vectorOrNull();
                lanes = v == null ? "Vector API unavailable" : v.lanes() + " float lanes, " + v.lanes() * 32 + "-bit vectors";
            } catch (RuntimeException | LinkageError e) {
                lanes = "Vector API unavailable";
            }
            String jdk = System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version")
                    + " (" + System.getProperty("java.vm.vendor") + ")";
            String os = System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch");
            return new Machine(cpu, isa, Runtime.getRuntime().availableProcessors(), lanes, jdk, os);
        }

        String oneLine() {
            return cpu + ", " + isa + ", " + lanes + ", " + cores + " cores, " + jdk;
        }

        String markdown() {
            return "- CPU: " + cpu + " (" + isa + ")\n"
                    + "- Vector API: " + lanes + " (the preferred species)\n"
                    + "- Cores: " + cores + " (available processors)\n"
                    + "- JDK: " + jdk + "\n"
                    + "- OS: " + os + "\n";
        }
    }
}
