// Package styles holds every colour and text attribute of the observer's
// terminal UI, so that a theme is changed in one place and the panes only
// ask for a role ("bad", "selected", "flash"), never for a colour.
package styles

import (
	"image/color"

	"charm.land/lipgloss/v2"
)

// Palette names the theme a Styles is built from.
type Palette uint8

// The palettes.
const (
	// Dark suits a terminal with a dark background.
	Dark Palette = iota
	// Light suits a terminal with a light background.
	Light
	// HighContrast is for projectors and screen sharing: bold, saturated,
	// nothing dim.
	HighContrast
	// Mono uses no colour at all (NO_COLOR): only bold, underline and reverse.
	Mono
)

// Styles are the roles the panes draw with.
type Styles struct {
	Palette Palette

	Title       lipgloss.Style // the product name in the tab bar
	TabActive   lipgloss.Style
	TabInactive lipgloss.Style
	Heading     lipgloss.Style // section headings inside a pane
	Header      lipgloss.Style // table column headers
	Selected    lipgloss.Style // the selected row
	Flash       lipgloss.Style // a row that just changed (a restart)
	Dim         lipgloss.Style // secondary text
	Label       lipgloss.Style // "Uptime", "Heap" ...
	Value       lipgloss.Style // the figure after a label
	Good        lipgloss.Style
	Warn        lipgloss.Style
	Bad         lipgloss.Style
	Accent      lipgloss.Style
	Key         lipgloss.Style // a key in help text
	Desc        lipgloss.Style // what a key does
	Status      lipgloss.Style // the status line's message
	StatusErr   lipgloss.Style
	Dialog      lipgloss.Style // a dialog's frame
	DialogTitle lipgloss.Style
	Input       lipgloss.Style // text being typed
	Cursor      lipgloss.Style // the text cursor
	GaugeFull   lipgloss.Style
	GaugeEmpty  lipgloss.Style
	// Series colour the lines of a chart, in legend order.
	Series [4]lipgloss.Style
}

type colors struct {
	fg, dim, accent, good, warn, bad, flashBG, selBG, selFG, border string
	series                                                          [4]string
}

var (
	darkColors = colors{
		fg: "#D0D0D0", dim: "#7A7A7A", accent: "#5FAFFF", good: "#5FD787", warn: "#FFD75F", bad: "#FF5F5F",
		flashBG: "#875F00", selBG: "#3A3A5A", selFG: "#FFFFFF", border: "#5F5F87",
		series: [4]string{"#5FD787", "#FF5F5F", "#FFD75F", "#AF87FF"},
	}
	lightColors = colors{
		fg: "#202020", dim: "#707070", accent: "#005FAF", good: "#008700", warn: "#AF5F00", bad: "#D70000",
		flashBG: "#FFD787", selBG: "#D0D8F0", selFG: "#000000", border: "#8787AF",
		series: [4]string{"#008700", "#D70000", "#AF5F00", "#5F00AF"},
	}
	contrastColors = colors{
		fg: "#FFFFFF", dim: "#FFFFFF", accent: "#00FFFF", good: "#00FF00", warn: "#FFFF00", bad: "#FF0000",
		flashBG: "#FFFF00", selBG: "#FFFFFF", selFG: "#000000", border: "#FFFFFF",
		series: [4]string{"#00FF00", "#FF0000", "#FFFF00", "#00FFFF"},
	}
)

// New builds the styles of a palette.
func New(p Palette) Styles {
	if p == Mono {
		return mono()
	}
	c := darkColors
	switch p {
	case Light:
		c = lightColors
	case HighContrast:
		c = contrastColors
	}
	col := func(s string) color.Color { return lipgloss.Color(s) }
	fg := lipgloss.NewStyle().Foreground(col(c.fg))
	s := Styles{
		Palette:     p,
		Title:       lipgloss.NewStyle().Bold(true).Foreground(col(c.accent)),
		TabActive:   lipgloss.NewStyle().Bold(true).Reverse(true).Foreground(col(c.accent)),
		TabInactive: fg,
		Heading:     lipgloss.NewStyle().Bold(true).Foreground(col(c.accent)),
		Header:      lipgloss.NewStyle().Bold(true).Underline(true).Foreground(col(c.fg)),
		Selected:    lipgloss.NewStyle().Bold(true).Foreground(col(c.selFG)).Background(col(c.selBG)),
		Flash:       lipgloss.NewStyle().Bold(true).Foreground(col(c.selFG)).Background(col(c.flashBG)),
		Dim:         lipgloss.NewStyle().Foreground(col(c.dim)),
		Label:       lipgloss.NewStyle().Foreground(col(c.dim)),
		Value:       lipgloss.NewStyle().Bold(true).Foreground(col(c.fg)),
		Good:        lipgloss.NewStyle().Foreground(col(c.good)),
		Warn:        lipgloss.NewStyle().Bold(true).Foreground(col(c.warn)),
		Bad:         lipgloss.NewStyle().Bold(true).Foreground(col(c.bad)),
		Accent:      lipgloss.NewStyle().Foreground(col(c.accent)),
		Key:         lipgloss.NewStyle().Bold(true).Foreground(col(c.accent)),
		Desc:        fg,
		Status:      lipgloss.NewStyle().Foreground(col(c.good)),
		StatusErr:   lipgloss.NewStyle().Bold(true).Foreground(col(c.bad)),
		Dialog:      lipgloss.NewStyle().Foreground(col(c.border)),
		DialogTitle: lipgloss.NewStyle().Bold(true).Foreground(col(c.accent)),
		Input:       fg,
		Cursor:      lipgloss.NewStyle().Reverse(true),
		GaugeFull:   lipgloss.NewStyle().Foreground(col(c.accent)),
		GaugeEmpty:  lipgloss.NewStyle().Foreground(col(c.dim)),
	}
	if p == HighContrast {
		// Faint grey vanishes on a projector: secondary text stays white.
		s.Dim = fg
		s.Label = fg.Bold(true)
		s.GaugeEmpty = fg
	}
	for i, name := range c.series {
		s.Series[i] = lipgloss.NewStyle().Foreground(col(name))
	}
	return s
}

// mono draws with attributes alone, as NO_COLOR asks.
func mono() Styles {
	plain := lipgloss.NewStyle()
	bold := plain.Bold(true)
	s := Styles{
		Palette:     Mono,
		Title:       bold,
		TabActive:   bold.Reverse(true),
		TabInactive: plain,
		Heading:     bold,
		Header:      bold.Underline(true),
		Selected:    plain.Reverse(true),
		Flash:       bold.Underline(true),
		Dim:         plain,
		Label:       plain,
		Value:       bold,
		Good:        plain,
		Warn:        bold,
		Bad:         bold.Underline(true),
		Accent:      plain,
		Key:         bold,
		Desc:        plain,
		Status:      plain,
		StatusErr:   bold,
		Dialog:      plain,
		DialogTitle: bold,
		Input:       plain,
		Cursor:      plain.Reverse(true),
		GaugeFull:   plain,
		GaugeEmpty:  plain,
	}
	for i := range s.Series {
		s.Series[i] = plain
	}
	return s
}
