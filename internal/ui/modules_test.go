package ui

import (
	"errors"
	"testing"
	"time"
)

func TestUpgradeTextSaysWhatTheMoveDid(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		msg  moduleUpgradeMsg
		want string
	}{
		{"an upgrade names the versions, the processes and the pause",
			moduleUpgradeMsg{"router", "2", UpgradeReport{From: "1", Upgraded: 3, MaxPause: 1500 * time.Microsecond}, nil},
			"router 1 → 2: 3 processes moved, longest pause 1.5ms; new processes start on 2"},
		{"processes that exit meanwhile are counted",
			moduleUpgradeMsg{"router", "2", UpgradeReport{From: "1", Upgraded: 1, Skipped: 2, MaxPause: time.Millisecond}, nil},
			"router 1 → 2: 1 process moved, longest pause 1.0ms, 2 exited meanwhile; new processes start on 2"},
		{"a module with no processes only changes its current version",
			moduleUpgradeMsg{"router", "2", UpgradeReport{From: "1"}, nil},
			"router 1 → 2: 0 processes moved; new processes start on 2"},
		{"the current version takes back canaries",
			moduleUpgradeMsg{"router", "1", UpgradeReport{From: "1", Upgraded: 1, MaxPause: time.Millisecond}, nil},
			"router 1: 1 process moved, longest pause 1.0ms; new processes start on 1"},
		{"nothing to do is said so",
			moduleUpgradeMsg{"router", "1", UpgradeReport{From: "1"}, nil},
			"router already runs 1: no process had to move"},
		{"a failed code_change with others moved is rolled back",
			moduleUpgradeMsg{"router", "2", UpgradeReport{From: "1", RolledBack: 2, Failed: 1}, boom},
			"router 1 → 2 failed and was rolled back: 2 processes moved back, every process stays on its old version"},
		{"a failed code_change alone is rolled back too",
			moduleUpgradeMsg{"router", "2", UpgradeReport{From: "1", Failed: 1}, boom},
			"router 1 → 2 failed and was rolled back: no process had moved, every process stays on its old version"},
		{"a process that could not be moved back is named",
			moduleUpgradeMsg{"router", "2", UpgradeReport{From: "1", Upgraded: 1, RolledBack: 1, Failed: 1, Stranded: 1}, boom},
			"router 1 → 2 failed and was rolled back, but 1 process could not be moved back and still runs 2"},
		{"a move refused up front moved nothing",
			moduleUpgradeMsg{"router", "9", UpgradeReport{From: "1"}, boom},
			"router 1 → 9 refused: no process was moved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := upgradeText(tt.msg); got != tt.want {
				t.Errorf("upgradeText = %q\nwant          %q", got, tt.want)
			}
		})
	}
}
