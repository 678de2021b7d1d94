package io.github.vecnorm.bench.peers;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.vecnorm.bench.FamilyImpl;
import io.github.vecnorm.bench.FamilyKernel;
import io.github.vecnorm.bench.FamilyProblem;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * ONNX Runtime (CPU execution provider) running one-node models ({@link OnnxModel}) of the family's
 * forward kernels, zero copy both ways as {@link OrtImpl} (inputs over the problem's segments, pinned
 * outputs too):
 * <ul>
 *   <li>{@code layernorm.forward}: LayerNormalization (opset 17, axis -1) -&gt; Y, Mean, InvStdDev (the
 *   statistics vecnorm saves too, M x 1).</li>
 *   <li>{@code rmsnorm.forward}: RMSNormalization (opset 23, axis -1) -&gt; Y.</li>
 *   <li>{@code groupnorm.forward}: GroupNormalization (opset 21: scale and bias per channel, 32 groups) -&gt; Y.</li>
 *   <li>{@code instancenorm.forward}: InstanceNormalization (opset 6) -&gt; Y.</li>
 * </ul>
 * No backward (ONNX Runtime has none outside its training build), no WeightNorm or L_p BatchNorm op.
 *
 * <p>Threads: {@code setIntraOpNumThreads(p.threads)}, sequential execution, one inter-op thread.
 */
public final class OrtFamily implements FamilyImpl {

    private final OrtEnvironment env;
    private final List<AutoCloseable> resources = new ArrayList<>();
    private final OrtSession session;
    private final Map<String, OnnxTensor> inputs = new LinkedHashMap<>(), outputs = new LinkedHashMap<>();
    private final int threads;
    private boolean closed;

    public OrtFamily(FamilyProblem p) {
        if (!FamilyImpl.supports("ort", p.kernel)) throw new UnsupportedOperationException("ort has no " + p.kernel.id());
        this.threads = p.threads;
        env = OrtEnvironment.getEnvironment();
        long[] act = p.dims.clone();
        long[] par = {p.params};
        try {
            List<OnnxModel.Value> in = List.of(new OnnxModel.Value("X", act), new OnnxModel.Value("scale", par),
                    new OnnxModel.Value("B", par));
            List<OnnxModel.Value> inNoBias = in.subList(0, 2);
            OnnxModel.Value y = new OnnxModel.Value("Y", act);
            byte[] model = switch (p.kernel) {
                case LAYERNORM_FORWARD -> OnnxModel.singleNode("LayerNormalization", 17, in,
                        List.of(y, new OnnxModel.Value("Mean", new long[] {p.units, 1}),
                                new OnnxModel.Value("InvStdDev", new long[] {p.units, 1})),
                        Map.of("axis", -1L, "epsilon", (float) p.eps));
                case RMSNORM_FORWARD -> OnnxModel.singleNode("RMSNormalization", 23, inNoBias, List.of(y),
                        Map.of("axis", -1L, "epsilon", (float) p.eps));
                case GROUPNORM_FORWARD -> OnnxModel.singleNode("GroupNormalization", 21, in, List.of(y),
                        Map.of("num_groups", FamilyKernel.GROUPS, "epsilon", (float) p.eps));
                case INSTANCENORM_FORWARD -> OnnxModel.singleNode("InstanceNormalization", 6, in, List.of(y),
                        Map.of("epsilon", (float) p.eps));
                default -> throw new UnsupportedOperationException("ort has no " + p.kernel.id());
            };
            session = session(model);
            inputs.put("X", tensor(p.x, act));
            inputs.put("scale", tensor(p.gamma, par));
            if (p.kernel != FamilyKernel.RMSNORM_FORWARD) inputs.put("B", tensor(p.beta, par));
            outputs.put("Y", tensor(p.y, act));
            if (p.kernel == FamilyKernel.LAYERNORM_FORWARD) {
                outputs.put("Mean", tensor(p.mean, new long[] {p.units, 1}));
                outputs.put("InvStdDev", tensor(p.rstd, new long[] {p.units, 1}));
            }
        } catch (OrtException | RuntimeException e) {
            closeResources();
            throw new IllegalStateException("ort peer: cannot build the " + p.kernel.id() + " session: " + e.getMessage(), e);
        }
    }

    private OrtSession session(byte[] model) throws OrtException {
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(threads);
            options.setInterOpNumThreads(1);
            options.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            OrtSession s = env.createSession(model, options);
            resources.add(s);
            return s;
        }
    }

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
    public void run(FamilyKernel kernel) {
        if (closed) throw new IllegalStateException("ort peer: already closed");
        try (OrtSession.Result r = session.run(inputs, outputs)) {
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
        for (int i = resources.size() - 1; i >= 0; i--) {
            try {
                resources.get(i).close();
            } catch (Exception e) {
                throw new IllegalStateException("ort peer: close failed: " + e.getMessage(), e);
            }
        }
        resources.clear();
    }
}
