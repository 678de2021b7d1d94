package io.github.vecnorm.bench;

import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import javax.imageio.ImageIO;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.CategorySeries;
import org.knowm.xchart.style.CategoryStyler;
import org.knowm.xchart.style.Styler;

/**
 * The family's part of the report's chart: one panel per layer (LayerNorm, RMSNorm, GroupNorm,
 * InstanceNorm, WeightNorm, L_p BatchNorm) at its headline shape, a group of bars per kernel and thread
 * count (log scale, labelled), next to the copy roofline floor, in {@link ReportChart}'s colours. The
 * panels are drawn in a grid under the BatchNorm chart already in the PNG.
 */
final class FamilyChart {

    static final int PANEL_W = 900, PANEL_H = 460, COLUMNS = 2;

    private FamilyChart() {
    }

    /** Draws the family panels under the image in {@code png} (or alone if there is none). */
    static void append(List<Report.Row> rows, List<Integer> threads, Path png) throws IOException {
        System.setProperty("java.awt.headless", "true");
        Set<String> groups = new LinkedHashSet<>();
        for (FamilyKernel k : FamilyKernel.values()) {
            boolean any = rows.stream().anyMatch(r -> r.kernel().equals(k.id()));
            if (any) groups.add(k.group());
        }
        if (groups.isEmpty()) return;
        List<BufferedImage> panels = new ArrayList<>();
        for (String g : groups) panels.add(BitmapEncoder.getBufferedImage(panel(rows, g, threads)));
        BufferedImage top = Files.exists(png) ? ImageIO.read(png.toFile()) : null;
        int gridRows = (panels.size() + COLUMNS - 1) / COLUMNS;
        int width = Math.max(top == null ? 0 : top.getWidth(), COLUMNS * PANEL_W);
        int topH = top == null ? 0 : top.getHeight();
        int titleH = 50;
        BufferedImage all = new BufferedImage(width, topH + titleH + gridRows * PANEL_H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g2 = all.createGraphics();
        try {
            g2.setColor(Color.WHITE);
            g2.fillRect(0, 0, all.getWidth(), all.getHeight());
            if (top != null) g2.drawImage(top, 0, 0, null);
            g2.setColor(Color.BLACK);
            g2.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 20));
            g2.drawString("Normalization family, headline shape per layer", 20, topH + 34);
            for (int i = 0; i < panels.size(); i++) {
                g2.drawImage(panels.get(i), (i % COLUMNS) * PANEL_W, topH + titleH + (i / COLUMNS) * PANEL_H, null);
            }
        } finally {
            g2.dispose();
        }
        ImageIO.write(all, "png", png.toFile());
    }

    /** "forward", "backward", "forward p=1" ... from the kernel id after the layer's name. */
    private static String shortName(FamilyKernel k) {
        String rest = k.id().substring(k.id().indexOf('.') + 1);
        return rest.replace("forward.p1", "fwd p=1").replace("forward.pinf", "fwd p=inf")
                .replace("backward.p1", "bwd p=1").replace("backward.pinf", "bwd p=inf")
                .replace("forward", "fwd").replace("backward", "bwd");
    }

    /** The panel of one layer: its kernels' bars (x labels "bwd p=1, 2t" ...) and the copy floor. */
    static CategoryChart panel(List<Report.Row> rows, String group, List<Integer> threads) {
        List<FamilyKernel> kernels = new ArrayList<>();
        for (FamilyKernel k : FamilyKernel.values()) if (k.group().equals(group)) kernels.add(k);
        String shape = kernels.get(0).headline();
        List<String> xs = new ArrayList<>();
        for (FamilyKernel k : kernels) {
            for (int t : threads) xs.add(shortName(k) + ", " + t + "t");
        }
        CategoryChart chart = new CategoryChartBuilder().width(PANEL_W).height(PANEL_H)
                .title(group + " " + shape).xAxisTitle("").yAxisTitle("ms per call (log)").build();
        CategoryStyler st = chart.getStyler();
        st.setYAxisLogarithmic(true);
        st.setLegendPosition(Styler.LegendPosition.OutsideS);
        st.setLegendLayout(Styler.LegendLayout.Horizontal);
        st.setAvailableSpaceFill(0.9);
        st.setChartBackgroundColor(Color.WHITE);
        st.setPlotBackgroundColor(Color.WHITE);
        st.setPlotGridLinesColor(new Color(0xDDDDDD));
        st.setLegendBorderColor(Color.WHITE);
        st.setChartTitleFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
        st.setAxisTickLabelsFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        st.setAxisTitleFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        st.setLegendFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        st.setYAxisDecimalPattern("0.####");
        st.setChartTitleBoxVisible(false);
        st.setLabelsVisible(true);
        st.setLabelsRotation(90);
        st.setLabelsPosition(0.5);
        st.setLabelsFont(new Font(Font.SANS_SERIF, Font.PLAIN, 10));
        st.setLabelsFontColorAutomaticEnabled(true);
        st.setLabelsFontColorAutomaticLight(Color.WHITE);
        st.setLabelsFontColorAutomaticDark(Color.BLACK);
        st.setDecimalPattern("0.00##");
        double min = Double.POSITIVE_INFINITY;
        List<Double> floor = new ArrayList<>();
        boolean anyFloor = false;
        for (FamilyKernel k : kernels) {
            for (int t : threads) {
                Report.Row copy = find(rows, "copy", shape, Impls.COPY, t);
                Double f = copy == null ? null : copy.msPerOp() * k.trafficFactor() / 2.0;
                floor.add(f);
                if (f != null) {
                    anyFloor = true;
                    min = Math.min(min, f);
                }
            }
        }
        if (anyFloor) chart.addSeries("copy roofline (floor)", xs, floor).setFillColor(ReportChart.FLOOR);
        for (String impl : FamilyImpl.ALL) {
            List<Double> ys = new ArrayList<>();
            boolean any = false;
            for (FamilyKernel k : kernels) {
                for (int t : threads) {
                    Report.Row r = find(rows, k.id(), shape, impl, t);
                    ys.add(r == null ? null : r.msPerOp());
                    if (r != null) {
                        any = true;
                        min = Math.min(min, r.msPerOp());
                    }
                }
            }
            if (!any) continue;
            CategorySeries s = chart.addSeries(impl, xs, ys);
            s.setFillColor(ReportChart.COLORS.getOrDefault(impl, Color.DARK_GRAY));
        }
        st.setYAxisMin(Double.isFinite(min) ? Math.pow(10, Math.floor(Math.log10(min * 0.9))) : 0.001);
        return chart;
    }

    private static Report.Row find(List<Report.Row> rows, String kernel, String shape, String impl, int threads) {
        for (Report.Row r : rows) {
            if (r.kernel().equals(kernel) && r.shape().equals(shape) && r.impl().equals(impl) && r.threads() == threads) return r;
        }
        return null;
    }
}
