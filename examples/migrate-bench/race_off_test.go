//go:build !race

package main

// raceBuild reports whether the tests (and so their children) are built
// with the race detector, which multiplies a process's RSS.
const raceBuild = false
