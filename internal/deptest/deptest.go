// Package deptest holds the test that keeps every package comment's sentence about who may
// import the package, or what it may import, true (compare Tailscale's tstest/deptest): each
// such sentence has a rule in deptest_test.go, checked against `go list`, and a package comment
// that makes a new claim fails until the rule is written. Nothing imports it.
package deptest
