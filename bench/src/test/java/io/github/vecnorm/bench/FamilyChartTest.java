package io.github.vecnorm.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.knowm.xchart.CategoryChart;

/** The family's chart: every kernel's bars in its layer's panel, one panel per layer, rendered under the report. */
class FamilyChartTest {

    private static final List<Integer> THREADS = List.of(1, 2);

    /** A vector row per kernel and thread count (backward slower than forward), and the copies of the headline shapes. */
    private static List<Report.Row> rows() {
        List<Report.Measured> ms = new ArrayList<>();
        for (String shape : FamilyReport.headlineShapes()) {
            for (int t : THREADS) ms.add(new Report.Measured("copy", shape, Impls.COPY, t, 1.0 / t, 0));
        }
        for (FamilyKernel k : FamilyKernel.values()) {
            for (int t : THREADS) ms.add(new Report.Measured(k.id(), k.headline(), Impls.VECTOR, t, k.trafficFactor() / (double) t, 0));
        }
        return Report.derive(ms);
    }

    @Test
    void everyKernelHasItsBarsInItsLayersPanel() {
        List<Report.Row> rows = rows();
        Set<String> groups = new LinkedHashSet<>();
        for (FamilyKernel k : FamilyKernel.values()) groups.add(k.group());
        for (String g : groups) {
            CategoryChart chart = FamilyChart.panel(rows, g, THREADS);
            List<?> xs = new ArrayList<>(chart.getSeriesMap().get(Impls.VECTOR).getXData());
            List<?> ys = new ArrayList<>(chart.getSeriesMap().get(Impls.VECTOR).getYData());
            long kernels = java.util.Arrays.stream(FamilyKernel.values()).filter(k -> k.group().equals(g)).count();
            assertEquals(kernels * THREADS.size(), xs.size(), g + ": " + xs);
            assertEquals(xs.size(), new LinkedHashSet<>(xs).size(), g + ": labels must be distinct: " + xs);
            assertTrue(ys.stream().allMatch(y -> y != null), g + ": a kernel's bar is missing: " + ys);
        }
        List<?> lp = new ArrayList<>(FamilyChart.panel(rows, "LpBatchNorm", THREADS).getSeriesMap().get(Impls.VECTOR).getXData());
        assertEquals(List.of("fwd p=1, 1t", "fwd p=1, 2t", "fwd p=inf, 1t", "fwd p=inf, 2t",
                "bwd p=1, 1t", "bwd p=1, 2t", "bwd p=inf, 1t", "bwd p=inf, 2t"), lp);
    }

    @Test
    void theChartRendersOnePanelPerLayer(@TempDir Path dir) throws Exception {
        Path png = dir.resolve("report.png");
        FamilyChart.append(rows(), THREADS, png);
        assertTrue(Files.size(png) > 0);
        BufferedImage img = ImageIO.read(png.toFile());
        long layers = java.util.Arrays.stream(FamilyKernel.values()).map(FamilyKernel::group).distinct().count();
        long gridRows = (layers + FamilyChart.COLUMNS - 1) / FamilyChart.COLUMNS;
        assertEquals(FamilyChart.COLUMNS * FamilyChart.PANEL_W, img.getWidth());
        assertEquals(50 + gridRows * FamilyChart.PANEL_H, img.getHeight());
    }
}
