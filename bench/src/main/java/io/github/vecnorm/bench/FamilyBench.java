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
 * Time per call of one of the normalization family's kernels ({@link FamilyKernel}: LayerNorm,
 * RMSNorm, GroupNorm with 32 groups, InstanceNorm, WeightNorm on dim 0, L_p BatchNorm with p = 1 and
 * infinity) on one shape, for vecnorm (scalar twin or Vector API) and the native peers that have the
 * kernel ({@link FamilyImpl#supports}), on 1 or all cores. Before timing, the outputs are checked
 * against the scalar twin ({@link FamilyAgreement}); a disagreement, a peer that cannot load or lacks
 * the kernel fails that parameter set with the reason, and JMH goes on with the next.
 *
 * <p>{@code shape} is the tensor's dimensions (rows M x D for LayerNorm/RMSNorm, NCHW, or WeightNorm's
 * v), or {@code headline} (the default) for the kernel's headline shape; the shapes each kernel is
 * meant for are {@link FamilyKernel#shapes()}. E.g.
 * {@code java -jar bench/target/benchmarks.jar FamilyBench -p kernel=layernorm.forward -p shape=8192x4096 -p impl=vector,libtorch -p threads=1}.
 * Compare with {@link CopyBench} of the same shape and threads (the roofline).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xms1g", "-Xmx4g"})
public class FamilyBench {

    @Param({"layernorm.forward", "layernorm.backward", "rmsnorm.forward", "rmsnorm.backward", "groupnorm.forward",
            "groupnorm.backward", "instancenorm.forward", "instancenorm.backward", "weightnorm.forward",
            "weightnorm.backward", "lpbatchnorm.forward.p1", "lpbatchnorm.forward.pinf", "lpbatchnorm.backward.p1",
            "lpbatchnorm.backward.pinf"})
    public String kernel;

    @Param({"headline"})
    public String shape;

    @Param({"scalar", "vector", "libtorch", "onednn", "ort"})
    public String impl;

    /** A number, or {@code all} for every core. */
    @Param({"1", "all"})
    public String threads;

    private FamilyProblem problem;
    private FamilyImpl target;
    private FamilyKernel k;
    /** Held so the level set on it sticks (loggers are weakly referenced). */
    private static java.util.logging.Logger vecnormLog;

    @Setup
    public void setup() {
        boolean report = Boolean.getBoolean(BatchNormBench.REPORT_MODE);
        if (report) {
            vecnormLog = java.util.logging.Logger.getLogger("io.github.vecnorm");
            vecnormLog.setLevel(java.util.logging.Level.WARNING);
        }
        Impls.prepareJvm(impl); // before anything loads vecnorm's primitives
        k = FamilyKernel.byId(kernel);
        if (!FamilyImpl.supports(impl, k)) throw new UnsupportedOperationException(impl + " has no " + kernel);
        String dims = shape.equals("headline") ? k.headline() : shape;
        problem = new FamilyProblem(k, dims, Impls.threads(threads));
        FamilyAgreement.prepareInputs(problem);
        target = FamilyImpl.create(impl, problem);
        String verdict = FamilyAgreement.check(problem, target);
        if (report) {
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
