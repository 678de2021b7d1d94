/**
 * The native peers the benchmark compares vecnorm with: libtorch (ATen, through org.bytedeco:pytorch),
 * oneDNN (org.bytedeco:dnnl, C API) and ONNX Runtime. Each binds one
 * {@link io.github.vecnorm.bench.Problem} and works zero copy over its off-heap segments.
 */
package io.github.vecnorm.bench.peers;
