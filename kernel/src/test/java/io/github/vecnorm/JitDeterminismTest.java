package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.github.vecnorm.internal.Kernels;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The same call gives the same bits whether the kernels run interpreted or JIT-compiled: a second JVM
 * computes a fixed problem with -Xint, this one after warming the kernels up, and every output float
 * must match. (Results that change with the JIT's state would also change with which thread, warm or
 * cold, ran a channel, and make the output mask or in-place calls change results.)
 */
class JitDeterminismTest {

    static final Shape SHAPE = Shape.of(2, 3, 1021);

    /** BatchNorm training forward and backward, GroupNorm forward, of a fixed problem; every output, as raw float bits in text. */
    static String outputs() {
        int numel = (int) SHAPE.numel(), cs = (int) SHAPE.c();
        SplittableRandom rnd = new SplittableRandom(42);
        float[] x = new float[numel], dy = new float[numel], gamma = new float[cs];
        for (int j = 0; j < numel; j++) {
            x[j] = (float) (100 + 3 * rnd.nextGaussian());
            dy[j] = (float) (0.5 + rnd.nextGaussian());
        }
        for (int c = 0; c < cs; c++) gamma[c] = (float) rnd.nextDouble(0.5, 2);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment xs = TestData.copyOf(arena, x), gs = TestData.copyOf(arena, gamma);
            MemorySegment y = TestData.allocate(arena, numel, 0), sm = TestData.allocate(arena, cs, 0);
            MemorySegment si = TestData.allocate(arena, cs, 0), dx = TestData.allocate(arena, numel, 0);
            MemorySegment dg = TestData.allocate(arena, cs, 0), db = TestData.allocate(arena, cs, 0);
            BatchNorm.forwardTraining(SHAPE, xs, y, gs, null, sm, si, null, 1e-5);
            BatchNorm.backward(SHAPE, TestData.copyOf(arena, dy), xs, gs, sm, si, dx, dg, db);
            // GroupNorm forward with one group of C*S values per sample, with gamma and beta and without (where
            // groups are pipelined, the second group's sums are taken with the first's writes)
            int n = (int) SHAPE.n();
            MemorySegment gy = TestData.allocate(arena, numel, 0), gm = TestData.allocate(arena, n, 0);
            MemorySegment gr = TestData.allocate(arena, n, 0), ny = TestData.allocate(arena, numel, 0);
            MemorySegment nm = TestData.allocate(arena, n, 0), nr = TestData.allocate(arena, n, 0);
            float[] beta = new float[cs];
            for (int c = 0; c < cs; c++) beta[c] = 0.5f - gamma[c];
            GroupNorm.forward(SHAPE, 1, xs, gy, gs, TestData.copyOf(arena, beta), gm, gr, 1e-5);
            GroupNorm.forward(SHAPE, 1, xs, ny, null, null, nm, nr, 1e-5);
            StringBuilder sb = new StringBuilder();
            String[] names = {"saveMean", "saveInvstd", "dgamma", "dbeta", "y", "dx", "groupNorm.mean", "groupNorm.rstd",
                    "groupNorm.y", "groupNorm(no affine).mean", "groupNorm(no affine).rstd", "groupNorm(no affine).y"};
            MemorySegment[] segs = {sm, si, dg, db, y, dx, gm, gr, gy, nm, nr, ny};
            for (int k = 0; k < names.length; k++) {
                sb.append(names[k]).append(':');
                for (float f : TestData.read(segs[k])) sb.append(' ').append(Integer.toHexString(Float.floatToRawIntBits(f)));
                sb.append('\n');
            }
            return sb.toString();
        }
    }

    /** Entry point of the -Xint JVM. */
    public static void main(String[] args) {
        System.out.print(Kernels.primitives().name() + " " + Kernels.primitives().lanes() + "\n" + outputs());
    }

    @Test
    void interpretedAndCompiledKernelsGiveTheSameBits() throws IOException, InterruptedException {
        Assumptions.assumeTrue(Kernels.primitives().name().equals("vector"),
                "the scalar twin reduces in a fixed order in double; this checks the Vector API kernels");
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
        String warm = outputs();
        for (int i = 0; i < 3000 && System.nanoTime() < until; i++) warm = outputs();

        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        // the same implementation at the same width as this JVM
        cmd.addAll(List.of("--add-modules=jdk.incubator.vector", "-Dvecnorm.impl=vector",
                "-XX:MaxVectorSize=" + Kernels.primitives().lanes() * Float.BYTES));
        cmd.addAll(List.of("-Xint", "-cp", System.getProperty("java.class.path"), JitDeterminismTest.class.getName()));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String child = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), "the -Xint JVM failed: " + cmd);
        String header = Kernels.primitives().name() + " " + Kernels.primitives().lanes() + "\n";
        assertEquals(header, child.substring(0, child.indexOf('\n') + 1), "the -Xint JVM runs the same implementation");
        String interpreted = child.substring(header.length());
        String[] a = interpreted.split("\n"), b = warm.split("\n");
        for (int k = 0; k < b.length; k++) {
            String[] fa = a[k].split(" "), fb = b[k].split(" ");
            for (int i = 1; i < fb.length; i++) {
                if (!fa[i].equals(fb[i])) {
                    throw new AssertionError(fb[0] + " at index #" + (i - 1) + " differs between -Xint (0x" + fa[i] + " = "
                            + Float.intBitsToFloat(Integer.parseUnsignedInt(fa[i], 16)) + ") and JIT-compiled (0x" + fb[i]
                            + " = " + Float.intBitsToFloat(Integer.parseUnsignedInt(fb[i], 16)) + ") runs of the same call on "
                            + SHAPE);
                }
            }
        }
    }
}
