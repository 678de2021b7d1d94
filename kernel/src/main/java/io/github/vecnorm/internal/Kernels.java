package io.github.vecnorm.internal;

import java.util.Locale;

/**
 * Picks the primitives once, at class initialisation.
 *
 * <p>The system property {@value #PROPERTY} chooses: {@code auto} (default) uses the Vector API when
 * the {@code jdk.incubator.vector} module is present and falls back to the scalar twin otherwise,
 * saying why once through {@link System.Logger}; {@code vector} insists on the Vector API and fails
 * if it cannot be loaded; {@code scalar} forces the scalar twin. The vector class is loaded by name,
 * so the rest of the library never links {@code jdk.incubator.vector}.
 */
public final class Kernels {

    /** System property that forces an implementation: auto, vector or scalar. */
    public static final String PROPERTY = "vecnorm.impl";

    private static final String VECTOR_CLASS = "io.github.vecnorm.internal.vector.VectorPrimitives";
    private static final Primitives PRIMITIVES = choose();

    private Kernels() {
    }

    /** The implementation in use. */
    public static Primitives primitives() {
        return PRIMITIVES;
    }

    /** The scalar twin. */
    public static Primitives scalar() {
        return ScalarHolder.SCALAR;
    }

    /** The Vector API implementation, or null if it cannot be loaded in this JVM. */
    public static Primitives vectorOrNull() {
        try {
            return loadVector();
        } catch (ReflectiveOperationException | LinkageError e) {
            return null;
        }
    }

    private static final class ScalarHolder {
        static final Primitives SCALAR = new ScalarPrimitives();
    }

    private static Primitives choose() {
        String want = System.getProperty(PROPERTY, "auto").trim().toLowerCase(Locale.ROOT);
        System.Logger log = System.getLogger("io.github.vecnorm");
        switch (want) {
            case "scalar":
                log.log(System.Logger.Level.INFO, "vecnorm: scalar kernels forced by -D" + PROPERTY + "=scalar");
                return scalar();
            case "vector":
                try {
                    return loadVector();
                } catch (ReflectiveOperationException | LinkageError e) {
                    throw new IllegalStateException("vecnorm: -D" + PROPERTY + "=vector but the Vector API "
                            + "could not be loaded; pass '--add-modules jdk.incubator.vector'", e);
                }
            case "auto":
                if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
                    log.log(System.Logger.Level.WARNING, "vecnorm: jdk.incubator.vector is not in the module graph; "
                            + "using the scalar kernels. Pass '--add-modules jdk.incubator.vector' to enable the Vector API");
                    return scalar();
                }
                try {
                    return loadVector();
                } catch (ReflectiveOperationException | LinkageError e) {
                    log.log(System.Logger.Level.WARNING, "vecnorm: the Vector API kernels could not be loaded ("
                            + e + "); using the scalar kernels");
                    return scalar();
                }
            default:
                throw new IllegalStateException("vecnorm: -D" + PROPERTY + " must be auto, vector or scalar, got '"
                        + want + "'");
        }
    }

    private static Primitives loadVector() throws ReflectiveOperationException {
        Class<?> c = Class.forName(VECTOR_CLASS);
        return (Primitives) c.getDeclaredConstructor().newInstance();
    }
}
