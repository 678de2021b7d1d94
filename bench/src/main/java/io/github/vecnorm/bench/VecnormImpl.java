package io.github.vecnorm.bench;

import io.github.vecnorm.BatchNorm;
import io.github.vecnorm.Parallelism;
import io.github.vecnorm.RunningStats;
import io.github.vecnorm.internal.Kernels;
import java.util.concurrent.ExecutorService;

/**
 * vecnorm through its public API, with the primitives this JVM was forced to (scalar or vector, see
 * {@link Impls#prepareJvm}) and {@link Problem#threads} tasks on an executor owned here.
 */
final class VecnormImpl implements Impl {

    private final String name;
    private final Problem p;
    private final ExecutorService pool;
    private final Parallelism par;
    private final RunningStats running;

    VecnormImpl(String name, Problem p) {
        String active = Kernels.primitives().name();
        if (!active.equals(name)) {
            throw new IllegalStateException(name + ": this JVM already runs vecnorm's " + active + " primitives "
                    + "(chosen once per JVM); run each impl in its own fork (JMH -f 1 or more) or pass -D"
                    + Kernels.PROPERTY + "=" + name);
        }
        this.name = name;
        this.p = p;
        this.pool = p.threads > 1 ? Workers.pool(p.threads - 1, "vecnorm-bench") : null;
        this.par = pool == null ? Parallelism.serial() : Parallelism.of(pool, p.threads);
        this.running = RunningStats.withMomentum(p.runningMean, p.runningVar, p.momentum);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public boolean supports(Kernel kernel) {
        return switch (kernel) {
            case BATCHNORM_FORWARD_TRAINING, BATCHNORM_FORWARD_INFERENCE, BATCHNORM_BACKWARD -> true;
            default -> false; // kernels added to the enum later are wired here when vecnorm has them
        };
    }

    @Override
    public void run(Kernel kernel) {
        switch (kernel) {
            case BATCHNORM_FORWARD_TRAINING -> BatchNorm.forwardTraining(p.shape, p.x, p.y, p.gamma, p.beta,
                    p.saveMean, p.saveInvstd, running, p.eps, par);
            case BATCHNORM_FORWARD_INFERENCE -> BatchNorm.forwardInference(p.shape, p.x, p.y, p.gamma, p.beta,
                    p.runningMean, p.runningVar, p.eps, par);
            case BATCHNORM_BACKWARD -> BatchNorm.backward(p.shape, p.dy, p.x, p.gamma, p.saveMean, p.saveInvstd,
                    p.dx, p.dgamma, p.dbeta, par);
            default -> throw new UnsupportedOperationException(name + " has no " + kernel.id() + " here yet");
        }
    }

    @Override
    public void close() {
        if (pool != null) pool.shutdownNow();
    }
}
