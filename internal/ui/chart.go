package ui

import (
	"math"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// chartAxis is the width of the y-axis labels, the same for every chart
// so that their plots line up.
const chartAxis = 9

var sparkLevels = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last w values as one line of block characters,
// right-aligned so that the newest value is always at the right edge.
func sparkline(vals []float64, w int, top float64) string {
	if w <= 0 {
		return ""
	}
	if len(vals) > w {
		vals = vals[len(vals)-w:]
	}
	var b strings.Builder
	b.Grow(w * 3)
	b.WriteString(spaces(w - len(vals)))
	for _, v := range vals {
		if math.IsNaN(v) {
			b.WriteByte(' ') // not measured
			continue
		}
		i := 0
		if top > 0 && v > 0 {
			i = int(math.Round(v / top * float64(len(sparkLevels)-1)))
			i = clamp(i, 0, len(sparkLevels)-1)
		}
		b.WriteRune(sparkLevels[i])
	}
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so that axis
// labels read as round numbers.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// brailleDots maps a dot's position inside a cell (x 0..1, y 0..3 from the
// top) to its bit in the Braille block.
var brailleDots = [2][4]rune{{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}}

// braille draws series as lines over w×h cells, two samples per cell
// column and four dot rows per cell row; the newest sample is at the right.
// Each cell takes the colour of the first series that marks it.
func braille(series [][]float64, styles []lipgloss.Style, w, h int, top float64) []string {
	if w <= 0 || h <= 0 {
		return nil
	}
	dots := make([]rune, w*h)
	owner := make([]int8, w*h)
	for i := range owner {
		owner[i] = -1
	}
	rows := 4 * h
	set := func(x, y, s int) {
		cx, cy := x/2, h-1-y/4
		if cx < 0 || cx >= w || cy < 0 || cy >= h {
			return
		}
		i := cy*w + cx
		dots[i] |= brailleDots[x%2][3-y%4]
		if owner[i] < 0 {
			owner[i] = int8(s)
		}
	}
	for s, vals := range series {
		if len(vals) > 2*w {
			vals = vals[len(vals)-2*w:]
		}
		x0 := 2*w - len(vals)
		prev := -1
		for i, v := range vals {
			if math.IsNaN(v) {
				prev = -1 // a gap: not measured
				continue
			}
			y := 0
			if top > 0 && v > 0 {
				y = clamp(int(math.Round(v/top*float64(rows-1))), 0, rows-1)
			}
			x := x0 + i
			if prev < 0 {
				set(x, y, s)
			} else {
				// Join to the previous sample so steep changes stay a line.
				lo, hi := min(prev, y), max(prev, y)
				for yy := lo; yy <= hi; yy++ {
					set(x, yy, s)
				}
			}
			prev = y
		}
	}
	out := make([]string, h)
	var b strings.Builder
	for cy := range h {
		b.Reset()
		run, runOwner := []rune(nil), int8(-2)
		flush := func() {
			if len(run) == 0 {
				return
			}
			if runOwner >= 0 && int(runOwner) < len(styles) {
				b.WriteString(styles[runOwner].Render(string(run)))
			} else {
				b.WriteString(string(run))
			}
			run = run[:0]
		}
		for cx := range w {
			i := cy*w + cx
			r, o := rune(' '), int8(-1)
			if dots[i] != 0 {
				r, o = 0x2800+dots[i], owner[i]
			}
			if o != runOwner {
				flush()
				runOwner = o
			}
			run = append(run, r)
		}
		flush()
		out[cy] = b.String()
	}
	return out
}

// chartSpec describes one chart of the Overview.
type chartSpec struct {
	title  string
	names  []string
	series [][]float64
	format func(float64) string
}

// chart draws a titled chart in w×h cells: with lines, a legend with the
// latest values above Braille lines and a y axis; without, one sparkline
// per series.
func (c *shared) chart(spec chartSpec, w, h int, lines bool) []string {
	if h <= 0 || w <= 0 {
		return nil
	}
	top := 0.0
	for _, s := range spec.series {
		for _, v := range s {
			if !math.IsNaN(v) {
				top = max(top, v)
			}
		}
	}
	top = niceCeil(top)
	latest := func(s []float64) string {
		if len(s) == 0 || math.IsNaN(s[len(s)-1]) {
			return "–"
		}
		return spec.format(s[len(s)-1])
	}
	st := c.st
	out := make([]string, 0, h)
	body := h - 1
	if lines && body >= 3 && len(spec.series) > 0 {
		var lg strings.Builder
		lg.WriteString(st.Heading.Render(spec.title))
		for i, name := range spec.names {
			lg.WriteString("  ")
			lg.WriteString(st.Series[i%len(st.Series)].Render("●"))
			lg.WriteString(" " + name + " ")
			lg.WriteString(st.Value.Render(latest(spec.series[i])))
		}
		out = append(out, fit(lg.String(), w))
		axis := max(ansi.StringWidth(spec.format(top)), chartAxis)
		plot := braille(spec.series, st.Series[:], w-axis-1, body, top)
		for i, l := range plot {
			label := ""
			switch i {
			case 0:
				label = spec.format(top)
			case len(plot) - 1:
				label = "0"
			case len(plot) / 2:
				if len(plot) >= 5 {
					label = spec.format(top / 2)
				}
			}
			out = append(out, st.Dim.Render(cellRight(label, axis))+st.Dim.Render("┤")+l)
		}
		return out
	}
	out = append(out, fit(st.Heading.Render(spec.title)+st.Dim.Render(" (max "+spec.format(top)+")"), w))
	nameW := 0
	for _, n := range spec.names {
		nameW = max(nameW, len(n))
	}
	for i, name := range spec.names {
		if len(out) == h {
			break
		}
		val := latest(spec.series[i])
		sw := max(w-nameW-len(val)-3, 1)
		line := cell(name, nameW) + " " + st.Series[i%len(st.Series)].Render(sparkline(spec.series[i], sw, top)) + " " + st.Value.Render(val)
		out = append(out, fit(line, w))
	}
	return out
}
