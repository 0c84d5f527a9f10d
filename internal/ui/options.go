package ui

import (
	"fmt"
	"strings"
	"time"
)

// Theme chooses the UI's colours.
type Theme uint8

// The themes.
const (
	// ThemeAuto picks dark or light from the terminal's background colour.
	ThemeAuto Theme = iota
	// ThemeDark is for dark backgrounds.
	ThemeDark
	// ThemeLight is for light backgrounds.
	ThemeLight
	// ThemeHighContrast is for projectors: saturated colours, nothing faint.
	ThemeHighContrast
)

// ParseTheme reads a theme name: auto, dark, light or high-contrast.
func ParseTheme(s string) (Theme, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return ThemeAuto, nil
	case "dark":
		return ThemeDark, nil
	case "light":
		return ThemeLight, nil
	case "high-contrast", "highcontrast", "contrast", "projector":
		return ThemeHighContrast, nil
	}
	return ThemeAuto, fmt.Errorf("ui: unknown theme %q (want auto, dark, light or high-contrast)", s)
}

// DefaultRefresh is how often the display is refreshed unless Options say otherwise.
const DefaultRefresh = 100 * time.Millisecond

// DefaultEventBuffer is how many events the Events view keeps.
const DefaultEventBuffer = 2000

// Options configure the UI. The zero value is a dark-or-light, read-write
// UI refreshing every DefaultRefresh and opening on the Overview.
type Options struct {
	// Refresh is the interval between snapshots of the node.
	Refresh time.Duration
	// ReadOnly hides and disables every key that changes the system:
	// exit signals, upgrades, chaos, load and the command palette.
	ReadOnly bool
	// Theme chooses the colours.
	Theme Theme
	// NoColor draws with attributes only; Run sets it when NO_COLOR is set.
	NoColor bool
	// View is the view shown first, by name (see ViewNames); empty is the Overview.
	View string
	// EventBuffer is how many events the Events view keeps.
	EventBuffer int
}

func (o Options) withDefaults() Options {
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = DefaultEventBuffer
	}
	return o
}

// viewID identifies one of the six views.
type viewID uint8

const (
	viewOverview viewID = iota
	viewApps
	viewProcs
	viewLedger
	viewTables
	viewEvents
	numViews
)

var viewInfo = [numViews]struct {
	name, long, short string
}{
	{"overview", "Overview", "Overview"},
	{"applications", "Applications", "Apps"},
	{"processes", "Processes", "Procs"},
	{"ledger", "Ledger", "Ledger"},
	{"tables", "Tables", "Tables"},
	{"events", "Events", "Events"},
}

// ViewNames lists the names RenderFrame and Options.View accept, in tab order.
func ViewNames() []string {
	out := make([]string, numViews)
	for i := range viewInfo {
		out[i] = viewInfo[i].name
	}
	return out
}

func parseView(s string) (viewID, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return viewOverview, nil
	}
	for i, v := range viewInfo {
		if t == v.name || t == strings.ToLower(v.short) || t == fmt.Sprint(i+1) {
			return viewID(i), nil
		}
	}
	return 0, fmt.Errorf("ui: unknown view %q (want one of %s)", s, strings.Join(ViewNames(), ", "))
}
