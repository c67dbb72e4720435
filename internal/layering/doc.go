// Package layering holds the test that enforces the import rules of
// DESIGN.md: uri at the top, then crypto, channel and migration, each
// importing only the layers above it. It has no code of its own.
package layering
