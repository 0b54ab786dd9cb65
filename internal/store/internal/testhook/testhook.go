// Package testhook holds the key to the store's test-only methods. Only internal/store and
// internal/store/storetest import it (Go refuses any importer outside internal/store), so
// elsewhere the key's type cannot be named and no value of it can be made: production code
// cannot call those methods. Tests reach them through storetest, which only tests import.
package testhook

// Key is the argument of the store's test-only methods.
type Key struct{ _ key }

type key struct{}
