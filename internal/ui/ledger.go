package ui

import (
	"math"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// ledgerPane shows the ledger: throughput, the connection pool, the last
// verification, recent charges and the busiest and lowest accounts.
type ledgerPane struct {
	w, h   int
	scroll int // first recent charge shown
}

// SetSize sets the pane's size in cells.
func (p *ledgerPane) SetSize(w, h int) { p.w, p.h = w, h }

func (p *ledgerPane) move(d int) { p.scroll = max(p.scroll+d, 0) }

func (p *ledgerPane) key(keys *keyMap, k tea.KeyPressMsg) {
	switch {
	case key.Matches(k, keys.Up):
		p.move(-1)
	case key.Matches(k, keys.Down):
		p.move(1)
	case key.Matches(k, keys.PageUp):
		p.move(-10)
	case key.Matches(k, keys.PageDown):
		p.move(10)
	case key.Matches(k, keys.Home):
		p.scroll = 0
	}
}

// Render draws the summary lines and the three tables.
func (p *ledgerPane) Render(c *shared) []string {
	st := c.st
	l := &c.tel.Ledger
	r := &c.telRate
	lines := make([]string, 0, p.h)

	head := st.Heading.Render("Ledger")
	if l.Backend != "" {
		head += st.Dim.Render(" (" + l.Backend + ")")
	}
	chargesPS, hitsPS := math.NaN(), math.NaN()
	if r.valid {
		chargesPS, hitsPS = r.charges, r.idempotent
	}
	head += st.Dim.Render(" · charges/s ") + st.Value.Render(rate(chargesPS)) +
		st.Dim.Render(" · total ") + commas(int64(l.Charges)) +
		st.Dim.Render(" · idempotent hits ") + st.Value.Render(commas(int64(l.IdempotentHits))) +
		st.Dim.Render(" ("+rate(hitsPS)+"/s)")
	lines = append(lines, fit(head, p.w))

	pool := l.Pool
	size := pool.Busy + pool.Idle
	poolLine := st.Label.Render("Pool ") + "busy " + st.Value.Render(strconv.Itoa(pool.Busy)) +
		" idle " + st.Value.Render(strconv.Itoa(pool.Idle)) + " waiting "
	if pool.Waiting > 0 {
		poolLine += st.Warn.Render(strconv.Itoa(pool.Waiting))
	} else {
		poolLine += st.Value.Render("0")
	}
	if size > 0 {
		filled := pool.Busy * 12 / size
		style := st.Good
		if pool.Waiting > 0 {
			style = st.Warn
		}
		poolLine += "  " + style.Render(strings.Repeat("█", filled)) + st.GaugeEmpty.Render(strings.Repeat("░", 12-filled))
	}
	verify := st.Dim.Render("not run yet")
	if v := l.Verify; v.Done {
		verdict := oneLine(v.Verdict)
		if v.OK {
			verify = st.Good.Render("✓ " + verdict)
		} else {
			verify = st.Bad.Render("✗ " + verdict)
		}
		if !v.At.IsZero() {
			verify += st.Dim.Render(" (" + ago(c.now, v.At) + ")")
		}
	}
	lines = append(lines, fit(poolLine+st.Label.Render("   Verify ")+verify, p.w))
	lines = append(lines, "")

	rest := p.h - len(lines)
	if p.w >= 140 {
		third := (p.w - 4) / 3
		recentW := p.w - 4 - 2*third
		cols := joinCols(2,
			block(p.recent(c, recentW, rest), recentW, rest),
			block(p.accounts(c, "Busiest accounts", l.Busiest, third, rest), third, rest),
			block(p.accounts(c, "Lowest balances", l.Lowest, third, rest), third, rest))
		return block(append(lines, cols...), p.w, p.h)
	}
	top := (rest + 1) / 2
	lines = append(lines, block(p.recent(c, p.w, top), p.w, top)...)
	half := (p.w - 2) / 2
	bottom := rest - top
	lines = append(lines, joinCols(2,
		block(p.accounts(c, "Busiest accounts", l.Busiest, half, bottom), half, bottom),
		block(p.accounts(c, "Lowest balances", l.Lowest, p.w-2-half, bottom), p.w-2-half, bottom))...)
	return block(lines, p.w, p.h)
}

func (p *ledgerPane) recent(c *shared, w, h int) []string {
	st := c.st
	rows := c.tel.Ledger.Recent
	lines := []string{st.Heading.Render("Recent charges") + st.Dim.Render(" ("+strconv.Itoa(len(rows))+")")}
	if h < 2 {
		return lines
	}
	amountW := 12
	accW := 10
	txnW := max(w-8-1-accW-1-amountW-1-3, 6)
	lines = append(lines, st.Header.Render(fit(cell("TIME", 8)+" "+cell("TXN", txnW)+" "+cell("ACCOUNT", accW)+" "+cellRight("AMOUNT", amountW)+"   ", w)))
	if len(rows) == 0 {
		return append(lines, st.Dim.Render("  none yet"))
	}
	p.scroll = clamp(p.scroll, 0, max(len(rows)-(h-2), 0))
	for _, r := range rows[p.scroll:] {
		if len(lines) == h {
			break
		}
		flag := ""
		if r.Replayed {
			flag = " ↺"
		}
		line := cell(r.At.Format("15:04:05"), 8) + " " + cell(r.TxnID, txnW) + " " + cell(r.Account, accW) + " " + cellRight(r.Amount, amountW) + flag
		lines = append(lines, line)
	}
	return lines
}

func (p *ledgerPane) accounts(c *shared, title string, rows []AccountView, w, h int) []string {
	st := c.st
	lines := []string{st.Heading.Render(title)}
	if h < 2 {
		return lines
	}
	balW, chW := 14, 8
	idW := max(w-balW-chW-2, 6)
	lines = append(lines, st.Header.Render(fit(cell("ACCOUNT", idW)+" "+cellRight("BALANCE", balW)+" "+cellRight("CHARGES", chW), w)))
	if len(rows) == 0 {
		return append(lines, st.Dim.Render("  none yet"))
	}
	for _, a := range rows {
		if len(lines) == h {
			break
		}
		bal := cellRight(a.Balance, balW)
		if strings.HasPrefix(strings.TrimSpace(a.Balance), "-") {
			bal = st.Bad.Render(bal)
		}
		lines = append(lines, cell(a.ID, idW)+" "+bal+" "+cellRight(commas(int64(a.Charges)), chW))
	}
	return lines
}
