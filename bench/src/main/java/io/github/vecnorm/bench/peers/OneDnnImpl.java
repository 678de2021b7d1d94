package io.github.vecnorm.bench.peers;

import static org.bytedeco.dnnl.global.dnnl.*;

import io.github.vecnorm.bench.Kernel;
import io.github.vecnorm.bench.Problem;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.dnnl.dnnl_engine;
import org.bytedeco.dnnl.dnnl_exec_arg_t;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.bytedeco.dnnl.dnnl_stream;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.javacpp.Loader;

/**
 * oneDNN (org.bytedeco:dnnl, C API) batch normalization on the CPU engine, zero copy: every memory
 * object wraps one of the problem's segments (plain layouts: nchw-like for activations, a vector of
 * C for the per-channel tensors, separate scale and shift). On plain NCHW oneDNN 3.11 picks its
 * generic {@code ncsp_bnorm} implementation (ONEDNN_VERBOSE shows it); its JIT kernels want blocked
 * (nChw16c) or channels-last data, which would take a reorder, i.e. a copy, of our NCHW tensors.
 *
 * <ul>
 *   <li>Training forward: prop kind {@code forward_training}, flags {@code use_scale | use_shift}.
 *   oneDNN writes y, the batch mean (straight into saveMean) and the <em>biased</em> batch variance
 *   (into a scratch vector of C floats). oneDNN keeps no running statistics, so {@link #run} then
 *   does the per-channel rest in Java ({@link Epilogue}, C values): saveInvstd = 1/sqrt(var + eps)
 *   and the running statistics updated as ATen does (momentum, unbiased variance).</li>
 *   <li>Inference: {@code forward_inference} with {@code use_global_stats | use_scale | use_shift},
 *   reading runningMean and runningVar in place.</li>
 *   <li>Backward: prop kind {@code backward} (dx, dgamma, dbeta), the training forward as hint.
 *   oneDNN takes the variance, not its inverse root, so {@link #run} first turns saveInvstd into
 *   var = 1/invstd^2 - eps over the C channels (in the scratch vector).</li>
 * </ul>
 *
 * <p>Threads: these natives use GNU OpenMP, whose thread count oneDNN reads on the calling thread.
 * The constructor and {@link #run} set it to {@code p.threads} with {@code omp_set_num_threads} on
 * the calling thread (see {@link OpenMp}); no {@code OMP_NUM_THREADS} is needed. If libgomp cannot be
 * reached through the FFM API, the constructor fails rather than run at an unknown count.
 */
public final class OneDnnImpl implements PeerImpl {

    private final Problem p;
    private final int threads;
    private final long channels;
    private final Arena scratchArena = Arena.ofShared();
    /** oneDNN's biased batch variance (training forward output, backward input), C floats. */
    private final MemorySegment variance;

    private final dnnl_engine engine = new dnnl_engine();
    private final dnnl_stream stream = new dnnl_stream();
    private final List<dnnl_memory_desc> descs = new ArrayList<>();
    private final List<dnnl_memory> memories = new ArrayList<>();
    private final List<dnnl_primitive_desc> pds = new ArrayList<>();
    private final List<dnnl_primitive> primitives = new ArrayList<>();

    private final dnnl_primitive training, inference, backward;
    private final dnnl_exec_arg_t trainingArgs, inferenceArgs, backwardArgs;
    private final int trainingArgCount, inferenceArgCount, backwardArgCount;
    private boolean closed;

    public OneDnnImpl(Problem p) {
        this.p = p;
        this.threads = p.threads;
        this.channels = p.shape.c();
        this.variance = scratchArena.allocate(channels * Float.BYTES, 64);
        try {
            Loader.load(dnnl.class); // brings libgomp into the process, for OpenMp to find
            // primitive creation sizes its work split by the thread count: set it first
            applyThreads();
            check(dnnl_engine_create(engine, dnnl_cpu, 0), "engine_create");
            check(dnnl_stream_create(stream, engine, dnnl_stream_default_flags), "stream_create");

            dnnl_memory_desc act = activationDesc(p.dims);
            dnnl_memory_desc chan = desc(new long[] {channels}, dnnl_a);
            float eps = (float) p.eps;

            dnnl_memory x = memory(act, p.x), y = memory(act, p.y), dy = memory(act, p.dy), dx = memory(act, p.dx);
            dnnl_memory gamma = memory(chan, p.gamma), beta = memory(chan, p.beta);
            dnnl_memory runningMean = memory(chan, p.runningMean), runningVar = memory(chan, p.runningVar);
            dnnl_memory saveMean = memory(chan, p.saveMean), var = memory(chan, variance);
            dnnl_memory dgamma = memory(chan, p.dgamma), dbeta = memory(chan, p.dbeta);

            int scaleShift = dnnl_use_scale | dnnl_use_shift;
            dnnl_primitive_desc trainingPd = pd();
            check(dnnl_batch_normalization_forward_primitive_desc_create(trainingPd, engine, dnnl_forward_training,
                    act, act, eps, scaleShift, null), "training forward primitive_desc_create");
            training = primitive(trainingPd);
            trainingArgs = args(new int[] {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT,
                    DNNL_ARG_MEAN, DNNL_ARG_VARIANCE}, x, y, gamma, beta, saveMean, var);
            trainingArgCount = 6;

            dnnl_primitive_desc inferencePd = pd();
            check(dnnl_batch_normalization_forward_primitive_desc_create(inferencePd, engine, dnnl_forward_inference,
                    act, act, eps, scaleShift | dnnl_use_global_stats, null), "inference primitive_desc_create");
            inference = primitive(inferencePd);
            inferenceArgs = args(new int[] {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT,
                    DNNL_ARG_MEAN, DNNL_ARG_VARIANCE}, x, y, gamma, beta, runningMean, runningVar);
            inferenceArgCount = 6;

            dnnl_primitive_desc backwardPd = pd();
            check(dnnl_batch_normalization_backward_primitive_desc_create(backwardPd, engine, dnnl_backward,
                    act, act, act, eps, scaleShift, trainingPd, null), "backward primitive_desc_create");
            backward = primitive(backwardPd);
            backwardArgs = args(new int[] {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE,
                    DNNL_ARG_SCALE, DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT},
                    x, dy, saveMean, var, gamma, dx, dgamma, dbeta);
            backwardArgCount = 8;
        } catch (RuntimeException | Error e) {
            close();
            throw e;
        }
    }

