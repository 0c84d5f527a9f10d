package ui

import (
	"strings"
	"unicode"

	tea "charm.land/bubbletea/v2"

	"observer/internal/ui/styles"
)

// lineInput is a one-line text field: the filter, the command palette and
// the custom exit reason. It is deliberately small: the keys a shell line
// editor has, no completion, no clipboard access.
type lineInput struct {
	prompt string
	value  []rune
	pos    int
}

// set replaces the text and puts the cursor at its end.
func (in *lineInput) set(s string) {
	in.value = []rune(s)
	in.pos = len(in.value)
}

// String returns the text typed so far.
func (in *lineInput) String() string { return string(in.value) }

// insert types s at the cursor.
func (in *lineInput) insert(s string) {
	var add []rune
	for _, r := range s {
		if unicode.IsPrint(r) {
			add = append(add, r)
		}
	}
	in.value = append(in.value[:in.pos], append(add, in.value[in.pos:]...)...)
	in.pos += len(add)
}

// key edits the text; it reports false for keys it does not use (enter,
// esc, arrows up and down), which the owner then handles.
func (in *lineInput) key(k tea.KeyPressMsg) bool {
	switch k.String() {
	case "backspace", "ctrl+h":
		if in.pos > 0 {
			in.value = append(in.value[:in.pos-1], in.value[in.pos:]...)
			in.pos--
		}
	case "delete", "ctrl+d":
		if in.pos < len(in.value) {
			in.value = append(in.value[:in.pos], in.value[in.pos+1:]...)
		}
	case "left", "ctrl+b":
		in.pos = max(in.pos-1, 0)
	case "right", "ctrl+f":
		in.pos = min(in.pos+1, len(in.value))
	case "home", "ctrl+a":
		in.pos = 0
	case "end", "ctrl+e":
		in.pos = len(in.value)
	case "ctrl+u":
		in.value = append(in.value[:0], in.value[in.pos:]...)
		in.pos = 0
	case "ctrl+k":
		in.value = in.value[:in.pos]
	case "ctrl+w", "alt+backspace":
		i := in.pos
		for i > 0 && in.value[i-1] == ' ' {
			i--
		}
		for i > 0 && in.value[i-1] != ' ' {
			i--
		}
		in.value = append(in.value[:i], in.value[in.pos:]...)
		in.pos = i
	case "space":
		in.insert(" ")
	default:
		if k.Text == "" || k.Mod.Contains(tea.ModCtrl) || k.Mod.Contains(tea.ModAlt) {
			return false
		}
		in.insert(k.Text)
	}
	return true
}

// view draws the prompt and the text, scrolled so the cursor stays inside w cells.
func (in *lineInput) view(st *styles.Styles, w int, focused bool) string {
	room := w - len([]rune(in.prompt)) - 1
	if room < 1 {
		return fit(in.prompt, w)
	}
	start := max(0, in.pos-room)
	end := min(len(in.value), start+room)
	before := string(in.value[start:in.pos])
	var b strings.Builder
	b.WriteString(st.Key.Render(in.prompt))
	b.WriteString(st.Input.Render(before))
	if focused {
		under := " "
		if in.pos < len(in.value) {
			under = string(in.value[in.pos])
		}
		b.WriteString(st.Cursor.Render(under))
		if in.pos < end {
			b.WriteString(st.Input.Render(string(in.value[in.pos+1 : end])))
		}
	} else {
		b.WriteString(st.Input.Render(string(in.value[in.pos:end])))
	}
	return fit(b.String(), w)
}
