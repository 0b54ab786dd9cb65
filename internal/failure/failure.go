// Package failure owns crash reports on the server side: the wire format a
// device uploads, its strict size-limited decoder, the parsing of Go panic
// traces, frame normalisation, the signature that groups reports, and the
// rules that mark a group new in a release or regressed after it was
// resolved.
//
// It is pure: no storage and no HTTP. The server's device API and storage
// import it. The device agent imports only the wire types (Report, Batch)
// and the limits, through internal/agent/crash.
package failure
