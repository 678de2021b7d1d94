package io.github.vecnorm.bench.peers;

import io.github.vecnorm.bench.FamilyImpl;
import io.github.vecnorm.bench.FamilyKernel;
import io.github.vecnorm.bench.FamilyProblem;
import java.lang.foreign.MemorySegment;
import org.bytedeco.javacpp.BoolPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.T_TensorTensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * libtorch (ATen CPU) for the family's kernels, through org.bytedeco:pytorch: the inputs are
 * {@code from_blob} views of the problem's segments; ATen's functional ops allocate their outputs,
 * which {@link #run} drops (freed by a {@link PointerScope}, as autograd would keep them) and
 * {@link #publishOutputs} copies into the problem for the check.
 *
 * <ul>
 *   <li>{@code layernorm.forward}: {@code native_layer_norm(x, [D], gamma, beta, eps)};
 *   {@code layernorm.backward}: {@code native_layer_norm_backward(dy, x, [D], mean, rstd, gamma, beta,
 *   {true, true, true})} with vecnorm's saved mean and rstd (M x 1 views).</li>
 *   <li>{@code rmsnorm.forward}: {@code rms_norm(x, [D], gamma, eps)} (the ATen op
 *   {@code torch.nn.functional.rms_norm} calls). The binding has no RMSNorm backward.</li>
 *   <li>{@code groupnorm.forward}/{@code backward}: {@code native_group_norm(x, gamma, beta, N, C, HxW, 32, eps)} and
 *   {@code native_group_norm_backward(dy, x, mean, rstd, gamma, N, C, HxW, 32, {true, true, true})}.</li>
 *   <li>{@code instancenorm.forward}: {@code instance_norm(x, gamma, beta, -, -, use_input_stats=true, 0.1, eps,
 *   false)} (ATen's composite: batch_norm over a (1, N*C, S) view).</li>
 * </ul>
 * WeightNorm ({@code _weight_norm} is not in the binding) and L_p BatchNorm (no ATen op) are not offered.
 *
 * <p>Threads: {@code at::set_num_threads(p.threads)}, re-applied when the calling thread sees another count.
 */
public final class LibTorchFamily implements FamilyImpl {

    private final FamilyProblem p;
    private final int threads;
    private final Tensor x, y, dy, dx, gamma, beta, dgamma, dbeta, mean, rstd;
    private final TensorOptional gammaOpt, betaOpt, none;
    private final DoubleOptional epsOpt;
    private final BoolPointer allGrads;
    private final long[] normalized;
    private boolean closed;

    public LibTorchFamily(FamilyProblem p) {
        this.p = p;
        this.threads = p.threads;
        torch.set_num_threads(threads);
        long[] act = p.dims.clone();
        long[] par = {p.params};
        // statistics: (M, 1) for LayerNorm as ATen returns them, (N, G) for GroupNorm; only their numel matters
        long[] stats = p.kernel.group().equals("GroupNorm") ? new long[] {p.dims[0], FamilyKernel.GROUPS}
                : new long[] {p.units, 1};
        x = wrap(p.x, act);
        y = wrap(p.y, act);
        dy = wrap(p.dy, act);
        dx = wrap(p.dx, act);
        gamma = wrap(p.gamma, par);
        beta = wrap(p.beta, par);
        dgamma = wrap(p.dgamma, par);
        dbeta = wrap(p.dbeta, par);
        mean = wrap(p.mean, stats);
        rstd = wrap(p.rstd, stats);
        gammaOpt = new TensorOptional(gamma);
        betaOpt = new TensorOptional(beta);
        none = new TensorOptional();
        epsOpt = new DoubleOptional(p.eps);
        allGrads = new BoolPointer(3);
        for (int i = 0; i < 3; i++) allGrads.put(i, true);
        normalized = new long[] {p.dims[p.dims.length - 1]};
        if (!FamilyImpl.supports("libtorch", p.kernel)) {
            throw new UnsupportedOperationException("libtorch has no " + p.kernel.id());
        }
    }

    private static Tensor wrap(MemorySegment segment, long[] sizes) {
        return torch.from_blob(new SegmentPointer(segment), sizes, new TensorOptions(torch.ScalarType.Float));
    }

    @Override
    public String name() {
        return "libtorch";
    }

    @Override
    @SuppressWarnings("try") // the scope is used for its extent only
    public void run(FamilyKernel kernel) {
        prepare();
        try (PointerScope scope = new PointerScope()) {
            call(kernel);
        }
    }

    @Override
    @SuppressWarnings("try")
    public void publishOutputs(FamilyKernel kernel) {
        prepare();
        try (PointerScope scope = new PointerScope()) {
            Object out = call(kernel);
            if (out instanceof Tensor t) {
                y.copy_(t);
            } else if (out instanceof T_TensorTensorTensor_T t3) {
                if (kernel.trafficFactor() == 3) {
                    dx.copy_(t3.get0());
                    dgamma.copy_(t3.get1());
                    dbeta.copy_(t3.get2());
                } else {
                    y.copy_(t3.get0());
                }
            }
        }
    }

    private Object call(FamilyKernel kernel) {
        long n = p.dims[0];
        return switch (kernel) {
            case LAYERNORM_FORWARD -> torch.native_layer_norm(x, normalized, gammaOpt, betaOpt, p.eps);
            case LAYERNORM_BACKWARD -> torch.native_layer_norm_backward(dy, x, normalized, mean, rstd, gammaOpt, betaOpt,
                    allGrads);
            case RMSNORM_FORWARD -> torch.rms_norm(x, normalized, gammaOpt, epsOpt);
            case GROUPNORM_FORWARD -> torch.native_group_norm(x, gammaOpt, betaOpt, n, p.shape.c(), p.shape.s(),
                    FamilyKernel.GROUPS, p.eps);
            case GROUPNORM_BACKWARD -> torch.native_group_norm_backward(dy, x, mean, rstd, gammaOpt, n, p.shape.c(),
                    p.shape.s(), FamilyKernel.GROUPS, allGrads);
            case INSTANCENORM_FORWARD -> torch.instance_norm(x, gammaOpt, betaOpt, none, none, true, 0.1, p.eps, false);
            default -> throw new UnsupportedOperationException("libtorch has no " + kernel.id());
        };
    }

    private void prepare() {
        if (closed) throw new IllegalStateException("libtorch peer: already closed");
        if (torch.get_num_threads() != threads) torch.set_num_threads(threads);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        for (Pointer ptr : new Pointer[] {gammaOpt, betaOpt, none, epsOpt, x, y, dy, dx, gamma, beta, dgamma, dbeta,
                mean, rstd, allGrads}) {
            ptr.close();
        }
    }
}
