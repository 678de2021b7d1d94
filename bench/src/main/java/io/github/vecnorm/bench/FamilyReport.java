package io.github.vecnorm.bench;

import java.util.ArrayList;
import java.util.Collection;
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
 * The normalization family's part of the quick report ({@link Report}): each {@link FamilyKernel} on
 * its headline shape, vecnorm's scalar twin (1 thread: it is the reference, not a contender), vecnorm's
 * Vector API and the peers that have the kernel on 1 and all cores, and the copy roofline of every
 * headline shape the BatchNorm part does not already copy. Short looks (a little shorter than the report's
 * non-headline BatchNorm rows), so the whole report stays within about ten minutes on two cores.
 */
final class FamilyReport {

    /** One JMH invocation of the family part; kernel null for the copy. */
    record Job(FamilyKernel kernel, List<String> shapes, List<String> impls, List<Integer> threads) {
        int forks() {
            return shapes.size() * impls.size() * threads.size();
        }

        String label() {
            return kernel == null ? "CopyBench (family shapes)" : "FamilyBench " + kernel.id() + " " + impls;
        }
    }

    private FamilyReport() {
    }

    /** The family headline shapes (each once, in kernel order). */
    static List<String> headlineShapes() {
        Set<String> s = new LinkedHashSet<>();
        for (FamilyKernel k : FamilyKernel.values()) s.add(k.headline());
        return List.copyOf(s);
    }

    /**
     * The plan: copies of the family headline shapes not in {@code copied}, then per kernel and
     * implementation one job (small jobs let the report wait for quiet between them).
     */
    static List<Job> plan(List<Integer> threads, Collection<String> copied) {
        List<Job> jobs = new ArrayList<>();
        List<String> copies = new ArrayList<>(headlineShapes());
        copies.removeAll(copied);
        if (!copies.isEmpty()) jobs.add(new Job(null, copies, List.of(Impls.COPY), threads));
        for (FamilyKernel k : FamilyKernel.values()) {
            for (String impl : FamilyImpl.ALL) {
                if (!FamilyImpl.supports(impl, k)) continue;
                jobs.add(new Job(k, List.of(k.headline()), List.of(impl), impl.equals(Impls.SCALAR) ? List.of(1) : threads));
            }
        }
        return jobs;
    }

