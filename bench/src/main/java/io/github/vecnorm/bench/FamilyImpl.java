package io.github.vecnorm.bench;

import java.lang.reflect.InvocationTargetException;
import java.util.List;

/**
 * One implementation of the family's kernels (vecnorm scalar or vector, a native peer) bound to one
 * {@link FamilyProblem}: reads its inputs, writes its outputs (see {@link FamilyProblem} for which).
 */
public interface FamilyImpl extends AutoCloseable {

    /** Every family implementation, in report order. */
    List<String> ALL = List.of(Impls.SCALAR, Impls.VECTOR, "libtorch", "onednn", "ort");

    /** The report's impl name. */
    String name();

    /** Runs the kernel once on the problem (timed; a peer may drop fresh outputs). */
    void run(FamilyKernel kernel);

    /** Runs the kernel once and leaves every output in the problem's segments (untimed, for the check). */
    default void publishOutputs(FamilyKernel kernel) {
        run(kernel);
    }

    @Override
    default void close() {
    }

    /**
     * Whether impl has the kernel, known without loading anything native (so the report plans without
     * starting a peer).
     */
    static boolean supports(String impl, FamilyKernel k) {
        return switch (impl) {
            case Impls.SCALAR, Impls.VECTOR -> true;
            // bytedeco's pytorch has no _weight_norm, no RMSNorm backward, and no L_p BatchNorm
            case "libtorch" -> switch (k) {
                case LAYERNORM_FORWARD, LAYERNORM_BACKWARD, RMSNORM_FORWARD, GROUPNORM_FORWARD, GROUPNORM_BACKWARD,
                     INSTANCENORM_FORWARD -> true;
                default -> false;
            };
            // layer_normalization (also RMS) and group_normalization primitives; no WeightNorm or L_p
            case "onednn" -> switch (k) {
                case LAYERNORM_FORWARD, LAYERNORM_BACKWARD, RMSNORM_FORWARD, RMSNORM_BACKWARD, GROUPNORM_FORWARD,
                     GROUPNORM_BACKWARD, INSTANCENORM_FORWARD -> true;
                default -> false;
            };
            // forward only (no training build); no WeightNorm or L_p BatchNorm op
            case "ort" -> switch (k) {
                case LAYERNORM_FORWARD, RMSNORM_FORWARD, GROUPNORM_FORWARD, INSTANCENORM_FORWARD -> true;
                default -> false;
            };
            default -> false;
        };
    }

    /** The implementation bound to p; throws IllegalStateException with the reason when it cannot be had. */
    static FamilyImpl create(String name, FamilyProblem p) {
        if (name.equals(Impls.SCALAR) || name.equals(Impls.VECTOR)) return new VecnormFamily(name, p);
        String cls = switch (name) {
            case "libtorch" -> "io.github.vecnorm.bench.peers.LibTorchFamily";
            case "onednn" -> "io.github.vecnorm.bench.peers.OneDnnFamily";
            case "ort" -> "io.github.vecnorm.bench.peers.OrtFamily";
            default -> throw new IllegalArgumentException("impl: expected one of " + ALL + ", got '" + name + "'");
        };
        try {
            return (FamilyImpl) Class.forName(cls).getConstructor(FamilyProblem.class).newInstance(p);
        } catch (InvocationTargetException e) {
            throw new IllegalStateException(name + ": could not start (" + Impls.rootMessage(e.getCause()) + ")", e.getCause());
        } catch (ReflectiveOperationException | LinkageError e) {
            throw new IllegalStateException(name + ": " + cls + " not usable (" + Impls.rootMessage(e) + ")", e);
        }
    }
}
