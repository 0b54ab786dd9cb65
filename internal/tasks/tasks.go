// Package tasks holds the server's long-running parts, each a Run(ctx) error that the server
// lists in its task group (the first error cancels the rest): the rollout Stepper, the
// vulnerability-response Reports timers, the Refresher of the online TUF roles, and the Waker,
// which wakes the devices a deployment now offers its release to and hears the deployments
// other replicas write. They own no rules: each calls the store and the domain packages on a
// clock or on an event. Only internal/server and internal/api (which wakes a group's devices
// when an operator creates or resumes a deployment) import it; a test holds that sentence.
package tasks
