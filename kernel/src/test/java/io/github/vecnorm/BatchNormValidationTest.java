package io.github.vecnorm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Bad input to every public BatchNorm method: each rejected call must throw the documented exception,
 * name the argument (and the expected and actual value where there is one), and leave every segment
 * byte for byte as it was (outputs are filled with a NaN-payload sentinel pattern first, inputs with
 * valid data). A rejected training call must not count a batch. Allowed aliasing (y exactly x, dx
 * exactly dy, read-only arguments sharing memory) must work and give the same bits as separate buffers.
 */
class BatchNormValidationTest {

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    /** (N, C, S) = (2, 3, 5): m = 10, every size distinct from the others. */
    private static final Shape SHAPE = new Shape(2, 3, 5);
    private static final double EPS = 1e-5;

    /** The four public methods, with the names of their segment arguments in signature order. */
    enum Op {
        FORWARD_TRAINING(List.of("x", "y", "gamma", "beta", "saveMean", "saveInvstd", "runningMean", "runningVar"),
                Set.of("y", "saveMean", "saveInvstd", "runningMean", "runningVar"),
                Set.of("x", "y", "saveMean", "saveInvstd"), true),
        FORWARD_INFERENCE(List.of("x", "y", "gamma", "beta", "runningMean", "runningVar"),
                Set.of("y"), Set.of("x", "y", "runningMean", "runningVar"), true),
        BACKWARD(List.of("dy", "x", "gamma", "saveMean", "saveInvstd", "dx", "dgamma", "dbeta"),
                Set.of("dx", "dgamma", "dbeta"), Set.of("dy", "x", "saveMean", "saveInvstd"), false),
        BACKWARD_INFERENCE(List.of("dy", "x", "gamma", "runningMean", "runningVar", "dx", "dgamma", "dbeta"),
                Set.of("dx", "dgamma", "dbeta"), Set.of("dy", "x", "runningMean", "runningVar"), true);

        final List<String> names;
        final Set<String> written;
        final Set<String> required;
        final boolean hasEps;

        Op(List<String> names, Set<String> written, Set<String> required, boolean hasEps) {
            this.names = names;
            this.written = written;
            this.required = required;
            this.hasEps = hasEps;
        }
    }

    static boolean isTensor(String name) {
        return name.equals("x") || name.equals("y") || name.equals("dy") || name.equals("dx");
    }

    static long floatsOf(Shape shape, String name) {
        return isTensor(name) ? shape.numel() : shape.c();
    }

    /** Written-only outputs get the sentinel; everything that is read gets valid data. */
    static boolean sentinelFilled(Op op, String name) {
        return op.written.contains(name) && !name.startsWith("running");
    }

    // ---------------------------------------------------------------------------------------------
    // One call's arguments, each replaceable by a test; owns the memory it allocates.

    static final class Call implements AutoCloseable {
        final Op op;
        final Arena arena = Arena.ofConfined();
        final Map<String, MemorySegment> segs = new LinkedHashMap<>();
        /** Segments owned by another thread, read back through their owner. */
        final Map<String, ForeignOwner> foreign = new HashMap<>();
        final SplittableRandom rnd;
        Shape shape = SHAPE;
        double eps = EPS;
        Parallelism parallelism = Parallelism.serial();
        /** Use the overload without a Parallelism. */
        boolean shortForm;
        /** Training only: how the running statistics are wrapped (null = momentum 0.1). */
        RunningStats running;
        boolean noRunning;

        Call(Op op) {
            this(op, 42);
        }

        Call(Op op, long seed) {
            this.op = op;
            this.rnd = new SplittableRandom(seed);
            for (String name : op.names) segs.put(name, fresh(name, floatsOf(shape, name)));
        }

        /** A new segment for {@code name} of {@code floats} floats, filled as that argument should be. */
        MemorySegment fresh(String name, long floats) {
            MemorySegment s = arena.allocate(floats * Float.BYTES, 16);
            fill(name, s);
            return s;
        }

        void fill(String name, MemorySegment s) {
            fill(op, name, s, rnd);
        }

        static void fill(Op op, String name, MemorySegment s, SplittableRandom rnd) {
            long floats = s.byteSize() / Float.BYTES;
            if (sentinelFilled(op, name)) {
                sentinel(s);
                return;
            }
            boolean positive = name.equals("runningVar") || name.equals("saveInvstd");
            for (long i = 0; i < floats; i++) {
                double v = positive ? 0.5 + rnd.nextDouble() : (isTensor(name) ? 4 : 2) * (rnd.nextDouble() - 0.5);
                s.setAtIndex(F, i, (float) v);
            }
        }

        MemorySegment get(String name) {
            return segs.get(name);
        }

        Call set(String name, MemorySegment seg) {
            if (!segs.containsKey(name)) throw new AssertionError(op + " has no argument " + name);
            segs.put(name, seg);
            return this;
        }

