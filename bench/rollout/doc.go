// Package rollout holds BenchmarkRolloutReach99: how long a deployment takes, through the real
// server's admin and device APIs over mutual TLS, to reach 99 % of N online in-process agents,
// beside the ceiling of the same agents checking in with no deployment. It has no code of its
// own; nothing imports it.
package rollout
