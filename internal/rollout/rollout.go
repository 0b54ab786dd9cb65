// Package rollout owns the domain rules of staged deployments: phase plans,
// the deterministic assignment of devices to phases, the abort criteria that
// gate each phase and the state machine of a deployment (active, paused,
// aborted, completed).
//
// It is pure: no storage, no HTTP, no clock of its own. Every function that
// depends on time takes the current time from its caller, so that the server,
// the simulator and the tests drive it with the clock they choose. The store,
// the API, the server's tasks and the fixtures of tests and benchmarks
// (clitest, bench/seed) import it; the device agent must not.
package rollout