        /** Training: wraps the running-statistics segments as they are now, unless a test gave its own. */
        void prepare() {
            if (op == Op.FORWARD_TRAINING && running == null && !noRunning) {
                running = RunningStats.of(segs.get("runningMean"), segs.get("runningVar"));
            }
        }

        void run() {
            prepare();
            Map<String, MemorySegment> a = segs;
            switch (op) {
                case FORWARD_TRAINING -> {
                    RunningStats rs = noRunning ? null : running;
                    if (shortForm) {
                        BatchNorm.forwardTraining(shape, a.get("x"), a.get("y"), a.get("gamma"), a.get("beta"),
                                a.get("saveMean"), a.get("saveInvstd"), rs, eps);
                    } else {
                        BatchNorm.forwardTraining(shape, a.get("x"), a.get("y"), a.get("gamma"), a.get("beta"),
                                a.get("saveMean"), a.get("saveInvstd"), rs, eps, parallelism);
                    }
                }
                case FORWARD_INFERENCE -> {
                    if (shortForm) {
                        BatchNorm.forwardInference(shape, a.get("x"), a.get("y"), a.get("gamma"), a.get("beta"),
                                a.get("runningMean"), a.get("runningVar"), eps);
                    } else {
                        BatchNorm.forwardInference(shape, a.get("x"), a.get("y"), a.get("gamma"), a.get("beta"),
                                a.get("runningMean"), a.get("runningVar"), eps, parallelism);
                    }
                }
                case BACKWARD -> {
                    if (shortForm) {
                        BatchNorm.backward(shape, a.get("dy"), a.get("x"), a.get("gamma"), a.get("saveMean"),
                                a.get("saveInvstd"), a.get("dx"), a.get("dgamma"), a.get("dbeta"));
                    } else {
                        BatchNorm.backward(shape, a.get("dy"), a.get("x"), a.get("gamma"), a.get("saveMean"),
                                a.get("saveInvstd"), a.get("dx"), a.get("dgamma"), a.get("dbeta"), parallelism);
                    }
                }
                case BACKWARD_INFERENCE -> {
                    if (shortForm) {
                        BatchNorm.backwardInference(shape, a.get("dy"), a.get("x"), a.get("gamma"),
                                a.get("runningMean"), a.get("runningVar"), eps, a.get("dx"), a.get("dgamma"),
                                a.get("dbeta"));
                    } else {
                        BatchNorm.backwardInference(shape, a.get("dy"), a.get("x"), a.get("gamma"),
                                a.get("runningMean"), a.get("runningVar"), eps, a.get("dx"), a.get("dgamma"),
                                a.get("dbeta"), parallelism);
                    }
                }
            }
        }

        /** The bytes of every segment still readable (closed ones are skipped), by name. */
        Map<String, byte[]> snapshot() {
            Map<String, byte[]> m = new LinkedHashMap<>();
            for (var e : segs.entrySet()) {
                byte[] b = bytesOf(e.getKey(), e.getValue());
                if (b != null) m.put(e.getKey(), b);
            }
            return m;
        }

        byte[] bytesOf(String name, MemorySegment s) {
            if (s == null || !s.scope().isAlive()) return null;
            ForeignOwner owner = foreign.get(name);
            if (owner != null) return owner.read(s);
            return s.toArray(ValueLayout.JAVA_BYTE);
        }

        void assertUntouched(Map<String, byte[]> before, String what) {
            for (var e : before.entrySet()) {
                byte[] after = bytesOf(e.getKey(), segs.get(e.getKey()));
                int at = Arrays.mismatch(e.getValue(), after);
                if (at >= 0) {
                    fail(op + ", " + what + ": " + e.getKey() + " was changed by a rejected call, first at byte " + at
                            + " (" + e.getValue()[at] + " -> " + after[at] + ")");
                }
            }
        }

        @Override
        public void close() {
            arena.close();
        }
    }

    /** A NaN-payload pattern, different for every float, written as ints so no NaN is canonicalised. */
    static void sentinel(MemorySegment s) {
        long ints = s.byteSize() / Integer.BYTES;
        for (long i = 0; i < ints; i++) s.setAtIndex(I, i, 0x7FA5_0000 | (int) (i & 0xFFFF));
        for (long b = ints * Integer.BYTES; b < s.byteSize(); b++) s.set(ValueLayout.JAVA_BYTE, b, (byte) 0x5A);
    }

