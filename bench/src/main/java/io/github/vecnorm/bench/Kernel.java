package io.github.vecnorm.bench;

/**
 * The kernels the benchmarks and the report know, with the report's names and the minimal memory
 * traffic of one call in units of bytes(x): forward reads x and writes y (2), backward reads x and
 * dy and writes dx (3).
 */
public enum Kernel {
    BATCHNORM_FORWARD_TRAINING("batchnorm.forward.training", 2),
    BATCHNORM_FORWARD_INFERENCE("batchnorm.forward.inference", 2),
    BATCHNORM_BACKWARD("batchnorm.backward", 3);

    private final String id;
    private final int trafficFactor;

    Kernel(String id, int trafficFactor) {
        this.id = id;
        this.trafficFactor = trafficFactor;
    }

    /** The report's name, e.g. {@code batchnorm.forward.training}. */
    public String id() {
        return id;
    }

    /** Minimal bytes moved per call, as a multiple of bytes(x). */
    public int trafficFactor() {
        return trafficFactor;
    }

    public static Kernel byId(String id) {
        for (Kernel k : values()) if (k.id.equals(id)) return k;
        throw new IllegalArgumentException("unknown kernel '" + id + "'");
    }
}
