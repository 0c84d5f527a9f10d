package ui

import (
	"bufio"
	"os"
)

// readHostCPU reads the host's cumulative CPU times from /proc/stat.
func readHostCPU() (cpuTimes, bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return cpuTimes{}, false
	}
	return parseCPULine(sc.Text())
}

// processRSS reads this process's resident memory from /proc/self/statm.
func processRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	pages, ok := parseStatm(string(b))
	if !ok {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}