    static Collection<RunResult> run(Job job, Progress progress) {
        String bench = "io.github.vecnorm.bench." + (job.kernel() == null ? "CopyBench" : "FamilyBench");
        ChainedOptionsBuilder o = new OptionsBuilder()
                .include("^" + Pattern.quote(bench) + "\\.")
                .param("shape", job.shapes().toArray(String[]::new))
                .param("threads", job.threads().stream().map(String::valueOf).toArray(String[]::new))
                .forks(1)
                .jvmArgsPrepend("-D" + BatchNormBench.REPORT_MODE + "=true")
                .shouldFailOnError(false)
                .timeUnit(TimeUnit.MILLISECONDS);
        if (job.kernel() == null) {
            // the denominator of the family's roofline fractions: a steady number quickly (copies vary little)
            o.warmupIterations(3).warmupTime(TimeValue.milliseconds(300))
                    .measurementIterations(6).measurementTime(TimeValue.milliseconds(200));
        } else {
            o.param("kernel", job.kernel().id()).param("impl", job.impls().toArray(String[]::new))
                    .warmupIterations(4).warmupTime(TimeValue.milliseconds(250))
                    .measurementIterations(4).measurementTime(TimeValue.milliseconds(200));
        }
        // another JMH run on this machine (a colleague's benchmark) holds JMH's lock: wait for it rather than
        // lose the job, or time against it
        for (int attempt = 1; ; attempt++) {
            try {
                return new Runner(o.build(), progress).run();
            } catch (RunnerException | RuntimeException e) {
                boolean locked = String.valueOf(e.getMessage()).contains("JMH lock");
                if (locked && attempt < LOCK_ATTEMPTS) {
                    System.out.println("  (another JMH run holds its lock: waiting " + LOCK_WAIT_S + " s)");
                    try {
                        Thread.sleep(LOCK_WAIT_S * 1000L);
                    } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                        throw new IllegalStateException("interrupted", ie);
                    }
                    continue;
                }
                progress.failJob(job.label() + ": " + Impls.rootMessage(e));
                return List.of();
            }
        }
    }

    /** Waits for a JMH lock held by another run: at most LOCK_ATTEMPTS - 1 waits of LOCK_WAIT_S seconds per job. */
    static final int LOCK_ATTEMPTS = 7, LOCK_WAIT_S = 10;

    /** The family section of report.md: per kernel, its headline shape, ms/op (roofline) per impl and thread count. */
    static String markdown(List<Report.Row> rows, List<Integer> threads) {
        StringBuilder sb = new StringBuilder("## Normalization family (headline shape per kernel)\n\n");
        sb.append("Shapes: LayerNorm on Transformer rows (2048 tokens x 768), RMSNorm on decode rows (64 rows of 4096), ")
                .append("GroupNorm (32 groups), InstanceNorm and L_p BatchNorm on ResNet's 32x64x56x56, WeightNorm (dim 0) ")
                .append("on a 512x256x3x3 conv weight. Traffic as for BatchNorm: forward 2 x bytes(x), backward 3 x bytes(x); ")
                .append("the roofline is the copy of bytes(x) of the same shape and thread count. vecnorm's scalar twin runs ")
                .append("on 1 thread only (it is the reference every other row was checked against). ")
                .append("Other shapes: `java -jar bench/target/benchmarks.jar FamilyBench -p shape=...` ")
                .append("(see FamilyKernel). The backward of InstanceNorm, WeightNorm and L_p BatchNorm are measured for ")
                .append("vecnorm only (no peer is wired for them here). The chart above (report.png) shows these rows in its lower panels, one per layer. ")
                .append("oneDNN's RMSNorm backward is skipped: under dnnl_rms_norm it keeps LayerNorm's -mean(gamma*dy) term ")
                .append("(dx = rstd*(g - mean(g) - xhat*mean(g*xhat)); see OneDnnFamily), so it disagrees with RMSNorm's gradient. ")
                .append("On small tensors (RMSNorm's 1 MB) the multi-threaded copy pays its hand-off to the executor, so ")
                .append("fractions above 1 there say more about that overhead than about memory bandwidth.\n\n");
        sb.append("| kernel | shape | impl |");
        for (int t : threads) sb.append(" ").append(t).append(t == 1 ? " thread" : " threads").append(": ms/op (roofline) |");
        sb.append("\n|---|---|---|");
        for (int ignored : threads) sb.append("---:|");
        sb.append('\n');
        for (FamilyKernel k : FamilyKernel.values()) {
            Map<String, Map<Integer, Report.Row>> byImpl = new LinkedHashMap<>();
            for (String impl : FamilyImpl.ALL) byImpl.put(impl, new LinkedHashMap<>());
            for (Report.Row r : rows) {
                if (r.kernel().equals(k.id()) && r.shape().equals(k.headline()) && byImpl.containsKey(r.impl())) {
                    byImpl.get(r.impl()).put(r.threads(), r);
                }
            }
            for (var e : byImpl.entrySet()) {
                if (e.getValue().isEmpty()) continue;
                sb.append("| ").append(k.id()).append(" | ").append(k.headline()).append(" | ").append(e.getKey()).append(" |");
                for (int t : threads) {
                    Report.Row r = e.getValue().get(t);
                    sb.append(r == null ? " - |" : String.format(Locale.ROOT, " %s (%s) |", Report.ms(r.msPerOp()),
                            Double.isNaN(r.rooflineFraction()) ? "-" : String.format(Locale.ROOT, "%.2f", r.rooflineFraction())));
                }
                sb.append('\n');
            }
        }
        sb.append('\n').append(targets(rows, threads)).append('\n').append(vectorVsPeers(rows)).append('\n');
        return sb.toString();
    }

    /** The family's targets: roofline fraction of the vector kernel, 1 thread (forward 0.80, backward 0.75). */
    static double target(FamilyKernel k) {
        return k.trafficFactor() == 3 ? 0.75 : 0.80;
    }

    /** Peers the family's targets name: vecnorm must be faster than these wherever they have the kernel. */
    static final List<String> TARGET_PEERS = List.of("libtorch", "onednn");

    /**
     * vector at each kernel's headline shape against the family's targets: its roofline fraction at 1 thread,
     * and its speedup over libtorch and oneDNN (peer time / vector time) at every thread count measured.
     */
    static String targets(List<Report.Row> rows, List<Integer> threads) {
        StringBuilder sb = new StringBuilder("vecnorm (vector) against the family's targets, headline shapes: roofline ")
                .append("fraction at 1 thread (forward >= 0.80, backward >= 0.75), and faster than libtorch and oneDNN ")
                .append("where they have the kernel, at every thread count (speedup = peer time / vector time, > 1 to meet it):\n\n")
                .append("| kernel | roofline (1 thread) | target |");
        for (String peer : TARGET_PEERS) for (int t : threads) sb.append(" vs ").append(peer).append(", ").append(t).append(" |");
        sb.append(" |\n|---|---:|---:|");
        for (int i = 0; i < TARGET_PEERS.size() * threads.size(); i++) sb.append("---:|");
        sb.append("---|\n");
        for (FamilyKernel k : FamilyKernel.values()) {
            Report.Row v1 = find(rows, k, Impls.VECTOR, 1);
            boolean met = v1 != null && v1.rooflineFraction() >= target(k);
            sb.append(String.format(Locale.ROOT, "| %s | %s | >= %.2f |", k.id(), v1 == null ? "-" : frac(v1), target(k)));
            for (String peer : TARGET_PEERS) {
                for (int t : threads) {
                    Report.Row v = find(rows, k, Impls.VECTOR, t), r = find(rows, k, peer, t);
                    if (r == null) {
                        sb.append(" - |");
                        continue;
                    }
                    if (v == null) {
                        met = false;
                        sb.append(" ? |");
                        continue;
                    }
                    double speedup = r.msPerOp() / v.msPerOp();
                    met &= speedup > 1;
                    sb.append(String.format(Locale.ROOT, " %.2fx |", speedup));
                }
            }
            sb.append(v1 == null ? " not measured |" : met ? " met |" : " not met |").append('\n');
        }
        return sb.toString();
    }

    /** vector against the fastest peer with the kernel, 1 thread, headline shapes. */
    static String vectorVsPeers(List<Report.Row> rows) {
        StringBuilder sb = new StringBuilder("vecnorm (vector) against the peers, headline shapes, 1 thread ")
                .append("(speedup = peer time / vector time):\n\n| kernel | vector roofline | peer | peer roofline | speedup |\n")
                .append("|---|---:|---|---:|---:|\n");
        for (FamilyKernel k : FamilyKernel.values()) {
            Report.Row v = find(rows, k, Impls.VECTOR, 1);
            for (String peer : FamilyImpl.ALL) {
                if (peer.equals(Impls.SCALAR) || peer.equals(Impls.VECTOR)) continue;
                Report.Row r = find(rows, k, peer, 1);
                if (r == null) continue;
                sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s |%n", k.id(), v == null ? "-" : frac(v), peer,
                        frac(r), v == null ? "-" : String.format(Locale.ROOT, "%.2fx", r.msPerOp() / v.msPerOp())));
            }
        }
        return sb.toString();
    }

    private static String frac(Report.Row r) {
        return Double.isNaN(r.rooflineFraction()) ? "-" : String.format(Locale.ROOT, "%.2f", r.rooflineFraction());
    }

    private static Report.Row find(List<Report.Row> rows, FamilyKernel k, String impl, int threads) {
        for (Report.Row r : rows) {
            if (r.kernel().equals(k.id()) && r.shape().equals(k.headline()) && r.impl().equals(impl)
                    && r.threads() == threads) {
                return r;
            }
        }
        return null;
    }
}
