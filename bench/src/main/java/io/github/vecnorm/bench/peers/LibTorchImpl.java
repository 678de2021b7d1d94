package io.github.vecnorm.bench.peers;

import io.github.vecnorm.bench.Kernel;
import io.github.vecnorm.bench.Problem;
import java.lang.foreign.MemorySegment;
import org.bytedeco.javacpp.BoolPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.T_TensorTensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * libtorch (ATen CPU) through org.bytedeco:pytorch, zero copy: every tensor is a {@code from_blob}
 * view of one of the problem's segments.
 *
 * <ul>
 *   <li>Training forward: {@code native_batch_norm_out(y, saveMean, saveInvstd, x, gamma, beta,
 *   runningMean, runningVar, train=true, momentum, eps)}. On CPU this is ATen's real out variant
 *   ({@code batch_norm_cpu_out}): it writes y, saveMean, saveInvstd and updates the running stats in
 *   place, in our memory.</li>
 *   <li>Inference: the same call with {@code train=false}; it writes y only (ATen leaves the save
 *   tensors untouched in eval mode).</li>
 *   <li>Backward: the functional {@code native_batch_norm_backward(dy, x, gamma, runningMean,
 *   runningVar, saveMean, saveInvstd, train=true, eps, mask={true,true,true})}, the call autograd
 *   makes. ATen allocates dx, dgamma and dbeta; {@link #run} drops them (freed by a
 *   {@link PointerScope}), {@link #publishOutputs} copies them into the problem's segments. The
 *   {@code _out} variant exists but is generated as "compute, then copy", so it would time a copy
 *   that ATen itself never makes.</li>
 * </ul>
 *
 * <p>Threads: {@code at::set_num_threads(p.threads)}. libtorch's OpenMP thread count belongs to the
 * calling thread, so {@link #run} re-applies it when the thread that calls it sees another count.
 */
public final class LibTorchImpl implements PeerImpl {

    private final Problem p;
    private final int threads;
    private final Tensor x, y, dy, dx, gamma, beta, runningMean, runningVar, saveMean, saveInvstd, dgamma, dbeta;
    private final TensorOptional gammaOpt, betaOpt, runningMeanOpt, runningVarOpt, saveMeanOpt, saveInvstdOpt;
    private final BoolPointer allGrads;
    private boolean closed;

    public LibTorchImpl(Problem p) {
        this.p = p;
        this.threads = p.threads;
        torch.set_num_threads(threads);
        long[] act = p.dims.clone();
        long[] chan = {p.shape.c()};
        x = wrap(p.x, act);
        y = wrap(p.y, act);
        dy = wrap(p.dy, act);
        dx = wrap(p.dx, act);
        gamma = wrap(p.gamma, chan);
        beta = wrap(p.beta, chan);
        runningMean = wrap(p.runningMean, chan);
        runningVar = wrap(p.runningVar, chan);
        saveMean = wrap(p.saveMean, chan);
        saveInvstd = wrap(p.saveInvstd, chan);
        dgamma = wrap(p.dgamma, chan);
        dbeta = wrap(p.dbeta, chan);
        gammaOpt = new TensorOptional(gamma);
        betaOpt = new TensorOptional(beta);
        runningMeanOpt = new TensorOptional(runningMean);
        runningVarOpt = new TensorOptional(runningVar);
        saveMeanOpt = new TensorOptional(saveMean);
        saveInvstdOpt = new TensorOptional(saveInvstd);
        allGrads = new BoolPointer(3);
        for (int i = 0; i < 3; i++) allGrads.put(i, true);
    }

    /** A float32 contiguous tensor over the segment's memory; the tensor does not own it. */
    private static Tensor wrap(MemorySegment segment, long[] sizes) {
        return torch.from_blob(new SegmentPointer(segment), sizes, new TensorOptions(torch.ScalarType.Float));
    }

    @Override
    public String name() {
        return "libtorch";
    }

    @Override
    public boolean supports(Kernel kernel) {
        return switch (kernel) {
            case BATCHNORM_FORWARD_TRAINING, BATCHNORM_FORWARD_INFERENCE, BATCHNORM_BACKWARD -> true;
        };
    }

    @Override
    @SuppressWarnings("try") // the scope is used for its extent only
    public void run(Kernel kernel) {
        ensureOpen();
        if (torch.get_num_threads() != threads) torch.set_num_threads(threads);
        // every native object the call returns (the result tuple, its tensor handles) dies here
        try (PointerScope scope = new PointerScope()) {
            switch (kernel) {
                case BATCHNORM_FORWARD_TRAINING -> torch.native_batch_norm_out(y, saveMean, saveInvstd, x,
                        gammaOpt, betaOpt, runningMeanOpt, runningVarOpt, true, p.momentum, p.eps);
                case BATCHNORM_FORWARD_INFERENCE -> torch.native_batch_norm_out(y, saveMean, saveInvstd, x,
                        gammaOpt, betaOpt, runningMeanOpt, runningVarOpt, false, p.momentum, p.eps);
                case BATCHNORM_BACKWARD -> backward();
            }
        }
    }

    private T_TensorTensorTensor_T backward() {
        return torch.native_batch_norm_backward(dy, x, gammaOpt, runningMeanOpt, runningVarOpt,
                saveMeanOpt, saveInvstdOpt, true, p.eps, allGrads);
    }

    /** Forward kernels already wrote into the problem; backward's fresh tensors are copied in. */
    @Override
    @SuppressWarnings("try")
    public void publishOutputs(Kernel kernel) {
        if (kernel != Kernel.BATCHNORM_BACKWARD) {
            run(kernel);
            return;
        }
        ensureOpen();
        if (torch.get_num_threads() != threads) torch.set_num_threads(threads);
        try (PointerScope scope = new PointerScope()) {
            T_TensorTensorTensor_T grads = backward();
            dx.copy_(grads.get0());
            dgamma.copy_(grads.get1());
            dbeta.copy_(grads.get2());
        }
    }

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("libtorch peer: already closed");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        for (Pointer ptr : new Pointer[] {gammaOpt, betaOpt, runningMeanOpt, runningVarOpt, saveMeanOpt, saveInvstdOpt,
                x, y, dy, dx, gamma, beta, runningMean, runningVar, saveMean, saveInvstd, dgamma, dbeta, allGrads}) {
            ptr.close();
        }
    }
}
