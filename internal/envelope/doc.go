// Package envelope is the stream pipeline every artifact goes through on its
// way into a repository and back: plaintext is hashed, compressed with zstd,
// encrypted to age recipients and hashed again, so that a reader can prove
// both what was stored and what it decodes to.
//
// The format is deliberately the composition of two standard tools: an
// artifact can be decoded by hand with `age -d -i KEY | zstd -d`. Nothing is
// ever buffered whole; memory use is bounded by the zstd window and age's
// 64 KiB chunks whatever the artifact size.
//
// Encryption needs only public keys (recipients). Decryption needs an
// identity; a missing or wrong identity is reported as ErrWrongKey so the
// CLI can map it to its own exit code.
package envelope
