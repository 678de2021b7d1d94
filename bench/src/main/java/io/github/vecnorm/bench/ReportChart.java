package io.github.vecnorm.bench;

import java.awt.Color;
import java.awt.Font;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.CategorySeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.CategoryStyler;

/**
 * The report's chart (XChart): for the headline shape, one panel per thread count, time per call of
 * each kernel for each implementation (log scale, bars labelled with their value; the error margins
 * are in the report's table), next to the copy roofline floor: the time the kernel would take moving
 * its minimal bytes at the speed of {@code MemorySegment.copy}.
 */
final class ReportChart {

    static final Map<String, Color> COLORS = Map.of(
            "scalar", new Color(0x9E9E9E),
            "vector", new Color(0x1565C0),
            "libtorch", new Color(0xEF6C00),
            "onednn", new Color(0x2E7D32),
            "ort", new Color(0x6A1B9A));

    /** The floor bar: the copy roofline, in the red the eye reads as a limit. */
    static final Color FLOOR = new Color(0xE57373);

    private ReportChart() {
    }

    static void write(List<Report.Row> rows, String shape, List<Integer> threads, Path png) throws IOException {
        System.setProperty("java.awt.headless", "true");
        List<CategoryChart> charts = new ArrayList<>();
        for (int t : threads) charts.add(panel(rows, shape, t));
        BitmapEncoder.saveBitmap(charts, 1, charts.size(), png.toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    private static String label(String kernel) {
        return switch (kernel) {
            case "batchnorm.forward.training" -> "BN forward (training)";
            case "batchnorm.forward.inference" -> "BN forward (inference)";
            case "batchnorm.backward" -> "BN backward";
            default -> kernel;
        };
    }

    private static CategoryChart panel(List<Report.Row> rows, String shape, int threads) {
        List<String> kernels = new ArrayList<>();
        for (Kernel k : Kernel.values()) {
            boolean any = rows.stream().anyMatch(r -> r.shape().equals(shape) && r.threads() == threads && r.kernel().equals(k.id()));
            if (any) kernels.add(k.id());
        }
        List<String> xs = kernels.stream().map(ReportChart::label).toList();
        CategoryChart chart = new CategoryChartBuilder().width(820).height(600)
                .title(shape + ", " + threads + (threads == 1 ? " thread" : " threads"))
                .xAxisTitle("").yAxisTitle("ms per call (log scale, lower is better)").build();
        CategoryStyler st = chart.getStyler();
        st.setYAxisLogarithmic(true);
        st.setLegendPosition(Styler.LegendPosition.OutsideS);
        st.setLegendLayout(Styler.LegendLayout.Horizontal);
        st.setAvailableSpaceFill(0.9);
        st.setChartBackgroundColor(Color.WHITE);
        st.setPlotBackgroundColor(Color.WHITE);
        st.setPlotGridLinesColor(new Color(0xDDDDDD));
        st.setLegendBorderColor(Color.WHITE);
        st.setChartTitleFont(new Font(Font.SANS_SERIF, Font.BOLD, 18));
        st.setAxisTickLabelsFont(new Font(Font.SANS_SERIF, Font.PLAIN, 14));
        st.setAxisTitleFont(new Font(Font.SANS_SERIF, Font.PLAIN, 14));
        st.setLegendFont(new Font(Font.SANS_SERIF, Font.PLAIN, 14));
        st.setYAxisDecimalPattern("0.###");
        st.setChartTitleBoxVisible(false);
        // each bar carries its value: the log axis makes ratios readable, the labels the numbers
        st.setLabelsVisible(true);
        st.setLabelsRotation(90);
        st.setLabelsPosition(0.5);
        st.setLabelsFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        st.setLabelsFontColorAutomaticEnabled(true);
        st.setLabelsFontColorAutomaticLight(Color.WHITE);
        st.setLabelsFontColorAutomaticDark(Color.BLACK);
        st.setDecimalPattern("0.00##");
        double min = Double.POSITIVE_INFINITY;
        // the roofline floor first: the time moving the kernel's minimal bytes at copy speed would take
        Report.Row copy = find(rows, "copy", shape, Impls.COPY, threads);
        if (copy != null) {
            List<Double> floor = new ArrayList<>();
            for (String k : kernels) {
                double f = copy.msPerOp() * Kernel.byId(k).trafficFactor() / 2.0;
                floor.add(f);
                min = Math.min(min, f);
            }
            CategorySeries f = chart.addSeries("copy roofline (floor)", xs, floor);
            f.setFillColor(FLOOR);
        }
        for (String impl : Report.IMPL_ORDER) {
            if (impl.equals(Impls.COPY)) continue;
            List<Double> ys = new ArrayList<>();
            boolean any = false;
            for (String k : kernels) {
                Report.Row r = find(rows, k, shape, impl, threads);
                ys.add(r == null ? null : r.msPerOp()); // null: the impl has no such kernel
                if (r != null) {
                    any = true;
                    min = Math.min(min, r.msPerOp());
                }
            }
            if (!any) continue;
            CategorySeries s = chart.addSeries(impl, xs, ys);
            s.setFillColor(COLORS.getOrDefault(impl, Color.DARK_GRAY));
        }
        // bars start at the axis minimum, which a log axis needs above zero: the decade below the smallest bar
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
