//go:build !linux

package main

// threadCPU is not available here: benchmarks report ns/op only.
func threadCPU() (int64, bool) { return 0, false }