    /**
     * Runs a call that must be rejected: checks the exception type, that its message holds every
     * fragment, that no segment changed and (training) that no batch was counted.
     */
    static <T extends RuntimeException> T expectRejected(Call call, Class<T> type, String... fragments) {
        call.prepare();
        Map<String, byte[]> before = call.snapshot();
        long batches = call.running == null ? -1 : call.running.numBatchesTracked();
        T e = assertThrows(type, call::run, () -> call.op + " accepted a bad call; expected " + type.getSimpleName());
        String msg = e.getMessage();
        assertNotNull(msg, "exception without a message");
        for (String f : fragments) {
            assertTrue(msg.contains(f), () -> call.op + ": message '" + msg + "' does not mention '" + f + "'");
        }
        call.assertUntouched(before, "after '" + msg + "'");
        if (call.running != null) {
            assertEquals(batches, call.running.numBatchesTracked(), "a rejected training call counted a batch");
        }
        return e;
    }

    static Stream<Arguments> everyArgument() {
        return Stream.of(Op.values()).flatMap(op -> op.names.stream().map(n -> Arguments.of(op, n)));
    }

    static Stream<Arguments> requiredArguments() {
        return Stream.of(Op.values()).flatMap(op -> op.names.stream().filter(op.required::contains)
                .map(n -> Arguments.of(op, n)));
    }

    static Stream<Arguments> writtenArguments() {
        return Stream.of(Op.values()).flatMap(op -> op.names.stream().filter(op.written::contains)
                .map(n -> Arguments.of(op, n)));
    }

    static Stream<Arguments> readArguments() {
        return Stream.of(Op.values()).flatMap(op -> op.names.stream().filter(n -> !op.written.contains(n))
                .map(n -> Arguments.of(op, n)));
    }

    static Stream<Arguments> perChannelArguments() {
        return everyArgument().filter(a -> !isTensor((String) a.get()[1]));
    }

    // ---------------------------------------------------------------------------------------------
    // The fixture itself must be a valid call, or every rejection below proves nothing.

