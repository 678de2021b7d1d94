package io.github.vecnorm.bench.peers;

import static org.bytedeco.dnnl.global.dnnl.*;

import io.github.vecnorm.bench.FamilyImpl;
import io.github.vecnorm.bench.FamilyKernel;
import io.github.vecnorm.bench.FamilyProblem;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
 * oneDNN (org.bytedeco:dnnl, C API) for the family on the CPU engine, zero copy on plain layouts (rows
 * {@code ab}, activations {@code abcd}), as {@link OneDnnImpl} does for BatchNorm:
 * <ul>
 *   <li>{@code layernorm.*}: the layer_normalization primitive (scale and shift), training forward writing
 *   the row means (into the problem's mean) and variances (a scratch of M floats), backward with
 *   {@code dnnl_backward} (dx, dgamma, dbeta).</li>
 *   <li>{@code rmsnorm.*}: the same primitive with {@code dnnl_rms_norm} (scale only; its "variance" is
 *   the mean square).</li>
 *   <li>{@code groupnorm.*}: the group_normalization primitive, 32 groups; {@code instancenorm.forward}:
 *   the same with C groups (one per channel).</li>
 * </ul>
 * oneDNN takes the variance, not rstd: backward first turns the problem's saved rstd into
 * {@code var = 1/rstd^2 - eps} (one value per row or group, next to nothing beside the tensor's work).
 * No WeightNorm or L_p BatchNorm primitive.
 *
 * <p><b>{@code rmsnorm.backward} is not RMSNorm's gradient</b>, so {@link io.github.vecnorm.bench.FamilyAgreement}
 * rejects it and the report lists it as skipped. With {@code dnnl_rms_norm} oneDNN (3.11.0 here, CPU
 * implementation {@code jit:uni}) takes the LayerNorm backward, puts 0 for the mean, and keeps the
 * LayerNorm term {@code -mean(g)}:
 * {@code dx = rstd (g - mean(g) - xhat mean(g xhat))}, with {@code g = gamma dy} and {@code xhat = x rstd}.
 * The gradient of {@code y = gamma x rstd} (PyTorch's, vecnorm's) has no {@code mean(g)} term:
 * {@code dx = rstd (g - xhat mean(g xhat))}. dgamma ({@code Σ dy xhat}) is the same in both. In oneDNN's
 * sources: {@code src/cpu/x64/jit_uni_layer_normalization.cpp}, {@code jit_diff_data_base_kernel_t}:
 * {@code compute_dd_scales} adds {@code dy * scale} to {@code dd_scale} whether or not {@code skip_mean_}
 * is set, and {@code compute_diff_src} computes {@code (g - (xhat dd_scale_x + dd_scale) / C) * inv_sqrtvar}.
 * {@code simple_layer_normalization_bwd_t::execute_backward} ({@code ds -= dd_gamma / C_f}),
 * {@code ref_layer_normalization_bwd_t::execute_backward} ({@code d_src -= dd_gamma / C}) and benchdnn's
 * reference ({@code tests/benchdnn/lnorm/ref_lnorm.cpp}, {@code compute_ref_bwd}) do the same, so oneDNN's
 * own tests expect it. The call here follows oneDNN's RMSNorm design (rfcs/20251004-rms-norm): no MEAN
 * argument (ignored under {@code dnnl_rms_norm}), the mean square in VARIANCE. No flag or argument
 * removes the term. Measured on the 64x4096 headline (an independent double-precision probe, not in the
 * repository): dx[0] is -0.511182 in double and by central difference, -0.511182 from vecnorm, and
 * -0.500630 from oneDNN. That is the exact value minus {@code rstd mean(g)} = 0.456384 * -0.023122 of
 * row 0. Across all of dx, oneDNN equals vecnorm minus {@code rstd mean(g)} of the row to 4.7e-7, and
 * dgamma agrees to 1e-5 of about 36 (relative 3e-7).
 *
 * <p>Threads: GNU OpenMP's count on the calling thread, set by the constructor and each {@link #run}
 * ({@link OpenMp}).
 */
public final class OneDnnFamily implements FamilyImpl {

    private final FamilyProblem p;
    private final int threads;
    private final Arena scratchArena = Arena.ofShared();
    /** Per-unit variance (mean square for RMSNorm): forward output, backward input. */
    private final MemorySegment variance;
    private final dnnl_engine engine = new dnnl_engine();
    private final dnnl_stream stream = new dnnl_stream();
    private final List<dnnl_memory_desc> descs = new ArrayList<>();
    private final List<dnnl_memory> memories = new ArrayList<>();
    private final List<dnnl_primitive_desc> pds = new ArrayList<>();
    private final List<dnnl_primitive> primitives = new ArrayList<>();
    private final dnnl_primitive primitive;
    private final dnnl_exec_arg_t args;
    private final int argCount;
    private final boolean backward;
    private boolean closed;

    public OneDnnFamily(FamilyProblem p) {
        if (!FamilyImpl.supports("onednn", p.kernel)) throw new UnsupportedOperationException("onednn has no " + p.kernel.id());
        this.p = p;
        this.threads = p.threads;
        this.variance = scratchArena.allocate(p.units * Float.BYTES, 64);
        this.backward = p.kernel.trafficFactor() == 3;
        try {
            Loader.load(dnnl.class); // brings libgomp into the process, for OpenMp to find
            applyThreads();
            check(dnnl_engine_create(engine, dnnl_cpu, 0), "engine_create");
            check(dnnl_stream_create(stream, engine, dnnl_stream_default_flags), "stream_create");
            float eps = (float) p.eps;
            FamilyKernel k = p.kernel;
            boolean rows = k.group().equals("LayerNorm") || k.group().equals("RMSNorm");
            boolean rms = k.group().equals("RMSNorm");
            dnnl_memory_desc act = rows ? desc(new long[] {p.rows.m(), p.rows.d()}, dnnl_ab)
                    : desc(new long[] {p.shape.n(), p.shape.c(), p.shape.s()}, dnnl_abc);
            dnnl_memory_desc par = desc(new long[] {p.params}, dnnl_a);
            long groups = k == FamilyKernel.INSTANCENORM_FORWARD ? p.shape.c() : FamilyKernel.GROUPS;
            dnnl_memory_desc stat = rows ? desc(new long[] {p.rows.m()}, dnnl_a) : desc(new long[] {p.shape.n(), groups}, dnnl_ab);
            dnnl_memory x = memory(act, p.x), y = memory(act, p.y), dy = memory(act, p.dy), dx = memory(act, p.dx);
            dnnl_memory gamma = memory(par, p.gamma), beta = memory(par, p.beta);
            dnnl_memory dgamma = memory(par, p.dgamma), dbeta = memory(par, p.dbeta);
            dnnl_memory mean = memory(stat, p.mean), var = memory(stat, variance);
            int flags = rms ? dnnl_use_scale | dnnl_rms_norm : dnnl_use_scale | dnnl_use_shift;

            dnnl_primitive_desc fwd = pd();
            if (rows) {
                check(dnnl_layer_normalization_forward_primitive_desc_create(fwd, engine, dnnl_forward_training,
                        act, act, stat, eps, flags, null), "layer_normalization forward primitive_desc_create");
            } else {
                check(dnnl_group_normalization_forward_primitive_desc_create(fwd, engine, dnnl_forward_training,
                        act, act, groups, eps, flags, null), "group_normalization forward primitive_desc_create");
            }
            if (!backward) {
                primitive = primitive(fwd);
                if (rms) {
                    args = args(new int[] {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCALE, DNNL_ARG_VARIANCE}, x, y, gamma, var);
                } else {
                    args = args(new int[] {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_SCALE, DNNL_ARG_SHIFT, DNNL_ARG_MEAN,
                            DNNL_ARG_VARIANCE}, x, y, gamma, beta, mean, var);
                }
            } else {
                dnnl_primitive_desc bwd = pd();
                if (rows) {
                    check(dnnl_layer_normalization_backward_primitive_desc_create(bwd, engine, dnnl_backward, act, act, act,
                            stat, eps, flags, fwd, null), "layer_normalization backward primitive_desc_create");
                } else {
                    check(dnnl_group_normalization_backward_primitive_desc_create(bwd, engine, dnnl_backward, act, act, act,
                            groups, eps, flags, fwd, null), "group_normalization backward primitive_desc_create");
                }
                primitive = primitive(bwd);
                if (rms) {
                    args = args(new int[] {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE,
                            DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE}, x, dy, var, gamma, dx, dgamma);
                } else {
                    args = args(new int[] {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE,
                            DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT}, x, dy, mean, var, gamma, dx, dgamma, dbeta);
                }
            }
            argCount = rms ? (backward ? 6 : 4) : (backward ? 8 : 6);
        } catch (RuntimeException | Error e) {
            close();
            throw e;
        }
    }

    private void applyThreads() {
        if (!OpenMp.ensureThreads(threads)) {
            throw new IllegalStateException("onednn peer: cannot set " + threads + " OpenMP threads: " + OpenMp.failure());
        }
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
    public void run(FamilyKernel kernel) {
        if (closed) throw new IllegalStateException("onednn peer: already closed");
        applyThreads();
        if (backward) {
            for (long u = 0; u < p.units; u++) {
                double r = p.rstd.getAtIndex(ValueLayout.JAVA_FLOAT, u);
                variance.setAtIndex(ValueLayout.JAVA_FLOAT, u, (float) (1 / (r * r) - p.eps));
            }
        }
        check(dnnl_primitive_execute(primitive, stream, argCount, args), "primitive_execute");
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
}
