module github.com/rampartsec/rampart

go 1.26.8

require (
	github.com/google/go-attestation v0.6.4
	github.com/google/go-cmp v0.7.0
	github.com/google/go-tpm v0.9.8
	github.com/google/go-tpm-tools v0.4.10
)

require golang.org/x/sys v0.49.0 // indirect