    @ParameterizedTest(name = "{0}")
    @EnumSource(Op.class)
    void theBaseCallIsValidAndWritesItsOutputs(Op op) {
        try (Call call = new Call(op)) {
            Map<String, byte[]> before = call.snapshot();
            call.run();
            for (String name : op.written) {
                if (name.startsWith("running")) continue; // a momentum update may round back to the same float
                assertTrue(Arrays.mismatch(before.get(name), call.bytesOf(name, call.get(name))) >= 0,
                        op + ": output " + name + " was not written by a valid call");
            }
            for (String name : op.names) {
                if (op.written.contains(name)) continue;
                assertEquals(-1, Arrays.mismatch(before.get(name), call.bytesOf(name, call.get(name))),
                        op + ": input " + name + " was written");
            }
            if (op == Op.FORWARD_TRAINING) assertEquals(1, call.running.numBatchesTracked());
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Null arguments

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("requiredArguments")
    void nullRequiredSegment(Op op, String name) {
        for (boolean shortForm : new boolean[] {false, true}) {
            try (Call call = new Call(op)) {
                call.shortForm = shortForm;
                call.set(name, null);
                expectRejected(call, IllegalArgumentException.class, name, "null");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Op.class)
    void nullShape(Op op) {
        for (boolean shortForm : new boolean[] {false, true}) {
            try (Call call = new Call(op)) {
                call.shortForm = shortForm;
                call.shape = null;
                expectRejected(call, IllegalArgumentException.class, "shape", "null");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Op.class)
    void nullParallelism(Op op) {
        try (Call call = new Call(op)) {
            call.parallelism = null;
            expectRejected(call, IllegalArgumentException.class, "parallelism", "null");
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Sizes

    static void expectSize(Op op, String name, long bytes, boolean shortForm) {
        try (Call call = new Call(op)) {
            call.shortForm = shortForm;
            long expected = floatsOf(SHAPE, name) * Float.BYTES;
            MemorySegment block = call.fresh(name, (bytes + 3) / 4 + 1);
            call.set(name, block.asSlice(0, bytes));
            expectRejected(call, IllegalArgumentException.class, name, "expected " + expected, "got " + bytes);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("everyArgument")
    void segmentTooSmall(Op op, String name) {
        long expected = floatsOf(SHAPE, name) * Float.BYTES;
        expectSize(op, name, expected - Float.BYTES, false);
        expectSize(op, name, expected - 1, false);
        expectSize(op, name, expected - Float.BYTES, true);
        expectSize(op, name, 0, false);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("everyArgument")
    void segmentTooLarge(Op op, String name) {
        long expected = floatsOf(SHAPE, name) * Float.BYTES;
        expectSize(op, name, expected + Float.BYTES, false);
        expectSize(op, name, expected + 1, false);
        expectSize(op, name, 2 * expected, true);
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("requiredArguments")
    void theNullAddressSegmentIsTooSmall(Op op, String name) {
        try (Call call = new Call(op)) {
            call.set(name, MemorySegment.NULL);
            expectRejected(call, IllegalArgumentException.class, name, "got 0 bytes");
        }
    }

    /** Per-channel vectors sized for another C: gamma/beta, running and saved statistics, dgamma/dbeta. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("perChannelArguments")
    void channelCountMismatch(Op op, String name) {
        for (long otherC : new long[] {SHAPE.c() - 1, SHAPE.c() + 1, 1, 4 * SHAPE.c()}) {
            try (Call call = new Call(op)) {
                call.set(name, call.fresh(name, otherC));
                expectRejected(call, IllegalArgumentException.class, name, "one per channel",
                        "expected " + SHAPE.c() * Float.BYTES, "got " + otherC * Float.BYTES);
            }
        }
    }

    /** The tensors right for one shape and the call made with another of the same C. */
    @ParameterizedTest(name = "{0}")
    @EnumSource(Op.class)
    void tensorsOfAnotherShape(Op op) {
        try (Call call = new Call(op)) {
            call.shape = new Shape(SHAPE.n(), SHAPE.c(), SHAPE.s() + 1);
            String first = op.names.getFirst();
            expectRejected(call, IllegalArgumentException.class, first,
                    "expected " + call.shape.byteSize(), "got " + SHAPE.byteSize());
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Shape construction

    @Test
    void shapeOfRejectsNonPositiveDimensions() {
        long[][] bad = {{0, 3}, {-1, 3}, {2, 0}, {2, -3}, {2, 3, 0}, {2, 3, 4, -5}, {2, 3, 0, 7}, {0, 0},
                {Long.MIN_VALUE, 3}, {2, 3, 5, Long.MIN_VALUE}};
        for (long[] dims : bad) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Shape.of(dims),
                    () -> "Shape.of" + Arrays.toString(dims) + " was accepted");
            assertTrue(e.getMessage().contains("positive"), e.getMessage());
            long offender = Arrays.stream(dims).filter(d -> d <= 0).findFirst().orElseThrow();
            assertTrue(e.getMessage().contains(Long.toString(offender)),
                    () -> "message '" + e.getMessage() + "' does not give the bad value " + offender);
        }
    }

    @Test
    void shapeOfRejectsTooFewDimensions() {
        for (long[] dims : new long[][] {{}, {5}, null}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Shape.of(dims));
            assertTrue(e.getMessage().contains("at least 2 dimensions"), e.getMessage());
        }
    }

    @Test
    void shapeOfRejectsElementCountOverflow() {
        long big = 1L << 21;
        long[][] bad = {
                {2, 3, big, big, big, big},            // the spatial product alone overflows
                {big, big, big, big},                  // N*C*S overflows
                {Long.MAX_VALUE, 2},                   // N*C overflows
                {(Long.MAX_VALUE / 4) + 1, 1},         // the element count fits, its byte size does not
                {1, 1, Long.MAX_VALUE / 2, 3},
        };
        for (long[] dims : bad) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Shape.of(dims),
                    () -> "Shape.of" + Arrays.toString(dims) + " was accepted");
            assertTrue(e.getMessage().contains("overflow"), e.getMessage());
        }
        // the largest byte size that still fits is accepted
        assertEquals(Long.MAX_VALUE / 4, Shape.of(Long.MAX_VALUE / 4, 1).numel());
    }

    @Test
    void shapeConstructorRejectsBadDimensions() {
        record Bad(long n, long c, long s, String names) {
        }
        for (Bad b : List.of(new Bad(0, 1, 1, "N"), new Bad(-7, 1, 1, "N"), new Bad(1, 0, 1, "C"),
                new Bad(1, -2, 1, "C"), new Bad(1, 1, 0, "S"), new Bad(1, 1, -1, "S"))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Shape(b.n, b.c, b.s));
            assertTrue(e.getMessage().contains(b.names), e.getMessage());
            long bad = b.n <= 0 ? b.n : b.c <= 0 ? b.c : b.s;
            assertTrue(e.getMessage().contains(Long.toString(bad)), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Shape(1L << 40, 1L << 20, 1L << 10));
        assertTrue(e.getMessage().contains("overflow"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Shape(Long.MAX_VALUE / 4 + 1, 1, 1));
        assertTrue(e.getMessage().contains("overflow"), e.getMessage());
    }

    // ---------------------------------------------------------------------------------------------
    // eps and momentum

    static Stream<Arguments> badEps() {
        double[] eps = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 0.0, -0.0, -1e-5, -1.0,
                -Double.MIN_VALUE};
        return Stream.of(Op.values()).filter(op -> op.hasEps)
                .flatMap(op -> Arrays.stream(eps).mapToObj(e -> Arguments.of(op, e)));
    }

    @ParameterizedTest(name = "{0} eps={1}")
    @MethodSource("badEps")
    void badEpsIsRejected(Op op, double eps) {
        for (boolean shortForm : new boolean[] {false, true}) {
            try (Call call = new Call(op)) {
                call.shortForm = shortForm;
                call.eps = eps;
                expectRejected(call, IllegalArgumentException.class, "eps", String.valueOf(eps));
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = Op.class, names = {"FORWARD_TRAINING", "FORWARD_INFERENCE", "BACKWARD_INFERENCE"})
    void tinyPositiveEpsIsAccepted(Op op) {
        try (Call call = new Call(op)) {
            call.eps = Double.MIN_VALUE;
            call.run();
        }
    }

    @ParameterizedTest(name = "momentum={0}")
    @ValueSource(doubles = {Double.NaN, -0.1, -Double.MIN_VALUE, 1.0000001, 2.0, Double.POSITIVE_INFINITY,
            Double.NEGATIVE_INFINITY})
    void badMomentumIsRejected(double momentum) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment rm = arena.allocate(12), rv = arena.allocate(12);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> RunningStats.withMomentum(rm, rv, momentum));
            assertTrue(e.getMessage().contains("momentum"), e.getMessage());
            assertTrue(e.getMessage().contains(String.valueOf(momentum)), e.getMessage());
        }
    }

    @Test
    void momentumBoundsAreAccepted() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment rm = arena.allocate(12), rv = arena.allocate(12);
            assertEquals(0.0, RunningStats.withMomentum(rm, rv, 0.0).momentum());
            assertEquals(1.0, RunningStats.withMomentum(rm, rv, 1.0).momentum());
            assertEquals(0.1, RunningStats.of(rm, rv).momentum());
            assertTrue(RunningStats.cumulative(rm, rv, 0).isCumulative());
        }
    }

    @Test
    void runningStatsFactoriesRejectNullsAndNegativeCounts() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment rm = arena.allocate(12), rv = arena.allocate(12);
            List<Executable> calls = List.of(
                    () -> RunningStats.of(null, rv), () -> RunningStats.withMomentum(null, rv, 0.1),
                    () -> RunningStats.cumulative(null, rv, 0));
            for (Executable c : calls) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, c);
                assertTrue(e.getMessage().contains("runningMean"), e.getMessage());
            }
            calls = List.of(() -> RunningStats.of(rm, null), () -> RunningStats.withMomentum(rm, null, 0.1),
                    () -> RunningStats.cumulative(rm, null, 0));
            for (Executable c : calls) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, c);
                assertTrue(e.getMessage().contains("runningVar"), e.getMessage());
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> RunningStats.cumulative(rm, rv, -1));
            assertTrue(e.getMessage().contains("numBatchesTracked") && e.getMessage().contains("-1"), e.getMessage());
        }
    }

