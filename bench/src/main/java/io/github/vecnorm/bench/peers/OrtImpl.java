package io.github.vecnorm.bench.peers;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.vecnorm.bench.Kernel;
import io.github.vecnorm.bench.Problem;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * ONNX Runtime (CPU execution provider) running one-node BatchNormalization models (opset 15).
 *
 * <ul>
 *   <li>Inference: {@code training_mode=0}: X, scale, B, input_mean, input_var (the running stats)
 *   -&gt; Y.</li>
 *   <li>Training forward: {@code training_mode=1, momentum=0}. ONNX's momentum weighs the
 *   <em>old</em> running value (running = input * momentum + batch * (1 - momentum)), so momentum 0
 *   makes the two optional outputs exactly the batch mean and the <em>biased</em> batch variance:
 *   the mean goes straight into saveMean, the variance into a scratch vector of C floats. ONNX has
 *   no saved inverse deviation and its running variance is biased, so {@link #run} finishes the
 *   per-channel rest in Java ({@link Epilogue}, C values): saveInvstd = 1/sqrt(var + eps) and the
 *   running statistics updated as ATen does (PyTorch momentum, unbiased variance).</li>
 *   <li>No backward: ONNX Runtime has none outside its training build.</li>
 * </ul>
 *
 * <p>Zero copy both ways: the inputs are {@link OnnxTensor}s over direct float buffers of the
 * problem's segments, and the outputs are <em>pinned outputs</em> over them too, so ORT writes into
 * our memory ({@code OrtSession.run(inputs, pinnedOutputs)}); nothing is copied out.
 *
 * <p>Threads: {@code SessionOptions.setIntraOpNumThreads(p.threads)}, sequential execution, one
 * inter-op thread. ORT's own pool threads spin briefly after each run (its default).
 */
public final class OrtImpl implements PeerImpl {

    /** The opset the models declare; BatchNormalization's current version since 15. */
    static final int OPSET = 15;

    private final Problem p;
    private final OrtEnvironment env;
    private final Arena scratchArena = Arena.ofShared();
    /** The training model's batch variance (biased), C floats. */
    private final MemorySegment variance;
    private final List<AutoCloseable> resources = new ArrayList<>();
    private final OrtSession inference, training;
    private final Map<String, OnnxTensor> inferenceInputs, inferenceOutputs, trainingInputs, trainingOutputs;
    private boolean closed;

    public OrtImpl(Problem p) {
        this.p = p;
        this.variance = scratchArena.allocate(p.shape.c() * Float.BYTES, 64);
        long[] act = p.dims.clone();
        long[] chan = {p.shape.c()};
        List<OnnxModel.Value> in = List.of(new OnnxModel.Value("X", act), new OnnxModel.Value("scale", chan),
                new OnnxModel.Value("B", chan), new OnnxModel.Value("input_mean", chan),
                new OnnxModel.Value("input_var", chan));
        env = OrtEnvironment.getEnvironment();
        try {
            inference = session(OnnxModel.singleNode("BatchNormalization", OPSET, in,
                    List.of(new OnnxModel.Value("Y", act)),
                    Map.of("epsilon", (float) p.eps, "training_mode", 0)));
            training = session(OnnxModel.singleNode("BatchNormalization", OPSET, in,
                    List.of(new OnnxModel.Value("Y", act), new OnnxModel.Value("running_mean", chan),
                            new OnnxModel.Value("running_var", chan)),
                    Map.of("epsilon", (float) p.eps, "momentum", 0f, "training_mode", 1)));
            inferenceInputs = Map.of(
                    "X", tensor(p.x, act),
                    "scale", tensor(p.gamma, chan),
                    "B", tensor(p.beta, chan),
                    "input_mean", tensor(p.runningMean, chan),
                    "input_var", tensor(p.runningVar, chan));
            trainingInputs = inferenceInputs;
            OnnxTensor y = tensor(p.y, act);
            inferenceOutputs = Map.of("Y", y);
            trainingOutputs = Map.of("Y", y, "running_mean", tensor(p.saveMean, chan),
                    "running_var", tensor(variance, chan));
        } catch (OrtException | RuntimeException e) {
            closeResources();
            throw new IllegalStateException("ort peer: cannot build the BatchNormalization sessions: " + e.getMessage(), e);
        }
    }

    private OrtSession session(byte[] model) throws OrtException {
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(p.threads);
            options.setInterOpNumThreads(1);
            options.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            OrtSession s = env.createSession(model, options);
            resources.add(s);
            return s;
        }
    }

    /** A tensor over the segment's memory (a direct, native-order buffer: ORT uses it without copying). */
    private OnnxTensor tensor(MemorySegment segment, long[] dims) throws OrtException {
        FloatBuffer buffer = segment.asByteBuffer().order(ByteOrder.nativeOrder()).asFloatBuffer();
        OnnxTensor t = OnnxTensor.createTensor(env, buffer, dims);
        resources.add(t);
        return t;
    }

    @Override
    public String name() {
        return "ort";
    }

    @Override
    public boolean supports(Kernel kernel) {
        return switch (kernel) {
            case BATCHNORM_FORWARD_TRAINING, BATCHNORM_FORWARD_INFERENCE -> true;
            case BATCHNORM_BACKWARD -> false;
        };
    }

    @Override
    public void run(Kernel kernel) {
        if (closed) throw new IllegalStateException("ort peer: already closed");
        switch (kernel) {
            case BATCHNORM_FORWARD_INFERENCE -> run(inference, inferenceInputs, inferenceOutputs);
            case BATCHNORM_FORWARD_TRAINING -> {
                run(training, trainingInputs, trainingOutputs);
                Epilogue.invstdFromVariance(p, variance);
                Epilogue.updateRunningStats(p, variance);
            }
            case BATCHNORM_BACKWARD -> throw new IllegalArgumentException(
                    "ort peer: kernel " + kernel.id() + " is not supported (ONNX Runtime has no backward)");
        }
    }

    private static void run(OrtSession s, Map<String, OnnxTensor> inputs, Map<String, OnnxTensor> outputs) {
        // the result holds only our pinned outputs, which closing it leaves open
        try (OrtSession.Result r = s.run(inputs, outputs)) {
            assert r.size() == outputs.size();
        } catch (OrtException e) {
            throw new IllegalStateException("ort peer: run failed: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        closeResources();
    }

    private void closeResources() {
        // tensors before the sessions, then the scratch memory the tensors point into
        for (int i = resources.size() - 1; i >= 0; i--) {
            try {
                resources.get(i).close();
            } catch (Exception e) {
                throw new IllegalStateException("ort peer: close failed: " + e.getMessage(), e);
            }
        }
        resources.clear();
        scratchArena.close();
    }
}
