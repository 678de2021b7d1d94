package io.github.vecnorm.bench;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Time per call of one kernel on one shape, for vecnorm (scalar twin or Vector API) and the native
 * peers, on 1 or all cores. Before timing, the implementation's outputs are checked against the
 * scalar twin ({@link Agreement}); a disagreement, a peer that cannot load, or a kernel/shape pair
 * that does not exist (training on an inference-only shape such as 1x256x1x1) fails that parameter
 * set with the reason, and JMH goes on with the next.
 *
 * <p>Default shapes: the inputs of ResNet-50's BatchNorm layers at batch 32, then small-batch
 * (latency) shapes. Select with {@code -p}, e.g.
 * {@code java -jar bench/target/benchmarks.jar BatchNormBench -p shape=32x64x56x56 -p impl=vector,libtorch -p threads=1}.
 * Compare with {@link CopyBench} of the same shape and threads (the roofline).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xms1g", "-Xmx4g"})
public class BatchNormBench {

    @Param({"batchnorm.forward.training", "batchnorm.forward.inference", "batchnorm.backward"})
    public String kernel;

    @Param({"32x64x112x112", "32x64x56x56", "32x256x56x56", "32x128x28x28", "32x512x28x28",
            "32x256x14x14", "32x1024x14x14", "32x512x7x7", "32x2048x7x7",
            "1x64x56x56", "1x2048x7x7", "1x256x1x1", "65536x256"})
    public String shape;

    @Param({"scalar", "vector", "libtorch", "onednn", "ort"})
    public String impl;

    /** A number, or {@code all} for every core. */
    @Param({"1", "all"})
    public String threads;

    private Problem problem;
    private Impl target;
    private Kernel k;

    /** System property set by {@link Report} for its forks: terse output. */
    static final String REPORT_MODE = "vecnorm.bench.report";
    /** Held so the level set on it sticks (loggers are weakly referenced). */
    private static java.util.logging.Logger vecnormLog;

    @Setup
    public void setup() {
        if (Boolean.getBoolean(REPORT_MODE)) {
            // the "scalar kernels forced" notice is expected here; keep warnings
            vecnormLog = java.util.logging.Logger.getLogger("io.github.vecnorm");
            vecnormLog.setLevel(java.util.logging.Level.WARNING);
        }
        Impls.prepareJvm(impl); // before anything loads vecnorm's primitives
        k = Kernel.byId(kernel);
        problem = new Problem(shape, Impls.threads(threads));
        Agreement.requireValid(problem, k);
        Agreement.prepareInputs(problem, k);
        target = Impls.create(impl, problem);
        if (!target.supports(k)) {
            throw new UnsupportedOperationException(impl + " has no " + kernel);
        }
        String verdict = Agreement.check(problem, k, target);
        if (Boolean.getBoolean(REPORT_MODE)) {
            // the report echoes a fork's output on its progress line: keep it short, on that line
            System.out.print("[checked: " + verdict.substring(verdict.indexOf("worst error")) + "] ");
            System.out.flush();
        } else {
            System.out.println(verdict);
        }
    }

    @Benchmark
    public void run() {
        target.run(k);
    }

    @TearDown
    public void tearDown() {
        if (target != null) target.close();
        if (problem != null) problem.close();
    }
}
