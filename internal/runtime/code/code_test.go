package code_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"observer/internal/runtime"
	"observer/internal/runtime/code"
	"observer/internal/runtime/genserver"
	"observer/internal/runtime/statem"
)

func TestRegisterRejectsBadVersions(t *testing.T) {
	tests := []struct {
		name     string
		module   string
		versions []code.Version
	}{
		{"a module needs a name", "", []code.Version{{Name: "1", Module: counterV1{}}}},
		{"a version needs a name", "m", []code.Version{{Module: counterV1{}}}},
		{"a version needs a module", "m", []code.Version{{Name: "1"}}},
		{"a version is registered once in a call", "m", []code.Version{{Name: "1", Module: counterV1{}}, {Name: "1", Module: counterV1{}}}},
		{"a version is registered once across calls", "counter", []code.Version{{Name: "2", Module: counterV1{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r, _ := newCounters(t, &counterV2{}, 0)
			if err := r.Register(tt.module, tt.versions...); err == nil {
				t.Fatal("Register accepted it")
			}
			if got := r.Current("counter").Name; got != "1" {
				t.Fatalf("current version %q after a rejected Register, want 1", got)
			}
		})
	}
}

func TestCurrentIsTheFirstVersionUntilAnUpgrade(t *testing.T) {
	_, r, _ := newCounters(t, &counterV2{}, 0)
	if v := r.Current("counter"); v.Name != "1" || v.Notes != "an int" {
		t.Fatalf("Current = %+v, want version 1", v)
	}
	if err := r.Register("counter", code.Version{Name: "3", Module: &counterV2{}}); err != nil {
		t.Fatal(err)
	}
	if v := r.Current("counter"); v.Name != "1" {
		t.Fatalf("registering version 3 made %q current", v.Name)
	}
	// With no processes running the module, an upgrade only moves Current.
	if _, err := r.Upgrade("counter", "3", nil, 0); err != nil {
		t.Fatal(err)
	}
	if v := r.Current("counter"); v.Name != "3" {
		t.Fatalf("Current after the upgrade = %q, want 3", v.Name)
	}
	if v := r.Current("nothing"); v != (code.Version{}) {
		t.Fatalf("Current of an unknown module = %+v", v)
	}
}

func TestUnknownModulesAndVersionsAreErrors(t *testing.T) {
	n, r, pids := newCounters(t, &counterV2{}, 1)
	other, err := genserver.Start(n, counterV1{}, 0, genserver.Options{Module: "unregistered"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"upgrading an unknown module", func() error { _, err := r.Upgrade("nothing", "1", nil, 0); return err }, code.ErrUnknownModule},
		{"upgrading to an unknown version", func() error { _, err := r.Upgrade("counter", "9", nil, 0); return err }, code.ErrUnknownVersion},
		{"upgrading a process to an unknown version", func() error { _, err := r.UpgradeProcess(pids[0], "9", nil, 0); return err }, code.ErrUnknownVersion},
		{"upgrading a process of an unknown module", func() error { _, err := r.UpgradeProcess(other, "2", nil, 0); return err }, code.ErrUnknownModule},
		{"upgrading no process", func() error { _, err := r.UpgradeProcess(runtime.PID{}, "2", nil, 0); return err }, runtime.ErrNoProc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	expectAll(t, n, pids, "1", func(i int) int { return i })
}

func TestModulesListsTheProcessesOnEachVersion(t *testing.T) {
	n, r, pids := newCounters(t, &counterV2{}, 3)
	if _, err := r.UpgradeProcess(pids[1], "2", nil, 0); err != nil {
		t.Fatal(err)
	}
	stray, err := genserver.Start(n, counterV1{}, 0, genserver.Options{Module: "counter", Version: "0"})
	if err != nil {
		t.Fatal(err)
	}
	mods := r.Modules()
	if len(mods) != 1 || mods[0].Name != "counter" || mods[0].Current != "1" {
		t.Fatalf("Modules() = %+v", mods)
	}
	m := mods[0]
	if !slices.Equal(m.Old, []string{"2", "0"}) {
		t.Fatalf("old versions %v, want [2 0]", m.Old)
	}
	want := []struct {
		name       string
		current    bool
		registered bool
		procs      []runtime.PID
	}{
		{"1", true, true, []runtime.PID{pids[0], pids[2]}},
		{"2", false, true, []runtime.PID{pids[1]}},
		{"0", false, false, []runtime.PID{stray}},
	}
	if len(m.Versions) != len(want) {
		t.Fatalf("versions %+v", m.Versions)
	}
	for i, w := range want {
		v := m.Versions[i]
		if v.Name != w.name || v.Current != w.current || v.Registered != w.registered || !slices.Equal(v.Processes, w.procs) {
			t.Errorf("version %d = {%s current=%v registered=%v %v}, want %+v", i, v.Name, v.Current, v.Registered, v.Processes, w)
		}
	}
	byVsn := r.Processes("counter")
	if !slices.Equal(byVsn["1"], []runtime.PID{pids[0], pids[2]}) || !slices.Equal(byVsn["2"], []runtime.PID{pids[1]}) {
		t.Fatalf("Processes = %v", byVsn)
	}

	// A process on a version the registry does not carry could not be
	// moved back, so the upgrade refuses before suspending anything.
	if _, err := r.Upgrade("counter", "2", nil, 0); err == nil || !strings.Contains(err.Error(), stray.String()) {
		t.Fatalf("Upgrade with a process on an unregistered version: err = %v", err)
	}
	expectAll(t, n, []runtime.PID{pids[0], pids[2]}, "1", func(i int) int { return []int{0, 2}[i] })
}

func TestUpgradeMovesEveryProcessAndDowngradeMovesThemBack(t *testing.T) {
	const count = 50
	n, r, pids := newCounters(t, &counterV2{}, count)
	sub := n.Subscribe(8 * count)
	defer sub.Close()

	rep, err := r.Upgrade("counter", "2", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Upgraded) != count || len(rep.RolledBack)+len(rep.Skipped)+len(rep.Errors) != 0 || rep.MaxPause <= 0 {
		t.Fatalf("report %+v", rep)
	}
	expectAll(t, n, pids, "2", func(i int) int { return i })
	if v := r.Current("counter").Name; v != "2" {
		t.Fatalf("current version %q, want 2", v)
	}
	if e := summary(t, sub); e.Text != "counter 1 -> 2 (50 processes)" || e.Name != "counter" || e.Reason != nil {
		t.Fatalf("summary event %+v", e)
	}
	for i, pid := range pids {
		ask(t, n, pid, incr{}) // the downgrade must carry v2's state back
		if i%10 == 0 {
			ask(t, n, pid, incr{})
		}
	}

	rep, err = r.Upgrade("counter", "1", "extra", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Upgraded) != count {
		t.Fatalf("downgrade report %+v", rep)
	}
	expectAll(t, n, pids, "1", func(i int) int {
		if i%10 == 0 {
			return i + 2
		}
		return i + 1
	})
	if v := r.Current("counter").Name; v != "1" {
		t.Fatalf("current version %q after the downgrade, want 1", v)
	}
	if e := summary(t, sub); e.Text != "counter 2 -> 1 (50 processes)" {
		t.Fatalf("summary event %+v", e)
	}
}

func TestFailingCodeChangeLeavesEveryProcessOnTheOldVersion(t *testing.T) {
	const count, bad = 50, 17
	n, r, pids := newCounters(t, &counterV2{migrate: func(n int) error {
		if n == bad+1 {
			return errMigrate
		}
		return nil
	}}, count)
	for _, pid := range pids {
		ask(t, n, pid, incr{})
	}
	sub := n.Subscribe(8 * count)
	defer sub.Close()

	rep, err := r.Upgrade("counter", "2", nil, 0)
	var pe *code.ProcessError
	if !errors.As(err, &pe) || pe.PID != pids[bad] || pe.Step != "code_change" || !errors.Is(err, errMigrate) {
		t.Fatalf("err = %v, want the code_change of %v failing", err, pids[bad])
	}
	if !strings.Contains(err.Error(), pids[bad].String()) || !strings.Contains(err.Error(), errMigrate.Error()) {
		t.Fatalf("error %q does not name the process and the reason", err)
	}
	if len(rep.Upgraded) != 0 || len(rep.RolledBack) != count-1 || len(rep.Errors) != 1 || rep.Errors[0] != pe {
		t.Fatalf("report: upgraded %d, rolled back %d, errors %v", len(rep.Upgraded), len(rep.RolledBack), rep.Errors)
	}
	expectAll(t, n, pids, "1", func(i int) int { return i + 1 })
	if v := r.Current("counter").Name; v != "1" {
		t.Fatalf("current version %q after a failed upgrade, want 1", v)
	}
	if e := summary(t, sub); e.Reason == nil || !strings.Contains(e.Text, "aborted") {
		t.Fatalf("summary event %+v", e)
	}
}

func TestCallsDuringAnUpgradeAreAllAnswered(t *testing.T) {
	const count, callersEach = 20, 2
	n, r, pids := newCounters(t, &counterV2{}, count)

	type result struct {
		pid   int
		calls int
		err   error
	}
	stop := make(chan struct{})
	results := make(chan result, count*callersEach)
	var started sync.WaitGroup
	for i := range pids {
		for range callersEach {
			started.Add(1)
			go func() {
				res := result{pid: i}
				defer func() { results <- res }()
				seen := "1"
				for {
					v, err := genserver.Call(n, pids[i], incr{}, wait)
					if err != nil {
						res.err = err
						return
					}
					if res.calls++; res.calls == 1 {
						started.Done()
					}
					a := v.(answer)
					if a.Version < seen {
						res.err = fmt.Errorf("answer from version %s after one from %s", a.Version, seen)
						return
					}
					seen = a.Version
					select {
					case <-stop:
						return
					default:
					}
				}
			}()
		}
	}
	started.Wait()
	rep, err := r.Upgrade("counter", "2", nil, 0)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	calls := make([]int, count)
	for range count * callersEach {
		res := <-results
		if res.err != nil {
			t.Fatalf("a caller of %v: %v", pids[res.pid], res.err)
		}
		calls[res.pid] += res.calls
	}
	// Every increment survived the migration: none was lost or failed.
	expectAll(t, n, pids, "2", func(i int) int { return i + calls[i] })
	t.Logf("%d processes upgraded under load, longest pause %v", len(rep.Upgraded), rep.MaxPause)
}

func TestACallToASuspendedProcessWaitsForTheNewCode(t *testing.T) {
	entered, gate := make(chan struct{}), make(chan struct{})
	n, r, pids := newCounters(t, &counterV2{migrate: func(int) error {
		entered <- struct{}{}
		<-gate
		return nil
	}}, 1)
	pid := pids[0]
	upgraded := make(chan error, 1)
	go func() {
		_, err := r.Upgrade("counter", "2", nil, 0)
		upgraded <- err
	}()
	receive(t, entered, "code_change")
	if s := pid.Info().Status; s != runtime.StatusSuspended {
		t.Fatalf("status during code_change %v, want suspended", s)
	}
	answered := make(chan any, 1)
	go func() {
		v, err := genserver.Call(n, pid, get{}, wait)
		if err != nil {
			answered <- err
			return
		}
		answered <- v
	}()
	waitFor(t, "the call is queued", func() bool { return pid.MailboxLen() == 1 })
	close(gate)
	if got := receive(t, answered, "the answer"); got != (answer{"2", 0}) {
		t.Fatalf("the queued call got %v, want an answer from version 2", got)
	}
	if err := receive(t, upgraded, "the upgrade"); err != nil {
		t.Fatal(err)
	}
}

func TestUpgradesOfOneModuleRunOneAtATime(t *testing.T) {
	entered, gate := make(chan struct{}), make(chan struct{})
	var migrations atomic.Int32
	_, r, _ := newCounters(t, &counterV2{migrate: func(int) error {
		migrations.Add(1)
		entered <- struct{}{}
		<-gate
		return nil
	}}, 1)
	locking := make(chan struct{}, 2)
	code.SetHooks(r, func() { locking <- struct{}{} }, nil)

	reports := make(chan code.Report, 2)
	upgrade := func() {
		rep, err := r.Upgrade("counter", "2", nil, 0)
		if err != nil {
			t.Error(err)
		}
		reports <- rep
	}
	go upgrade()
	receive(t, locking, "the first upgrade")
	receive(t, entered, "the first code_change")
	go upgrade()
	receive(t, locking, "the second upgrade")
	close(gate)
	// Either may return first; the second to run found nothing to do.
	a, b := receive(t, reports, "a report"), receive(t, reports, "a report")
	if len(a.Upgraded)+len(b.Upgraded) != 1 || migrations.Load() != 1 {
		t.Fatalf("upgraded %d and %d processes with %d code_changes; want 1 in all", len(a.Upgraded), len(b.Upgraded), migrations.Load())
	}
}

func TestProcessesThatExitDuringAnUpgradeAreSkipped(t *testing.T) {
	const count = 20
	tests := []struct {
		name string
		// setup returns the migrate hook and the suspended hook; pids is
		// filled in before the upgrade starts.
		setup   func(n *runtime.Node, pids *[]runtime.PID) (migrate func(int) error, suspended func())
		skipped []int
		fails   int // the index whose code_change fails, or -1
	}{
		{
			name: "killed once suspended",
			setup: func(n *runtime.Node, pids *[]runtime.PID) (func(int) error, func()) {
				return nil, func() {
					n.Exit((*pids)[3], runtime.Kill)
					n.Exit((*pids)[7], runtime.Kill)
				}
			},
			skipped: []int{3, 7},
			fails:   -1,
		},
		{
			name: "killed in its own code_change",
			setup: func(n *runtime.Node, pids *[]runtime.PID) (func(int) error, func()) {
				return func(i int) error {
					if i == 5 {
						n.Exit((*pids)[5], runtime.Kill)
					}
					return nil
				}, nil
			},
			skipped: []int{5},
			fails:   -1,
		},
		{
			name: "killed while the upgrade fails and rolls back",
			setup: func(n *runtime.Node, pids *[]runtime.PID) (func(int) error, func()) {
				return func(i int) error {
					if i == 0 {
						n.Exit((*pids)[9], runtime.Kill)
						return errMigrate
					}
					return nil
				}, nil
			},
			skipped: []int{9},
			fails:   0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v2 := &counterV2{}
			n, r, pids := newCounters(t, v2, count)
			migrate, suspended := tt.setup(n, &pids)
			v2.migrate = migrate
			code.SetHooks(r, nil, suspended)

			rep, err := r.Upgrade("counter", "2", nil, 0)
			vsn := "2"
			if tt.fails >= 0 {
				vsn = "1"
				var pe *code.ProcessError
				if !errors.As(err, &pe) || pe.PID != pids[tt.fails] {
					t.Fatalf("err = %v, want the code_change of %v failing", err, pids[tt.fails])
				}
			} else if err != nil {
				t.Fatal(err)
			}
			var wantSkipped, alive []runtime.PID
			for i, pid := range pids {
				if slices.Contains(tt.skipped, i) {
					wantSkipped = append(wantSkipped, pid)
				} else {
					alive = append(alive, pid)
				}
			}
			if !slices.Equal(rep.Skipped, wantSkipped) {
				t.Fatalf("skipped %v, want %v", rep.Skipped, wantSkipped)
			}
			moved := len(alive)
			if tt.fails >= 0 {
				moved-- // the one whose code_change failed never moved
			}
			if got := len(rep.Upgraded) + len(rep.RolledBack); got != moved {
				t.Fatalf("upgraded %d and rolled back %d of %d live processes", len(rep.Upgraded), len(rep.RolledBack), len(alive))
			}
			for _, pid := range alive {
				if a := ask(t, n, pid, get{}); a.Version != vsn {
					t.Fatalf("%v answered from version %s, want %s", pid, a.Version, vsn)
				}
			}
		})
	}
}

func TestUpgradeProcessMovesOnlyThatProcess(t *testing.T) {
	n, r, pids := newCounters(t, &counterV2{migrate: func(n int) error {
		if n == 2 {
			return errMigrate
		}
		return nil
	}}, 3)
	ask(t, n, pids[1], incr{})
	ask(t, n, pids[1], incr{})

	rep, err := r.UpgradeProcess(pids[1], "2", nil, 0)
	if err != nil || !slices.Equal(rep.Upgraded, []runtime.PID{pids[1]}) || rep.From != "1" {
		t.Fatalf("UpgradeProcess = %+v, %v", rep, err)
	}
	if a := ask(t, n, pids[1], get{}); a != (answer{"2", 3}) {
		t.Fatalf("upgraded process answered %+v", a)
	}
	if a := ask(t, n, pids[0], get{}); a.Version != "1" || r.Current("counter").Name != "1" {
		t.Fatalf("another process answered %+v, current %q: both should stay on 1", a, r.Current("counter").Name)
	}
	if rep, err := r.UpgradeProcess(pids[1], "2", nil, 0); err != nil || len(rep.Upgraded) != 0 {
		t.Fatalf("upgrading a process already on the version: %+v, %v", rep, err)
	}

	t.Run("a failing code_change leaves it running the old code", func(t *testing.T) {
		_, err := r.UpgradeProcess(pids[2], "2", nil, 0)
		var pe *code.ProcessError
		if !errors.As(err, &pe) || pe.PID != pids[2] || !errors.Is(err, errMigrate) {
			t.Fatalf("err = %v", err)
		}
		if a := ask(t, n, pids[2], get{}); a != (answer{"1", 2}) {
			t.Fatalf("answered %+v", a)
		}
	})
	t.Run("it can be moved back", func(t *testing.T) {
		if _, err := r.UpgradeProcess(pids[1], "1", nil, 0); err != nil {
			t.Fatal(err)
		}
		if a := ask(t, n, pids[1], get{}); a != (answer{"1", 3}) {
			t.Fatalf("answered %+v", a)
		}
	})
	t.Run("a dead process is noproc", func(t *testing.T) {
		w := n.Monitor(pids[0])
		n.Exit(pids[0], runtime.Kill)
		receive(t, w.C, "the DOWN")
		if _, err := r.UpgradeProcess(pids[0], "2", nil, 0); !errors.Is(err, runtime.ErrNoProc) {
			t.Fatalf("err = %v, want noproc", err)
		}
	})
}

func TestUpgradeMovesOnlyTheProcessesNotYetOnTheVersion(t *testing.T) {
	n, r, pids := newCounters(t, &counterV2{}, 4)
	if _, err := r.UpgradeProcess(pids[2], "2", nil, 0); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Upgrade("counter", "2", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []runtime.PID{pids[0], pids[1], pids[3]}; !slices.Equal(rep.Upgraded, want) {
		t.Fatalf("upgraded %v, want %v", rep.Upgraded, want)
	}
	// A process started now gets the new current version.
	pids = append(pids, startCounter(t, n, r, 4))
	expectAll(t, n, pids, "2", func(i int) int { return i })
}

func TestStateMachinesAreUpgradedAndDowngraded(t *testing.T) {
	const count = 10
	n := runtime.NewNode(runtime.Options{})
	r := code.NewRegistry(n)
	if err := r.Register("light", code.Version{Name: "1", Module: lightV1{}}, code.Version{Name: "2", Module: lightV2{}}); err != nil {
		t.Fatal(err)
	}
	pids := make([]runtime.PID, count)
	for i := range pids {
		pid, err := statem.Start(n, lightV1{}, nil, statem.Options{Module: "light", Version: "1"})
		if err != nil {
			t.Fatal(err)
		}
		pids[i] = pid
		for range i {
			if _, err := statem.Call(n, pid, flip{}, wait); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := func(vsn string, i int) lightAns {
		return lightAns{vsn, []string{"off", "on"}[i%2], i}
	}
	check := func(vsn string) {
		t.Helper()
		for i, pid := range pids {
			v, err := statem.Call(n, pid, lightGet{}, wait)
			if err != nil {
				t.Fatal(err)
			}
			if v != want(vsn, i) {
				t.Fatalf("%v answered %+v, want %+v", pid, v, want(vsn, i))
			}
			if info := pid.Info(); info.Behaviour != "gen_statem" || info.Version != vsn {
				t.Fatalf("%v reports %s version %s, want gen_statem %s", pid, info.Behaviour, info.Version, vsn)
			}
		}
	}
	if rep, err := r.Upgrade("light", "2", nil, 0); err != nil || len(rep.Upgraded) != count {
		t.Fatalf("upgrade: %+v, %v", rep, err)
	}
	check("2")
	if rep, err := r.Upgrade("light", "1", nil, 0); err != nil || len(rep.Upgraded) != count {
		t.Fatalf("downgrade: %+v, %v", rep, err)
	}
	check("1")
}

func TestPrepareUpgradeRunsWhileTheProcessesStillServe(t *testing.T) {
	n, r, pids := newCounters(t, &counterV2{}, 3)
	prepared := 0
	if err := r.Register("counter", code.Version{Name: "3", Module: preparedCounter{&counterV2{}, func() error {
		if prepared++; prepared > 1 {
			return nil
		}
		for _, pid := range pids {
			if info := pid.Info(); info.Version != "1" || info.Status == runtime.StatusSuspended {
				t.Errorf("%v during PrepareUpgrade: version %s, status %v", pid, info.Version, info.Status)
			}
		}
		// Nothing is suspended yet: a call is answered at once, by the old code.
		if a := ask(t, n, pids[0], incr{}); a != (answer{"1", 1}) {
			t.Errorf("a call during PrepareUpgrade got %+v", a)
		}
		return nil
	}}}); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Upgrade("counter", "3", nil, 0)
	if err != nil || len(rep.Upgraded) != 3 || prepared != 1 {
		t.Fatalf("upgrade: %+v, %v, prepared %d times; want 3 processes moved, prepared once", rep, err, prepared)
	}
	for i, pid := range pids {
		want := answer{"2", i} // version 3 runs version 2's callbacks
		if i == 0 {
			want.N++
		}
		if got := ask(t, n, pid, get{}); got != want || pid.Info().Version != "3" {
			t.Fatalf("%v answered %+v on version %s, want %+v on 3", pid, got, pid.Info().Version, want)
		}
	}
	// With nothing to move there is nothing to prepare; moving one process
	// prepares, as a whole module's upgrade does.
	if _, err := r.Upgrade("counter", "3", nil, 0); err != nil || prepared != 1 {
		t.Fatalf("an upgrade with nothing to move: %v, prepared %d times", err, prepared)
	}
	if _, err := r.UpgradeProcess(pids[1], "1", nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.UpgradeProcess(pids[1], "3", nil, 0); err != nil || prepared != 2 {
		t.Fatalf("UpgradeProcess: %v, prepared %d times, want 2", err, prepared)
	}
}

func TestAFailingPrepareUpgradeSuspendsNothing(t *testing.T) {
	for name, tt := range map[string]struct {
		prepare func() error
		want    string
	}{
		"an error": {func() error { return errPrepare }, errPrepare.Error()},
		"a panic":  {func() error { panic("prepare bug") }, "panic: prepare bug"},
	} {
		t.Run(name, func(t *testing.T) {
			n, r, pids := newCounters(t, &counterV2{}, 3)
			if err := r.Register("counter", code.Version{Name: "3", Module: preparedCounter{&counterV2{}, tt.prepare}}); err != nil {
				t.Fatal(err)
			}
			suspended := false
			code.SetHooks(r, nil, func() { suspended = true })
			sub := n.Subscribe(64)
			defer sub.Close()

			rep, err := r.Upgrade("counter", "3", nil, 0)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, perr := r.UpgradeProcess(pids[0], "3", nil, 0); perr == nil || !strings.Contains(perr.Error(), tt.want) {
				t.Fatalf("UpgradeProcess: err = %v, want %q", perr, tt.want)
			}
			if suspended || len(rep.Upgraded)+len(rep.RolledBack) != 0 || r.Current("counter").Name != "1" {
				t.Fatalf("report %+v, suspended %v, current %s: nothing should have moved", rep, suspended, r.Current("counter").Name)
			}
			// Events are published before Upgrade returns: no process was
			// suspended, not even for a moment.
			for len(sub.C) > 0 {
				if e := <-sub.C; e.Kind == runtime.EventSys {
					t.Fatalf("event %+v", e)
				}
			}
			expectAll(t, n, pids, "1", func(i int) int { return i })
		})
	}
}

func TestASuspendThatTimesOutAbortsTheUpgrade(t *testing.T) {
	n, r, pids := newCounters(t, &counterV2{}, 5)
	busy := pids[2]
	entered, until := make(chan struct{}), make(chan struct{})
	blocked := make(chan error, 1)
	go func() {
		_, err := genserver.Call(n, busy, block{entered, until}, wait)
		blocked <- err
	}()
	// The handler itself says it runs: a status of "running" could also
	// be the end of Init, with the call not yet taken, and a suspend that
	// came before the call would then succeed.
	receive(t, entered, "the process to be busy in the call")

	rep, err := r.Upgrade("counter", "2", nil, 50*time.Millisecond)
	var pe *code.ProcessError
	if !errors.As(err, &pe) || pe.PID != busy || pe.Step != "suspend" || !errors.Is(err, runtime.ErrTimeout) {
		t.Fatalf("err = %v, want the suspend of %v timing out", err, busy)
	}
	if len(rep.Upgraded)+len(rep.RolledBack) != 0 {
		t.Fatalf("report %+v: nothing should have moved", rep)
	}
	close(until)
	if err := receive(t, blocked, "the busy call"); err != nil {
		t.Fatal(err)
	}
	// The late suspend is followed by the resume queued after it.
	expectAll(t, n, pids, "1", func(i int) int { return i })
}

func TestACodeChangeThatTimesOut(t *testing.T) {
	const slow = 1
	setup := func(t *testing.T) (*runtime.Node, *code.Registry, []runtime.PID, chan struct{}) {
		gate := make(chan struct{})
		n, r, pids := newCounters(t, &counterV2{migrate: func(n int) error {
			if n == slow {
				<-gate
			}
			return nil
		}}, 3)
		return n, r, pids, gate
	}

	t.Run("is moved back once it finishes within the next timeout", func(t *testing.T) {
		n, r, pids, gate := setup(t)
		sub := n.Subscribe(1024)
		defer sub.Close()
		go func() {
			// Other processes are moved back only after the slow
			// code_change has timed out: then let it finish.
			for e := range sub.C {
				if e.Kind == runtime.EventCodeChange && strings.HasSuffix(e.Text, "2 -> 1") {
					close(gate)
					return
				}
			}
		}()
		rep, err := r.Upgrade("counter", "2", nil, 500*time.Millisecond)
		var pe *code.ProcessError
		if !errors.As(err, &pe) || pe.PID != pids[slow] || !errors.Is(err, runtime.ErrTimeout) {
			t.Fatalf("err = %v, want the code_change of %v timing out", err, pids[slow])
		}
		if len(rep.RolledBack) != 3 || len(rep.Errors) != 1 {
			t.Fatalf("rolled back %v, errors %v; want all 3 back and one error", rep.RolledBack, rep.Errors)
		}
		expectAll(t, n, pids, "1", func(i int) int { return i })
	})

	t.Run("is reported in doubt if it outlasts the next timeout too", func(t *testing.T) {
		n, r, pids, gate := setup(t)
		rep, err := r.Upgrade("counter", "2", nil, 20*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "version unknown") {
			t.Fatalf("err = %v, want the rollback of %v in doubt", err, pids[slow])
		}
		if len(rep.RolledBack) != 2 {
			t.Fatalf("rolled back %v, want the other 2", rep.RolledBack)
		}
		close(gate)
		// Its code_change went through after all; an upgrade to the
		// current version brings it back in line.
		if a := ask(t, n, pids[slow], get{}); a.Version != "2" {
			t.Fatalf("the slow process answered %+v", a)
		}
		if rep, err := r.Upgrade("counter", r.Current("counter").Name, nil, 0); err != nil || !slices.Equal(rep.Upgraded, []runtime.PID{pids[slow]}) {
			t.Fatalf("realigning: %+v, %v", rep, err)
		}
		expectAll(t, n, pids, "1", func(i int) int { return i })
	})
}

func TestAPanickingCodeChangeFailsTheUpgrade(t *testing.T) {
	const bad = 3
	n, r, pids := newCounters(t, &counterV2{migrate: func(n int) error {
		if n == bad {
			panic("migration bug")
		}
		return nil
	}}, 8)
	rep, err := r.Upgrade("counter", "2", nil, 0)
	var pe *code.ProcessError
	if !errors.As(err, &pe) || pe.PID != pids[bad] || pe.Step != "code_change" || !strings.Contains(err.Error(), "migration bug") {
		t.Fatalf("err = %v, want the code_change of %v failing", err, pids[bad])
	}
	if len(rep.RolledBack) != len(pids)-1 {
		t.Fatalf("rolled back %v, want every other process", rep.RolledBack)
	}
	others := slices.Delete(slices.Clone(pids), bad, bad+1)
	expectAll(t, n, others, "1", func(i int) int { return []int{0, 1, 2, 4, 5, 6, 7}[i] })
}
