package io.github.vecnorm.bench;

import java.util.List;

/**
 * The normalization family's kernels (everything but BatchNorm, which is {@link Kernel}), with the
 * report's names, their group (one chart panel each), the minimal memory traffic of one call in units of
 * bytes(x) (forward: read x, write y = 2; backward: read x and dy, write dx = 3; WeightNorm's backward
 * reads v and grad w and writes grad v), the shapes the
 * benchmark knows and the report's headline shape.
 *
 * <p>Shapes are the tensor's dimensions: rows M x D for LayerNorm and RMSNorm, NCHW for GroupNorm,
 * InstanceNorm and L_p BatchNorm, the weight v for WeightNorm (dim 0: one norm per output channel).
 */
public enum FamilyKernel {
    LAYERNORM_FORWARD("layernorm.forward", "LayerNorm", 2, "2048x768", "8192x4096"),
    LAYERNORM_BACKWARD("layernorm.backward", "LayerNorm", 3, "2048x768", "8192x4096"),
    RMSNORM_FORWARD("rmsnorm.forward", "RMSNorm", 2, "64x4096", "1x4096", "8x4096", "512x4096"),
    RMSNORM_BACKWARD("rmsnorm.backward", "RMSNorm", 3, "64x4096", "1x4096", "8x4096", "512x4096"),
    GROUPNORM_FORWARD("groupnorm.forward", "GroupNorm", 2, "32x64x56x56", "8x256x56x56"),
    GROUPNORM_BACKWARD("groupnorm.backward", "GroupNorm", 3, "32x64x56x56", "8x256x56x56"),
    INSTANCENORM_FORWARD("instancenorm.forward", "InstanceNorm", 2, "32x64x56x56", "8x256x56x56"),
    INSTANCENORM_BACKWARD("instancenorm.backward", "InstanceNorm", 3, "32x64x56x56", "8x256x56x56"),
    WEIGHTNORM_FORWARD("weightnorm.forward", "WeightNorm", 2, "512x256x3x3", "4096x4096"),
    WEIGHTNORM_BACKWARD("weightnorm.backward", "WeightNorm", 3, "512x256x3x3", "4096x4096"),
    LPBATCHNORM_FORWARD_P1("lpbatchnorm.forward.p1", "LpBatchNorm", 2, "32x64x56x56"),
    LPBATCHNORM_FORWARD_PINF("lpbatchnorm.forward.pinf", "LpBatchNorm", 2, "32x64x56x56"),
    LPBATCHNORM_BACKWARD_P1("lpbatchnorm.backward.p1", "LpBatchNorm", 3, "32x64x56x56"),
    LPBATCHNORM_BACKWARD_PINF("lpbatchnorm.backward.pinf", "LpBatchNorm", 3, "32x64x56x56");

    /** GroupNorm's group count in every benchmark. */
    public static final long GROUPS = 32;
    /** WeightNorm's dim in every benchmark (PyTorch's default). */
    public static final int WEIGHTNORM_DIM = 0;

    private final String id, group;
    private final int trafficFactor;
    private final List<String> shapes;

    FamilyKernel(String id, String group, int trafficFactor, String headline, String... others) {
        this.id = id;
        this.group = group;
        this.trafficFactor = trafficFactor;
        this.shapes = java.util.stream.Stream.concat(java.util.stream.Stream.of(headline),
                java.util.Arrays.stream(others)).toList();
    }

    /** The report's name, e.g. {@code layernorm.forward}. */
    public String id() {
        return id;
    }

    /** The layer it belongs to, e.g. {@code LayerNorm}: one panel of the report's chart. */
    public String group() {
        return group;
    }

    /** Minimal bytes moved per call, as a multiple of bytes(x). */
    public int trafficFactor() {
        return trafficFactor;
    }

    /** The report's shape for this kernel (the first of {@link #shapes()}). */
    public String headline() {
        return shapes.get(0);
    }

    /** Every shape the benchmark knows for this kernel, headline first. */
    public List<String> shapes() {
        return shapes;
    }

    /** Whether x is seen as rows (M x D) rather than NCHW / a weight. */
    boolean rows() {
        return group.equals("LayerNorm") || group.equals("RMSNorm");
    }

    /** The L_p norm's p, for the L_p BatchNorm kernels. */
    double p() {
        return switch (this) {
            case LPBATCHNORM_FORWARD_P1, LPBATCHNORM_BACKWARD_P1 -> 1;
            case LPBATCHNORM_FORWARD_PINF, LPBATCHNORM_BACKWARD_PINF -> Double.POSITIVE_INFINITY;
            default -> throw new IllegalStateException(id + " has no p");
        };
    }

    public static FamilyKernel byId(String id) {
        for (FamilyKernel k : values()) if (k.id.equals(id)) return k;
        throw new IllegalArgumentException("unknown family kernel '" + id + "'");
    }

    /** The kernel named id, or null. */
    static FamilyKernel orNull(String id) {
        for (FamilyKernel k : values()) if (k.id.equals(id)) return k;
        return null;
    }
}
