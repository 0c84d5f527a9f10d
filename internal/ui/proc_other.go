//go:build !linux

package ui

// readHostCPU has no portable source outside Linux; the figure shows as unknown.
func readHostCPU() (cpuTimes, bool) { return cpuTimes{}, false }

// processRSS has no portable source outside Linux; the figure shows as unknown.
func processRSS() uint64 { return 0 }