    private void applyThreads() {
        if (!OpenMp.ensureThreads(threads)) {
            throw new IllegalStateException("onednn peer: cannot set " + threads + " OpenMP threads: "
                    + OpenMp.failure());
        }
    }

    /** The activation layout: the problem's own dims when oneDNN has a plain tag for them, else (N, C, S). */
    private dnnl_memory_desc activationDesc(long[] dims) {
        return switch (dims.length) {
            case 2 -> desc(dims, dnnl_ab);
            case 3 -> desc(dims, dnnl_abc);
            case 4 -> desc(dims, dnnl_abcd);
            case 5 -> desc(dims, dnnl_abcde);
            default -> desc(new long[] {p.shape.n(), p.shape.c(), p.shape.s()}, dnnl_abc);
        };
    }

    private dnnl_memory_desc desc(long[] dims, int tag) {
        dnnl_memory_desc md = new dnnl_memory_desc();
        check(dnnl_memory_desc_create_with_tag(md, dims.length, dims, dnnl_f32, tag), "memory_desc_create_with_tag");
        descs.add(md);
        return md;
    }

    private dnnl_memory memory(dnnl_memory_desc md, MemorySegment segment) {
        dnnl_memory mem = new dnnl_memory();
        check(dnnl_memory_create(mem, md, engine, new SegmentPointer(segment)), "memory_create");
        memories.add(mem);
        return mem;
    }

    private dnnl_primitive_desc pd() {
        dnnl_primitive_desc pd = new dnnl_primitive_desc();
        pds.add(pd);
        return pd;
    }

    private dnnl_primitive primitive(dnnl_primitive_desc pd) {
        dnnl_primitive prim = new dnnl_primitive();
        check(dnnl_primitive_create(prim, pd), "primitive_create");
        primitives.add(prim);
        return prim;
    }

    private static dnnl_exec_arg_t args(int[] kinds, dnnl_memory... mems) {
        dnnl_exec_arg_t args = new dnnl_exec_arg_t(kinds.length);
        for (int i = 0; i < kinds.length; i++) args.position(i).arg(kinds[i]).memory(mems[i]);
        return args.position(0);
    }

    private static void check(int status, String what) {
        if (status != dnnl_success) throw new IllegalStateException("onednn peer: " + what + " failed, status " + status);
    }

    @Override
    public String name() {
        return "onednn";
    }

    @Override
    public boolean supports(Kernel kernel) {
        return switch (kernel) {
            case BATCHNORM_FORWARD_TRAINING, BATCHNORM_FORWARD_INFERENCE, BATCHNORM_BACKWARD -> true;
        };
    }

    @Override
    public void run(Kernel kernel) {
        if (closed) throw new IllegalStateException("onednn peer: already closed");
        applyThreads();
        switch (kernel) {
            case BATCHNORM_FORWARD_TRAINING -> {
                execute(training, trainingArgCount, trainingArgs);
                Epilogue.invstdFromVariance(p, variance);
                Epilogue.updateRunningStats(p, variance);
            }
            case BATCHNORM_FORWARD_INFERENCE -> execute(inference, inferenceArgCount, inferenceArgs);
            case BATCHNORM_BACKWARD -> {
                Epilogue.varianceFromInvstd(p, variance);
                execute(backward, backwardArgCount, backwardArgs);
            }
        }
    }

    private void execute(dnnl_primitive prim, int count, dnnl_exec_arg_t args) {
        check(dnnl_primitive_execute(prim, stream, count, args), "primitive_execute");
        check(dnnl_stream_wait(stream), "stream_wait");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        for (dnnl_primitive prim : primitives) dnnl_primitive_destroy(prim);
        for (dnnl_primitive_desc pd : pds) if (!pd.isNull()) dnnl_primitive_desc_destroy(pd);
        for (dnnl_memory mem : memories) dnnl_memory_destroy(mem);
        for (dnnl_memory_desc md : descs) dnnl_memory_desc_destroy(md);
        if (!stream.isNull()) dnnl_stream_destroy(stream);
        if (!engine.isNull()) dnnl_engine_destroy(engine);
        scratchArena.close();
    }

    /** oneDNN's version and CPU ISA, for the report's environment section. */
    public static String describe() {
        var v = dnnl.dnnl_version();
        return "oneDNN " + v.major() + "." + v.minor() + "." + v.patch() + " isa=" + dnnl_get_effective_cpu_isa()
                + " runtime=" + (DNNL_CPU_THREADING_RUNTIME == DNNL_RUNTIME_OMP ? "omp" : DNNL_CPU_THREADING_RUNTIME);
    }
}
