package ui

import (
	"strconv"
	"time"
)

// overviewPane shows the node, the Go runtime, the host, and charts of the
// last minutes: calls, route latency, charges and memory.
type overviewPane struct {
	w, h int
	buf  [8][]float64 // series buffers reused between frames
}

// SetSize sets the pane's size in cells.
func (p *overviewPane) SetSize(w, h int) { p.w, p.h = w, h }

// Render draws the figures on the left and the charts on the right.
func (p *overviewPane) Render(c *shared) []string {
	leftW := 36
	if p.w >= 140 {
		leftW = 44
	}
	left := p.figures(c, leftW)
	rightW := p.w - leftW - 2
	right := p.charts(c, rightW, p.h)
	return block(joinCols(2, block(left, leftW, p.h), block(right, rightW, p.h)), p.w, p.h)
}

func (p *overviewPane) figures(c *shared, w int) []string {
	st := c.st
	s, y := &c.stats, &c.sys
	kv := func(k, v string) string { return fit(" "+st.Label.Render(cell(k, 11))+" "+v, w) }
	val := st.Value.Render
	state := st.Good.Render("running")
	if c.paused {
		state = st.Warn.Render("display paused")
	}
	zombies := val(strconv.Itoa(s.Zombies))
	if s.Zombies > 0 {
		zombies = st.Bad.Render(strconv.Itoa(s.Zombies))
	}
	lines := []string{
		st.Heading.Render("Node"),
		kv("Uptime", val(dur(s.Uptime.Truncate(time.Second)))),
		kv("Processes", val(commas(int64(s.Processes)))+st.Dim.Render(" / "+commas(int64(s.MaxProcesses)))),
		kv("Zombies", zombies),
		kv("Messages/s", val(rate(c.msgRate))),
		kv("Spawned", commas(int64(s.Spawned))+st.Dim.Render(" exited ")+commas(int64(s.Exited))),
		kv("Registered", strconv.Itoa(s.Registered)),
		kv("State", state+st.Dim.Render(" · snapshot "+dur(c.took))),
		st.Heading.Render("Go runtime"),
		kv("Goroutines", val(commas(int64(y.goroutines)))),
		kv("Heap", val(bytesIEC(y.heapLive))+st.Dim.Render(" goal "+bytesIEC(y.heapGoal))),
		kv("GC pauses", "p99 "+dur(y.gcPauseP99)+st.Dim.Render(" · max ")+dur(y.gcPauseMax)),
		kv("GC cycles", strconv.FormatUint(y.gcCycles, 10)),
		st.Heading.Render("Host"),
	}
	cpu := "–"
	if y.hostCPU >= 0 {
		cpu = pct(y.hostCPU)
	}
	lines = append(lines,
		kv("CPU", val(cpu)+st.Dim.Render(" of "+strconv.Itoa(y.cpus)+" · load ")+strconv.FormatFloat(y.load1, 'f', 2, 64)),
		kv("Memory", val(bytesIEC(y.hostMemUsed))+st.Dim.Render(" / "+bytesIEC(y.hostMemTotal))))
	proc := "–"
	if y.procCPU >= 0 {
		proc = strconv.FormatFloat(y.procCPU, 'f', 2, 64) + " CPU"
	}
	lines = append(lines, kv("This proc", val(proc)+st.Dim.Render(" · ")+bytesIEC(y.procRSS)))
	if t := &c.tel; t.LoadRate > 0 || t.Chaos || c.telRate.valid {
		chaos := st.Dim.Render("off")
		if t.Chaos {
			chaos = st.Bad.Render("ON")
		}
		lines = append(lines,
			st.Heading.Render("Telecom"),
			kv("Load", val(rate(t.LoadRate))+st.Dim.Render(" calls/s offered")),
			kv("Chaos", chaos))
	}
	return lines
}

// chartWeights are the shares of height the four charts get: one line per series.
var chartWeights = [4]int{3, 3, 1, 2}

func (p *overviewPane) charts(c *shared, w, h int) []string {
	h0 := c.hist.n
	n := 2 * w // the Braille chart shows two samples a cell
	get := func(i int, f func(*histPoint) float64) []float64 {
		p.buf[i] = c.hist.series(p.buf[i][:0], n, f)
		return p.buf[i]
	}
	specs := [4]chartSpec{
		{title: "Calls/s", names: []string{"routed", "failed", "dropped"}, format: rate, series: [][]float64{
			get(0, func(x *histPoint) float64 { return x.routed }),
			get(1, func(x *histPoint) float64 { return x.failed }),
			get(2, func(x *histPoint) float64 { return x.dropped })}},
		{title: "Route latency", names: []string{"p50", "p99", "p99.9"}, format: millis, series: [][]float64{
			get(3, func(x *histPoint) float64 { return x.p50 }),
			get(4, func(x *histPoint) float64 { return x.p99 }),
			get(5, func(x *histPoint) float64 { return x.p999 })}},
		{title: "Charges/s", names: []string{"charges"}, format: rate, series: [][]float64{
			get(6, func(x *histPoint) float64 { return x.charges })}},
		{title: "Memory", names: []string{"heap", "rss"}, format: func(v float64) string { return bytesIEC(uint64(v)) }, series: [][]float64{
			get(7, func(x *histPoint) float64 { return x.heap }),
			c.hist.series(nil, n, func(x *histPoint) float64 { return x.rss })}},
	}
	// Each chart gets its title and a line per series, then a share of what is left.
	heights := [4]int{}
	used := 0
	for i := range specs {
		heights[i] = 1 + chartWeights[i]
		used += heights[i]
	}
	extra := max(h-used, 0)
	for i := range heights {
		heights[i] += extra / len(heights)
	}
	heights[0] += extra % len(heights)
	// Braille lines need height to read; below that every chart is sparklines,
	// so the four look alike.
	withLines := h >= 4*7
	var lines []string
	for i, spec := range specs {
		ch := heights[i]
		if len(lines)+ch > h {
			ch = h - len(lines)
		}
		if ch <= 0 {
			break
		}
		lines = append(lines, block(c.chart(spec, w, ch, withLines), w, ch)...)
	}
	if h0 == 0 && len(lines) > 0 {
		lines[0] = fit(c.st.Dim.Render("charts fill in as samples arrive (one a second)"), w)
	}
	return lines
}

func millis(v float64) string {
	switch {
	case v <= 0:
		return "0"
	case v < 1:
		return strconv.FormatFloat(v*1000, 'f', 0, 64) + "µs"
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + "ms"
}
