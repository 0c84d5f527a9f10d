package ui

import (
	"strconv"
	"strings"
)

// parseCPULine reads the aggregate "cpu" line of /proc/stat: user nice
// system idle iowait irq softirq steal [guest guest_nice]. Guest time is
// already counted in user and nice, so it is left out of the total.
func parseCPULine(line string) (cpuTimes, bool) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}, false
	}
	var t cpuTimes
	for i, s := range f[1:] {
		if i >= 8 {
			break
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, false
		}
		if t.total+v < t.total {
			return cpuTimes{}, false // overflow: not a real reading
		}
		t.total += v
		if i != 3 && i != 4 { // idle and iowait are not busy
			t.busy += v
		}
	}
	return t, true
}

// parseStatm reads the resident page count, the second field of /proc/self/statm.
func parseStatm(s string) (uint64, bool) {
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0, false
	}
	v, err := strconv.ParseUint(f[1], 10, 64)
	return v, err == nil
}
