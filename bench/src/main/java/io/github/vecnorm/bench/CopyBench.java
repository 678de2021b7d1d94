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
 * The roofline: {@code MemorySegment.copy} of bytes(x) (x into y, 2 x bytes(x) of traffic) for the
 * same shapes and thread counts as {@link BatchNormBench}; with several threads each copies its own
 * contiguous slice. A kernel's roofline fraction is (its minimal traffic / its time) / (2 x bytes(x) /
 * copy time).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xms1g", "-Xmx4g"})
public class CopyBench {

    @Param({"32x64x112x112", "32x64x56x56", "32x256x56x56", "32x128x28x28", "32x512x28x28",
            "32x256x14x14", "32x1024x14x14", "32x512x7x7", "32x2048x7x7",
            "1x64x56x56", "1x2048x7x7", "1x256x1x1", "65536x256"})
    public String shape;

    /** A number, or {@code all} for every core. */
    @Param({"1", "all"})
    public String threads;

    private Problem problem;
    private CopyImpl copy;

    @Setup
    public void setup() {
        problem = new Problem(shape, Impls.threads(threads));
        copy = new CopyImpl(problem);
        copy.copy();
        long mismatch = problem.x.mismatch(problem.y);
        if (mismatch != -1) throw new IllegalStateException("copy: y differs from x at byte " + mismatch);
    }

    @Benchmark
    public void copy() {
        copy.copy();
    }

    @TearDown
    public void tearDown() {
        if (copy != null) copy.close();
        if (problem != null) problem.close();
    }
}
