//go:build linux

package main

import "syscall"

// threadCPU returns the CPU time the calling OS thread has used, and true.
// Benchmarks lock their goroutine to the thread and report the difference
// as cpu-ns/op: unlike ns/op it does not count the time the thread waited
// for a core, so it holds steady on a shared machine.
func threadCPU() (int64, bool) {
	const rusageThread = 1 // RUSAGE_THREAD, Linux only
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}
