package io.github.vecnorm.bench;

import io.github.vecnorm.internal.Kernels;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.List;

/**
 * Creates the implementations the benchmarks compare, by report name. The native peers are found
 * by class name, so this module builds and runs (without them) when a peer is missing.
 */
public final class Impls {

    /** vecnorm with the Vector API / with its scalar twin, forced through {@code -Dvecnorm.impl}. */
    public static final String SCALAR = "scalar", VECTOR = "vector";
    /** The copy roofline. */
    public static final String COPY = "copy";
    /** The native peers, in report order. */
    public static final List<String> PEERS = List.of("libtorch", "onednn", "ort");
    /** Every kernel implementation, in report order. */
    public static final List<String> ALL = List.of(SCALAR, VECTOR, "libtorch", "onednn", "ort");

    private Impls() {
    }

    /** The peer class for a peer name, e.g. io.github.vecnorm.bench.peers.LibTorchImpl. */
    public static String peerClass(String name) {
        return switch (name) {
            case "libtorch" -> "io.github.vecnorm.bench.peers.LibTorchImpl";
            case "onednn" -> "io.github.vecnorm.bench.peers.OneDnnImpl";
            case "ort" -> "io.github.vecnorm.bench.peers.OrtImpl";
            default -> throw new IllegalArgumentException("impl: expected one of " + ALL + " or copy, got '" + name + "'");
        };
    }

    /**
     * Makes this JVM use the implementation vecnorm needs for {@code impl}: scalar and vector are
     * forced with {@code -Dvecnorm.impl} before vecnorm picks its primitives (once per JVM, at class
     * initialisation). Call before anything touches vecnorm's kernels; JMH forks a fresh JVM per
     * parameter set, so each fork can choose.
     */
    public static void prepareJvm(String impl) {
        if (impl.equals(SCALAR) || impl.equals(VECTOR)) System.setProperty(Kernels.PROPERTY, impl);
    }

    /** Threads for a {@code threads} parameter: a positive number, or {@code all} for every core. */
    public static int threads(String param) {
        if (param.equals("all")) return Runtime.getRuntime().availableProcessors();
        int t;
        try {
            t = Integer.parseInt(param.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("threads: expected a positive number or 'all', got '" + param + "'");
        }
        if (t < 1) throw new IllegalArgumentException("threads: expected a positive number or 'all', got '" + param + "'");
        return t;
    }

    /**
     * The implementation {@code name} bound to {@code p}.
     *
     * @throws IllegalStateException with the reason when it cannot be had here: a peer not built into
     *                               this jar, a native library that does not load, vecnorm's
     *                               primitives already chosen otherwise in this JVM
     */
    public static Impl create(String name, Problem p) {
        switch (name) {
            case SCALAR, VECTOR:
                return new VecnormImpl(name, p);
            case COPY:
                return new CopyImpl(p);
            default:
                break;
        }
        String cls = peerClass(name);
        Class<?> c;
        try {
            c = Class.forName(cls);
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException(name + ": peer class " + cls + " is not in this build", e);
        } catch (LinkageError e) {
            throw new IllegalStateException(name + ": peer class " + cls + " does not link: " + e, e);
        }
        try {
            return (Impl) c.getConstructor(Problem.class).newInstance(p);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            throw new IllegalStateException(name + ": could not start (" + rootMessage(cause) + ")", cause);
        } catch (ReflectiveOperationException | ClassCastException e) {
            throw new IllegalStateException(name + ": " + cls + " has no public constructor (Problem) giving an Impl: " + e, e);
        } catch (LinkageError e) {
            throw new IllegalStateException(name + ": native library did not load (" + rootMessage(e) + ")", e);
        }
    }

    /**
     * Runs the kernel once and leaves all its outputs in the problem's segments: a peer that returns
     * fresh tensors offers {@code publishOutputs(Kernel)} for this (not timed); otherwise {@link Impl#run}.
     */
    public static void runAndPublish(Impl impl, Kernel kernel) {
        Method publish;
        try {
            publish = impl.getClass().getMethod("publishOutputs", Kernel.class);
        } catch (NoSuchMethodException e) {
            impl.run(kernel);
            return;
        }
        try {
            publish.invoke(impl, kernel);
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            if (e.getCause() instanceof Error err) throw err;
            throw new IllegalStateException(e.getCause());
        } catch (IllegalAccessException e) {
            throw new IllegalStateException(impl.name() + ": publishOutputs is not accessible", e);
        }
    }

    /** The innermost cause's class and message, for one-line reasons. */
    public static String rootMessage(Throwable t) {
        Throwable r = t;
        while (r.getCause() != null && r.getCause() != r) r = r.getCause();
        String m = r.getMessage();
        return r.getClass().getSimpleName() + (m == null ? "" : ": " + m.lines().findFirst().orElse(""));
    }
}
