package ui

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// commas formats n with thousands separators: 100000 -> "100,000".
func commas(n int64) string {
	if n < 0 {
		return "-" + commas(-n)
	}
	s := strconv.FormatInt(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/3)
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// rate formats a per-second figure compactly: 0, 0.4, 12, 1.2k, 3.4M.
func rate(v float64) string {
	switch {
	case v < 0 || math.IsNaN(v):
		return "–"
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v < 10_000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v < 10_000_000:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
}

// bytesIEC formats a byte count: 512 B, 12.3 MiB.
func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + "KMGTPE"[exp:exp+1] + "iB"
}

// dur formats a duration for a narrow column: 850ns, 12µs, 3.4ms, 12s,
// 5m03s, 2h04m, 3d04h.
func dur(d time.Duration) string {
	switch {
	case d < 0:
		return "–"
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "µs"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + "ms"
	case d < time.Second:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	case d < 10*time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Minute:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d < time.Hour:
		return two(int64(d/time.Minute), "m", int64(d%time.Minute/time.Second), "s")
	case d < 24*time.Hour:
		return two(int64(d/time.Hour), "h", int64(d%time.Hour/time.Minute), "m")
	}
	return two(int64(d/(24*time.Hour)), "d", int64(d%(24*time.Hour)/time.Hour), "h")
}

func two(a int64, ua string, b int64, ub string) string {
	s := strconv.FormatInt(b, 10)
	if b < 10 {
		s = "0" + s
	}
	return strconv.FormatInt(a, 10) + ua + s + ub
}

// ago formats how long before now t was; "never" for the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < time.Second {
		return "now"
	}
	return dur(d.Truncate(time.Second)) + " ago"
}

// pct formats a 0..1 fraction as a percentage.
func pct(f float64) string {
	if f < 0 || math.IsNaN(f) {
		return "–"
	}
	return strconv.FormatFloat(f*100, 'f', 1, 64) + "%"
}

// fit pads or cuts s (which may hold ANSI styling) to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		s = ansi.Truncate(s, w, "…")
		sw = ansi.StringWidth(s) // a wide rune may not fit the last cell
	}
	if sw < w {
		s += spaces(w - sw)
	}
	return s
}

// plainASCII reports whether s is printable ASCII, whose width is its length.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// cell pads or cuts plain text s to w cells, aligned left. Text from the
// system (names, reasons, messages) goes through here or sanitize, so a
// control character in it can never reach the terminal.
func cell(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if !plainASCII(s) {
		return fit(sanitize(s), w)
	}
	switch {
	case len(s) == w:
		return s
	case len(s) < w:
		return s + spaces(w-len(s))
	}
	return s[:w-1] + "…"
}

// cellRight pads plain text s on the left to w cells.
func cellRight(s string, w int) string {
	if !plainASCII(s) {
		s = sanitize(s)
	}
	n := ansi.StringWidth(s)
	if n >= w {
		return cell(s, w)
	}
	return spaces(w-n) + s
}

// sanitize replaces control characters, escape sequences included, with
// visible stand-ins; line breaks stay.
func sanitize(s string) string {
	clean := true
	for _, r := range s {
		if isControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case isControl(r):
			return '�'
		}
		return r
	}, s)
}

func isControl(r rune) bool {
	return r < 0x20 && r != '\n' || r == 0x7f || r >= 0x80 && r < 0xa0
}

const blank = "                                                                                                                                                                                                        "

// spaces returns n spaces without allocating for common widths.
func spaces(n int) string {
	if n <= 0 {
		return ""
	}
	if n <= len(blank) {
		return blank[:n]
	}
	return strings.Repeat(" ", n)
}

// block fits lines to a w×h rectangle: each line exactly w cells, exactly h lines.
func block(lines []string, w, h int) []string {
	out := make([]string, h)
	for i := range out {
		if i < len(lines) {
			out[i] = fit(lines[i], w)
		} else {
			out[i] = spaces(w)
		}
	}
	return out
}

// joinCols places rectangles side by side with a gap; each column is a
// slice of lines already fitted to its width.
func joinCols(gap int, cols ...[]string) []string {
	h := 0
	for _, c := range cols {
		h = max(h, len(c))
	}
	out := make([]string, h)
	sep := spaces(gap)
	for i := range out {
		var b strings.Builder
		for j, c := range cols {
			if j > 0 {
				b.WriteString(sep)
			}
			if i < len(c) {
				b.WriteString(c[i])
			} else if len(c) > 0 {
				b.WriteString(spaces(ansi.StringWidth(c[0])))
			}
		}
		out[i] = b.String()
	}
	return out
}

// wrap breaks plain text into lines of at most w cells, keeping existing
// line breaks, and stops after max lines (max <= 0: no limit).
func wrap(s string, w, maxLines int) []string {
	if w <= 0 {
		return nil
	}
	var out []string
	for _, line := range strings.Split(s, "\n") {
		line = sanitize(strings.ReplaceAll(line, "\t", "    "))
		for _, part := range strings.Split(ansi.Hardwrap(line, w, true), "\n") {
			if maxLines > 0 && len(out) == maxLines {
				return out
			}
			out = append(out, part)
		}
	}
	return out
}

// containsFold reports whether s contains the lower-case ASCII pattern
// sub, ignoring ASCII case, without allocating.
func containsFold(s, sub string) bool {
	n := len(sub)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// oneLine flattens a value's text to one line for a table cell.
func oneLine(s string) string {
	if strings.ContainsAny(s, "\n\t\r") {
		s = strings.Join(strings.Fields(s), " ")
	}
	return sanitize(s)
}
