package io.github.vecnorm.bench;

import io.github.vecnorm.GroupNorm;
import io.github.vecnorm.InstanceNorm;
import io.github.vecnorm.LayerNorm;
import io.github.vecnorm.LpBatchNorm;
import io.github.vecnorm.Parallelism;
import io.github.vecnorm.RMSNorm;
import io.github.vecnorm.WeightNorm;
import io.github.vecnorm.internal.Kernels;
import java.util.concurrent.ExecutorService;

/**
 * vecnorm's family kernels through the public API, with the primitives this JVM was forced to (see
 * {@link Impls#prepareJvm}) and {@link FamilyProblem#threads} tasks on an executor owned here.
 */
final class VecnormFamily implements FamilyImpl {

    private final String name;
    private final FamilyProblem p;
    private final ExecutorService pool;
    private final Parallelism par;

    VecnormFamily(String name, FamilyProblem p) {
        String active = Kernels.primitives().name();
        if (!active.equals(name)) {
            throw new IllegalStateException(name + ": this JVM already runs vecnorm's " + active + " primitives "
                    + "(chosen once per JVM); pass -D" + Kernels.PROPERTY + "=" + name);
        }
        this.name = name;
        this.p = p;
        this.pool = p.threads > 1 ? Workers.pool(p.threads - 1, "vecnorm-bench") : null;
        this.par = pool == null ? Parallelism.serial() : Parallelism.of(pool, p.threads);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public void run(FamilyKernel kernel) {
        switch (kernel) {
            case LAYERNORM_FORWARD -> LayerNorm.forward(p.rows, p.x, p.y, p.gamma, p.beta, p.mean, p.rstd, p.eps, par);
            case LAYERNORM_BACKWARD -> LayerNorm.backward(p.rows, p.dy, p.x, p.gamma, p.mean, p.rstd,
                    p.dx, p.dgamma, p.dbeta, par);
            case RMSNORM_FORWARD -> RMSNorm.forward(p.rows, p.x, p.y, p.gamma, p.rstd, p.eps, par);
            case RMSNORM_BACKWARD -> RMSNorm.backward(p.rows, p.dy, p.x, p.gamma, p.rstd, p.dx, p.dgamma, par);
            case GROUPNORM_FORWARD -> GroupNorm.forward(p.shape, FamilyKernel.GROUPS, p.x, p.y, p.gamma, p.beta,
                    p.mean, p.rstd, p.eps, par);
            case GROUPNORM_BACKWARD -> GroupNorm.backward(p.shape, FamilyKernel.GROUPS, p.dy, p.x, p.gamma,
                    p.mean, p.rstd, p.dx, p.dgamma, p.dbeta, par);
            case INSTANCENORM_FORWARD -> InstanceNorm.forwardTraining(p.shape, p.x, p.y, p.gamma, p.beta,
                    p.mean, p.rstd, null, p.eps, par);
            case WEIGHTNORM_FORWARD -> WeightNorm.forward(p.dims, FamilyKernel.WEIGHTNORM_DIM, p.x, p.gamma, p.y,
                    p.rstd, par);
            case LPBATCHNORM_FORWARD_P1, LPBATCHNORM_FORWARD_PINF -> LpBatchNorm.forward(p.shape, kernel.p(), p.x, p.y,
                    p.gamma, p.beta, p.mean, p.rstd, p.eps, par);
            case INSTANCENORM_BACKWARD -> InstanceNorm.backward(p.shape, p.dy, p.x, p.gamma, p.mean, p.rstd,
                    p.dx, p.dgamma, p.dbeta, par);
            // gradW = dy, v = x, g = gamma, the saved norms in rstd; gradV into dx, gradG into dgamma
            case WEIGHTNORM_BACKWARD -> WeightNorm.backward(p.dims, FamilyKernel.WEIGHTNORM_DIM, p.dy, p.x, p.gamma,
                    p.rstd, p.dx, p.dgamma, par);
            case LPBATCHNORM_BACKWARD_P1, LPBATCHNORM_BACKWARD_PINF -> LpBatchNorm.backward(p.shape, kernel.p(), p.dy,
                    p.x, p.gamma, p.mean, p.rstd, p.dx, p.dgamma, p.dbeta, par);
        }
    }

    @Override
    public void close() {
        if (pool != null) pool.shutdownNow();
    }
}
