package io.github.vecnorm.bench;

/**
 * Checks, in a JVM of its own, that one implementation loads and agrees with the scalar twin on a
 * small problem, kernel by kernel, so the report can skip what does not work (a native library that
 * does not load, or even crashes the JVM) with the reason, before any benchmark fork. Prints one line
 * per kernel: {@code PROBE ok <kernel> <summary>}, {@code PROBE unsupported <kernel>},
 * {@code PROBE fail <kernel> <reason>}, or {@code PROBE error <reason>} if it cannot start at all.
 *
 * <p>Usage: {@code Probe <impl> <threads>}.
 */
public final class Probe {

    /** Small, with a spatial size that is no multiple of any lane count. */
    static final String SHAPE = "2x16x9x9";

    private Probe() {
    }

    public static void main(String[] args) {
        String impl = args[0];
        int threads = Impls.threads(args.length > 1 ? args[1] : "1");
        Impls.prepareJvm(impl);
        for (Kernel k : Kernel.values()) {
            try (Problem p = new Problem(SHAPE, threads)) {
                Agreement.prepareInputs(p, k);
                Impl target;
                try {
                    target = Impls.create(impl, p);
                } catch (RuntimeException | LinkageError e) {
                    System.out.println("PROBE error " + oneLine(e));
                    System.out.flush();
                    System.exit(2);
                    return;
                }
                try (target) {
                    if (!target.supports(k)) {
                        System.out.println("PROBE unsupported " + k.id());
                        continue;
                    }
                    System.out.println("PROBE ok " + k.id() + " " + Agreement.check(p, k, target));
                } catch (RuntimeException | LinkageError e) {
                    System.out.println("PROBE fail " + k.id() + " " + oneLine(e));
                }
            }
        }
        System.out.flush();
        System.exit(0); // native runtimes may leave non-daemon threads behind
    }

    private static String oneLine(Throwable e) {
        String m = e instanceof IllegalStateException && e.getMessage() != null ? e.getMessage() : Impls.rootMessage(e);
        return m.replace('\n', ' ');
    }
}
