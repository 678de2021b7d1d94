package io.github.vecnorm.bench.peers;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The OpenMP runtime (GNU libgomp) that the bytedeco natives ship and load, reached through the FFM
 * API to set the thread count at run time instead of through {@code OMP_NUM_THREADS} at load time.
 *
 * <p>{@code omp_set_num_threads} sets the calling thread's own count (an OpenMP internal control
 * variable of that thread), so callers apply it on the thread that then calls into the library.
 * Only usable once a library that needs {@code libgomp.so.1} is loaded: the look-up by soname then
 * finds the copy already in the process, the one that library's calls resolve to.
 */
@SuppressWarnings("restricted") // run with --enable-native-access=ALL-UNNAMED to quiet the JVM's warning
final class OpenMp {

    private static final String LIBRARY = "libgomp.so.1";
    private static final MethodHandle SET_NUM_THREADS;
    private static final MethodHandle GET_MAX_THREADS;
    private static final String FAILURE;

    static {
        MethodHandle set = null, get = null;
        String failure = null;
        try {
            SymbolLookup gomp = SymbolLookup.libraryLookup(LIBRARY, Arena.global());
            Linker linker = Linker.nativeLinker();
            set = linker.downcallHandle(gomp.findOrThrow("omp_set_num_threads"),
                    FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));
            get = linker.downcallHandle(gomp.findOrThrow("omp_get_max_threads"),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT));
        } catch (RuntimeException | LinkageError e) {
            failure = LIBRARY + " not reachable: " + e;
        }
        SET_NUM_THREADS = set;
        GET_MAX_THREADS = get;
        FAILURE = failure;
    }

    private OpenMp() {
    }

    /** Whether the runtime was found; if not, the thread count is whatever OMP_NUM_THREADS said. */
    static boolean available() {
        return FAILURE == null;
    }

    /** Why the runtime was not found, or null. */
    static String failure() {
        return FAILURE;
    }

    /** The calling thread's OpenMP thread count, or -1 if the runtime was not found. */
    static int maxThreads() {
        if (FAILURE != null) return -1;
        try {
            return (int) GET_MAX_THREADS.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException("omp_get_max_threads failed", t);
        }
    }

    /** Sets the calling thread's OpenMP thread count if it differs; false if the runtime was not found. */
    static boolean ensureThreads(int threads) {
        if (FAILURE != null) return false;
        try {
            if ((int) GET_MAX_THREADS.invokeExact() != threads) SET_NUM_THREADS.invokeExact(threads);
            return true;
        } catch (Throwable t) {
            throw new IllegalStateException("omp_set_num_threads(" + threads + ") failed", t);
        }
    }
}
