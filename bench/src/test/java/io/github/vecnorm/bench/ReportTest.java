package io.github.vecnorm.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The report's arithmetic: traffic, bandwidth and roofline fractions from times. */
class ReportTest {

    private static final String SHAPE = "2x4x8x8"; // 512 floats, 2048 bytes

    @Test
    void rooflineFractionComparesMinimalTrafficWithTheCopyOfTheSameShapeAndThreads() {
        List<Report.Row> rows = Report.derive(List.of(
                new Report.Measured("copy", SHAPE, "copy", 1, 0.001, 0.0001),
                new Report.Measured("copy", SHAPE, "copy", 2, 0.0005, 0.0001),
                // forward moves what the copy moves: same time, fraction 1; twice the time, 0.5
                new Report.Measured("batchnorm.forward.inference", SHAPE, "vector", 1, 0.001, 0),
                new Report.Measured("batchnorm.forward.training", SHAPE, "vector", 1, 0.002, 0),
                // backward moves 3 x bytes(x): 1.5 copies' time is the roofline
                new Report.Measured("batchnorm.backward", SHAPE, "vector", 1, 0.0015, 0),
                new Report.Measured("batchnorm.backward", SHAPE, "vector", 2, 0.0015, Double.NaN),
                new Report.Measured("batchnorm.backward", "1x4x8x8", "vector", 1, 0.0015, 0)));
        assertEquals(1.0, find(rows, "batchnorm.forward.inference", SHAPE, 1).rooflineFraction(), 1e-12);
        assertEquals(0.5, find(rows, "batchnorm.forward.training", SHAPE, 1).rooflineFraction(), 1e-12);
        assertEquals(1.0, find(rows, "batchnorm.backward", SHAPE, 1).rooflineFraction(), 1e-12);
        // against the 2-thread copy, which is twice as fast
        assertEquals(0.5, find(rows, "batchnorm.backward", SHAPE, 2).rooflineFraction(), 1e-12);
        assertEquals(0.0, find(rows, "batchnorm.backward", SHAPE, 2).msError()); // no error estimate: 0
        assertTrue(Double.isNaN(find(rows, "batchnorm.backward", "1x4x8x8", 1).rooflineFraction()), "no copy, no fraction");
        // 2 x 2048 bytes in 1 microsecond = 4.096 GB/s
        assertEquals(4.096, find(rows, "copy", SHAPE, 1).gbPerS(), 1e-9);
        assertEquals(3 * 2048 / 1.5e-6 / 1e9, find(rows, "batchnorm.backward", SHAPE, 1).gbPerS(), 1e-9);
        // within a shape: copy first, then the kernels in enum order, 1 thread before 2
        List<String> order = rows.stream().filter(r -> r.shape().equals(SHAPE))
                .map(r -> r.kernel() + "/" + r.threads()).toList();
        assertEquals(List.of("copy/1", "copy/2", "batchnorm.forward.training/1", "batchnorm.forward.inference/1",
                "batchnorm.backward/1", "batchnorm.backward/2"), order);
    }

    @Test
    void jsonHasOneObjectPerRowWithEveryField() {
        List<Report.Row> rows = Report.derive(List.of(
                new Report.Measured("copy", SHAPE, "copy", 1, 0.001, 0.0001),
                new Report.Measured("batchnorm.backward", SHAPE, "libtorch", 1, 0.003, 0.0002),
                new Report.Measured("batchnorm.backward", "1x4x8x8", "ort", 1, 0.003, 0.0002)));
        String json = Report.json(rows);
        Matcher m = Pattern.compile("\\{\"kernel\": \"[^\"]+\", \"shape\": \"[^\"]+\", \"impl\": \"[^\"]+\", "
                + "\"threads\": \\d+, \"msPerOp\": [^,]+, \"msError\": [^,]+, \"gbPerS\": [^,]+, "
                + "\"rooflineFraction\": [^}]+}").matcher(json);
        int n = 0;
        while (m.find()) n++;
        assertEquals(3, n, json);
        assertTrue(json.trim().startsWith("[") && json.trim().endsWith("]"), json);
        assertTrue(json.contains("\"rooflineFraction\": null"), "a missing fraction is null, not NaN: " + json);
    }

    @Test
    void familyTargetsNeedTheRooflineAndEveryNamedPeerBeatenAtEveryThreadCount() {
        String ln = FamilyKernel.LAYERNORM_FORWARD.headline(), rms = FamilyKernel.RMSNORM_BACKWARD.headline();
        List<Report.Row> rows = Report.derive(List.of(
                new Report.Measured("copy", ln, "copy", 1, 0.001, 0),
                new Report.Measured("copy", ln, "copy", 2, 0.0005, 0),
                new Report.Measured("copy", rms, "copy", 1, 0.001, 0),
                // layernorm.forward: roofline 1.0 at 1 thread, faster than libtorch at 1 and 2 threads, slower
                // than onednn at 2 threads: not met
                new Report.Measured("layernorm.forward", ln, "vector", 1, 0.001, 0),
                new Report.Measured("layernorm.forward", ln, "vector", 2, 0.0006, 0),
                new Report.Measured("layernorm.forward", ln, "libtorch", 1, 0.002, 0),
                new Report.Measured("layernorm.forward", ln, "libtorch", 2, 0.001, 0),
                new Report.Measured("layernorm.forward", ln, "onednn", 1, 0.0015, 0),
                new Report.Measured("layernorm.forward", ln, "onednn", 2, 0.0005, 0),
                // rmsnorm.backward: no peer; 3 x bytes in 1.5 copies' time = 1.0 >= 0.75: met
                new Report.Measured("rmsnorm.backward", rms, "vector", 1, 0.0015, 0)));
        String table = FamilyReport.targets(rows, List.of(1, 2));
        String lnLine = line(table, "| layernorm.forward |"), rmsLine = line(table, "| rmsnorm.backward |");
        assertTrue(lnLine.contains("2.00x") && lnLine.contains("0.83x") && lnLine.endsWith("| not met |"), lnLine);
        assertTrue(rmsLine.contains("1.00") && rmsLine.contains(">= 0.75") && rmsLine.endsWith("| met |"), rmsLine);
        assertTrue(line(table, "| groupnorm.forward |").endsWith("| not measured |"), table);
    }

    private static String line(String table, String start) {
        return table.lines().filter(l -> l.startsWith(start)).findFirst().orElseThrow(() -> new AssertionError(table));
    }

    @Test
    void smallTimesKeepTheirDigits() {
        assertEquals("0.00000901", Report.ms(0.00000901));
        assertEquals("0.0125", Report.ms(0.0125));
        assertEquals("1.693", Report.ms(1.6931));
        assertEquals("392.2", Report.ms(392.2));
    }

    private static Report.Row find(List<Report.Row> rows, String kernel, String shape, int threads) {
        return rows.stream().filter(r -> r.kernel().equals(kernel) && r.shape().equals(shape) && r.threads() == threads)
                .findFirst().orElseThrow();
    }
}
