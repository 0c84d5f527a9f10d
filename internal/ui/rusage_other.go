//go:build !unix

package ui

import "time"

// processCPUTime is not available here; the figure shows as unknown.
func processCPUTime() (time.Duration, bool) { return 0, false }
