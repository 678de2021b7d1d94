/** JMH benchmarks of the vecnorm kernels against the copy roofline and native peers. */
package io.github.vecnorm.bench;