    // ---------------------------------------------------------------------------------------------
    // One value per channel in training

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"1x3", "1x3x1x1", "1x1", "1x5x1", "1x4x1x1x1"})
    void oneValuePerChannelInTraining(String dims) {
        Shape shape = Shape.parse(dims);
        for (boolean withRunning : new boolean[] {true, false}) {
            try (Call call = new Call(Op.FORWARD_TRAINING)) {
                call.shape = shape;
                call.noRunning = !withRunning;
                for (String name : Op.FORWARD_TRAINING.names) call.set(name, call.fresh(name, floatsOf(shape, name)));
                if (withRunning) call.running = RunningStats.cumulative(call.get("runningMean"), call.get("runningVar"), 3);
                expectRejected(call, IllegalArgumentException.class,
                        "Expected more than 1 value per channel when training", Long.toString(shape.c()));
                if (withRunning) assertEquals(3, call.running.numBatchesTracked());
            }
        }
    }

    /** The same shapes are fine where no batch statistics are taken. */
    @ParameterizedTest(name = "{0}")
    @EnumSource(value = Op.class, names = {"FORWARD_INFERENCE", "BACKWARD", "BACKWARD_INFERENCE"})
    void oneValuePerChannelOutsideTrainingIsAccepted(Op op) {
        Shape shape = Shape.of(1, 3, 1, 1);
        try (Call call = new Call(op)) {
            call.shape = shape;
            for (String name : op.names) call.set(name, call.fresh(name, floatsOf(shape, name)));
            call.run();
        }
    }

    @Test
    void twoValuesPerChannelAreEnoughForTraining() {
        for (String dims : new String[] {"2x3", "1x3x2", "1x3x1x2"}) {
            Shape shape = Shape.parse(dims);
            try (Call call = new Call(Op.FORWARD_TRAINING)) {
                call.shape = shape;
                for (String name : Op.FORWARD_TRAINING.names) call.set(name, call.fresh(name, floatsOf(shape, name)));
                call.run();
                assertEquals(1, call.running.numBatchesTracked());
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Read-only, closed and foreign segments

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("writtenArguments")
    void readOnlyOutput(Op op, String name) {
        try (Call call = new Call(op)) {
            call.set(name, call.get(name).asReadOnly());
            expectRejected(call, IllegalArgumentException.class, name, "read-only");
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Op.class)
    void readOnlyInputsAreAccepted(Op op) {
        try (Call call = new Call(op)) {
            for (String name : op.names) {
                if (!op.written.contains(name)) call.set(name, call.get(name).asReadOnly());
            }
            call.run();
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("everyArgument")
    void closedArena(Op op, String name) {
        try (Call call = new Call(op)) {
            MemorySegment dead;
            try (Arena other = Arena.ofConfined()) {
                dead = other.allocate(floatsOf(SHAPE, name) * Float.BYTES, 16);
            }
            call.set(name, dead);
            expectRejected(call, IllegalStateException.class, name, "closed");
        }
        // a closed shared arena too
        try (Call call = new Call(op)) {
            Arena other = Arena.ofShared();
            MemorySegment dead = other.allocate(floatsOf(SHAPE, name) * Float.BYTES, 16);
            other.close();
            call.set(name, dead);
            expectRejected(call, IllegalStateException.class, name, "closed");
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("everyArgument")
    void segmentConfinedToAnotherThread(Op op, String name) {
        try (Call call = new Call(op); ForeignOwner owner = new ForeignOwner()) {
            MemorySegment theirs = owner.allocate(floatsOf(SHAPE, name) * Float.BYTES,
                    s -> Call.fill(op, name, s, new SplittableRandom(7)));
            assertTrue(!theirs.isAccessibleBy(Thread.currentThread()), "the fixture should be foreign");
            call.set(name, theirs);
            call.foreign.put(name, owner);
            expectRejected(call, IllegalStateException.class, name, "thread");
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Aliasing

    /**
     * Puts {@code first} at the start of a new buffer and {@code second} {@code shift} floats later, both
     * of their right sizes and refilled as their roles want; they overlap when shift < size(first).
     */
    static void place(Call call, String first, String second, long shift) {
        long a = floatsOf(call.shape, first), b = floatsOf(call.shape, second);
        MemorySegment buf = call.arena.allocate((Math.max(a, shift + b)) * Float.BYTES, 16);
        MemorySegment s1 = buf.asSlice(0, a * Float.BYTES), s2 = buf.asSlice(shift * Float.BYTES, b * Float.BYTES);
        call.fill(first, s1);
        call.fill(second, s2);
        call.set(first, s1).set(second, s2);
    }

    record Alias(Op op, String label, Consumer<Call> setup, String a, String b) {
        @Override
        public String toString() {
            return op + ": " + label;
        }
    }

    static Alias alias(Op op, String first, String second, long shift) {
        String label = shift == 0 && floatsOf(SHAPE, first) == floatsOf(SHAPE, second)
                ? first + " == " + second : second + " at " + first + "+" + shift;
        return new Alias(op, label, c -> place(c, first, second, shift), first, second);
    }

    static Stream<Alias> forbiddenAliasing() {
        long numel = SHAPE.numel(), c = SHAPE.c();
        Op ft = Op.FORWARD_TRAINING, fi = Op.FORWARD_INFERENCE, b = Op.BACKWARD, bi = Op.BACKWARD_INFERENCE;
        List<Alias> list = new ArrayList<>(List.of(
                // training forward
                alias(ft, "x", "y", 1), alias(ft, "y", "x", 1), alias(ft, "x", "y", numel / 2),
                alias(ft, "y", "x", numel - 1),
                alias(ft, "y", "saveMean", 0), alias(ft, "y", "saveMean", 4), alias(ft, "y", "saveInvstd", numel - c),
                alias(ft, "y", "runningMean", 2), alias(ft, "y", "runningVar", 7), alias(ft, "y", "gamma", 3),
                alias(ft, "y", "beta", numel - 1), alias(ft, "saveMean", "saveInvstd", 0),
                alias(ft, "saveMean", "saveInvstd", 1), alias(ft, "saveInvstd", "saveMean", c - 1),
                alias(ft, "x", "saveMean", 5), alias(ft, "x", "saveInvstd", 0),
                alias(ft, "runningMean", "runningVar", 0), alias(ft, "runningMean", "runningVar", 1),
                alias(ft, "runningVar", "runningMean", 2), alias(ft, "saveMean", "runningMean", 0),
                alias(ft, "saveInvstd", "runningVar", 1), alias(ft, "gamma", "runningMean", 0),
                alias(ft, "beta", "runningVar", 1), alias(ft, "gamma", "saveInvstd", 2),
                alias(ft, "x", "runningVar", numel - 2),
                // inference forward
                alias(fi, "x", "y", 1), alias(fi, "y", "x", 2), alias(fi, "x", "y", numel - 1),
                alias(fi, "y", "runningMean", 0), alias(fi, "y", "runningVar", 5), alias(fi, "y", "gamma", 9),
                alias(fi, "y", "beta", numel - c),
                // training backward
                alias(b, "dy", "dx", 1), alias(b, "dx", "dy", numel / 3), alias(b, "x", "dx", 0), alias(b, "dx", "x", 1),
                alias(b, "x", "dx", numel - 1), alias(b, "dgamma", "dbeta", 0), alias(b, "dgamma", "dbeta", 2),
                alias(b, "dbeta", "dgamma", 1), alias(b, "dx", "dgamma", 3), alias(b, "dx", "dbeta", numel - c),
                alias(b, "dy", "dbeta", 0), alias(b, "x", "dgamma", 6), alias(b, "saveMean", "dgamma", 0),
                alias(b, "saveInvstd", "dbeta", 1), alias(b, "gamma", "dgamma", 0), alias(b, "dx", "gamma", 4),
                alias(b, "dx", "saveMean", 0), alias(b, "dx", "saveInvstd", 11),
                // inference backward
                alias(bi, "dy", "dx", 1), alias(bi, "dx", "dy", 2), alias(bi, "x", "dx", 0), alias(bi, "dx", "x", 3),
                alias(bi, "dgamma", "dbeta", 0), alias(bi, "dbeta", "dgamma", 2), alias(bi, "runningVar", "dgamma", 0),
                alias(bi, "runningMean", "dbeta", 1), alias(bi, "dx", "dbeta", 8), alias(bi, "dx", "runningVar", 0),
                alias(bi, "gamma", "dbeta", 0), alias(bi, "dy", "dgamma", numel - c)));
        return list.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("forbiddenAliasing")
    void forbiddenAliasingIsRejected(Alias alias) {
        try (Call call = new Call(alias.op)) {
            alias.setup.accept(call);
            expectRejected(call, IllegalArgumentException.class, alias.a, alias.b, "overlaps");
        }
    }

    /** Forbidden aliasing is also caught when an output's mask partner is absent (null). */
    @Test
    void forbiddenAliasingWithOtherOutputsMasked() {
        for (Op op : new Op[] {Op.BACKWARD, Op.BACKWARD_INFERENCE}) {
            try (Call call = new Call(op)) {
                place(call, "dy", "dx", 1);
                call.set("dgamma", null).set("dbeta", null);
                expectRejected(call, IllegalArgumentException.class, "dx", "dy", "overlaps");
            }
            try (Call call = new Call(op)) {
                place(call, "x", "dgamma", 0);
                call.set("dx", null).set("dbeta", null);
                expectRejected(call, IllegalArgumentException.class, "dgamma", "x", "overlaps");
            }
        }
        try (Call call = new Call(Op.FORWARD_TRAINING)) {
            place(call, "x", "y", 1);
            call.set("gamma", null).set("beta", null);
            call.noRunning = true;
            expectRejected(call, IllegalArgumentException.class, "y", "x", "overlaps");
        }
    }

    /** The written bytes of every output of a call, by name. */
    static Map<String, byte[]> outputs(Call call) {
        Map<String, byte[]> m = new LinkedHashMap<>();
        for (String name : call.op.names) {
            if (call.op.written.contains(name)) m.put(name, call.bytesOf(name, call.get(name)));
        }
        return m;
    }

    static void assertSameBits(Map<String, byte[]> expected, Map<String, byte[]> actual, String what) {
        for (var e : expected.entrySet()) {
            int at = Arrays.mismatch(e.getValue(), actual.get(e.getKey()));
            assertEquals(-1, at, () -> what + ": " + e.getKey() + " differs from the call on separate buffers at byte "
                    + at);
        }
    }

    /** In place: y exactly x (training and inference), dx exactly dy (both backwards). */
    @ParameterizedTest(name = "{0}")
    @EnumSource(Op.class)
    void inPlaceIsAllowedAndMatchesSeparateBuffers(Op op) {
        String in = op.names.contains("y") ? "x" : "dy", out = op.names.contains("y") ? "y" : "dx";
        for (boolean sameObject : new boolean[] {true, false}) {
            try (Call separate = new Call(op, 9); Call inPlace = new Call(op, 9)) {
                separate.run();
                Map<String, byte[]> expected = outputs(separate);
                MemorySegment shared = inPlace.get(in);
                // the same memory through the same object, or through a second view of it
                inPlace.set(out, sameObject ? shared : shared.asSlice(0));
                inPlace.run();
                Map<String, byte[]> actual = outputs(inPlace);
                assertSameBits(expected, actual, op + " in place");
                assertEquals(-1, Arrays.mismatch(expected.get(out), inPlace.bytesOf(in, inPlace.get(in))),
                        op + ": " + in + " does not hold the result after the in-place call");
                if (op == Op.FORWARD_TRAINING) assertEquals(1, inPlace.running.numBatchesTracked());
            }
        }
    }

    /** Arguments that are only read may share memory. */
    @Test
    void readOnlyArgumentsMayShareMemory() {
        record Share(Op op, String a, String b) {
        }
        for (Share s : List.of(new Share(Op.FORWARD_INFERENCE, "gamma", "beta"),
                new Share(Op.FORWARD_INFERENCE, "runningVar", "runningMean"),
                new Share(Op.FORWARD_TRAINING, "gamma", "beta"),
                new Share(Op.BACKWARD, "dy", "x"), new Share(Op.BACKWARD, "saveInvstd", "gamma"),
                new Share(Op.BACKWARD_INFERENCE, "dy", "x"), new Share(Op.BACKWARD_INFERENCE, "runningVar", "gamma"))) {
            try (Call separate = new Call(s.op, 5); Call shared = new Call(s.op, 5)) {
                // the same values in both calls: b is a copy of a in one, the very same memory in the other
                MemorySegment.copy(separate.get(s.a), 0, separate.get(s.b), 0, separate.get(s.a).byteSize());
                shared.set(s.b, shared.get(s.a));
                separate.run();
                shared.run();
                assertSameBits(outputs(separate), outputs(shared), s.op + " with " + s.a + " == " + s.b);
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Failed training calls do not count a batch

    @Test
    void failedTrainingCallsDoNotCountABatch() {
        List<Consumer<Call>> breakers = List.of(
                c -> c.eps = Double.NaN,
                c -> c.eps = 0,
                c -> c.set("y", c.fresh("y", SHAPE.numel() - 1)),
                c -> c.set("saveInvstd", c.get("saveInvstd").asReadOnly()),
                c -> c.set("x", null),
                c -> place(c, "y", "saveMean", 1),
                c -> c.parallelism = null,
                c -> c.set("gamma", c.fresh("gamma", SHAPE.c() + 1)));
        for (boolean cumulative : new boolean[] {true, false}) {
            for (Consumer<Call> breaker : breakers) {
                try (Call call = new Call(Op.FORWARD_TRAINING)) {
                    breaker.accept(call);
                    MemorySegment rm = call.get("runningMean"), rv = call.get("runningVar");
                    call.running = cumulative ? RunningStats.cumulative(rm, rv, 5) : RunningStats.withMomentum(rm, rv, 0.3);
                    double factor = call.running.nextFactor();
                    long before = call.running.numBatchesTracked();
                    expectRejected(call, IllegalArgumentException.class);
                    assertEquals(before, call.running.numBatchesTracked());
                    assertEquals(factor, call.running.nextFactor());
                }
            }
        }
        // a closed running-statistics segment: IllegalStateException, still no batch counted
        try (Call call = new Call(Op.FORWARD_TRAINING)) {
            Arena other = Arena.ofShared();
            MemorySegment dead = other.allocate(SHAPE.c() * Float.BYTES);
            other.close();
            call.running = RunningStats.cumulative(call.get("runningMean"), dead, 2);
            call.set("runningVar", dead);
            expectRejected(call, IllegalStateException.class, "runningVar", "closed");
            assertEquals(2, call.running.numBatchesTracked());
        }
        // and a good call afterwards does count
        try (Call call = new Call(Op.FORWARD_TRAINING)) {
            call.running = RunningStats.cumulative(call.get("runningMean"), call.get("runningVar"), 5);
            call.eps = -1;
            expectRejected(call, IllegalArgumentException.class, "eps");
            call.eps = EPS;
            call.run();
            assertEquals(6, call.running.numBatchesTracked());
        }
    }

    @Test
    void theNoOpMaskWritesNothingAndAcceptsValidArguments() {
        for (Op op : new Op[] {Op.BACKWARD, Op.BACKWARD_INFERENCE}) {
            try (Call call = new Call(op)) {
                call.set("dx", null).set("dgamma", null).set("dbeta", null);
                Map<String, byte[]> before = call.snapshot();
                call.run();
                call.assertUntouched(before, "empty mask");
            }
        }
    }

    // ---------------------------------------------------------------------------------------------

    /** A thread that owns a confined arena: its segments cannot be touched from the test thread. */
    static final class ForeignOwner implements AutoCloseable {
        private final ExecutorService thread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "foreign-owner");
            t.setDaemon(true);
            return t;
        });
        private final Arena arena;

        ForeignOwner() {
            arena = on(Arena::ofConfined);
        }

        <T> T on(Callable<T> task) {
            try {
                return thread.submit(task).get(30, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                throw new AssertionError("on the owner thread", e.getCause());
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }

        MemorySegment allocate(long bytes, Consumer<MemorySegment> fill) {
            return on(() -> {
                MemorySegment s = arena.allocate(bytes, 16);
                fill.accept(s);
                return s;
            });
        }

        byte[] read(MemorySegment s) {
            return on(() -> s.toArray(ValueLayout.JAVA_BYTE));
        }

        @Override
        public void close() {
            on(() -> {
                arena.close();
                return null;
            });
            thread.shutdown();
        }
    }
}
