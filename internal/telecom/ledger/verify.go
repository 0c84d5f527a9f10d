package ledger

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"observer/internal/telecom/money"
)

// ViolationKind classifies a broken ledger invariant.
type ViolationKind string

// The invariants Verify checks.
const (
	// BalanceMismatch: balance != opening_balance - sum(charges) + sum(topups).
	BalanceMismatch ViolationKind = "balance-mismatch"
	// OverLimit: balance is below -credit_limit.
	OverLimit ViolationKind = "over-limit"
	// DuplicateTxn: a txnID is recorded more than once.
	DuplicateTxn ViolationKind = "duplicate-txn"
	// OrphanEntry: a charge or top-up refers to an account that does not exist.
	OrphanEntry ViolationKind = "orphan-entry"
	// NonPositiveAmount: a charge or top-up amount is zero or negative.
	NonPositiveAmount ViolationKind = "non-positive-amount"
	// StorageCorruption: the database's own consistency check failed.
	StorageCorruption ViolationKind = "storage"
	// IndexMismatch: a table that only serves another disagrees with it
	// (SQLite: charge_ids with charges, balances with accounts).
	IndexMismatch ViolationKind = "index-mismatch"
)

// maxReported bounds how many violations a Report keeps in detail; the total
// is always counted.
const maxReported = 100

// Violation is one broken invariant.
type Violation struct {
	Kind    ViolationKind
	Subject string // account id or txnID concerned
	Detail  string
}

// String renders the violation for a verdict line.
func (v Violation) String() string {
	return fmt.Sprintf("%s %s: %s", v.Kind, v.Subject, v.Detail)
}

// Report is the result of Verify.
type Report struct {
	Accounts       int64
	Charges        int64
	TopUps         int64
	ViolationCount int64       // total number of violations found
	Violations     []Violation // the first ones, at most 100
	Verdict        string      // one line, e.g. "ledger OK: 10000 accounts, 5 charges, 0 violations"
}

// OK reports whether no invariant is violated.
func (r Report) OK() bool { return r.ViolationCount == 0 }

// String returns the verdict.
func (r Report) String() string { return r.Verdict }

func (r *Report) add(kind ViolationKind, subject, format string, args ...any) {
	r.ViolationCount++
	if len(r.Violations) < maxReported {
		r.Violations = append(r.Violations, Violation{Kind: kind, Subject: subject, Detail: fmt.Sprintf(format, args...)})
	}
}

// Verify checks, on one consistent snapshot, that every balance equals its
// opening balance minus its charges plus its top-ups, that no balance is
// beyond its credit limit, that no txnID appears twice and that every entry
// belongs to an existing account. A non-nil error means the check itself could
// not run; violations are reported in the Report.
func (l *Ledger) Verify(ctx context.Context) (Report, error) {
	if l.closed.Load() {
		return Report{}, ErrClosed
	}
	var rep Report
	err := l.st.snapshot(ctx, func(q querier) error {
		rep = Report{}
		return verify(ctx, q, l.st.integrityQuery(), l.st.indexChecks(), &rep)
	})
	if err != nil {
		return Report{}, fmt.Errorf("ledger: verify: %w", err)
	}
	if rep.OK() {
		rep.Verdict = fmt.Sprintf("ledger OK: %d accounts, %d charges, 0 violations", rep.Accounts, rep.Charges)
	} else {
		const shown = 3
		var parts []string
		for _, v := range rep.Violations[:min(shown, len(rep.Violations))] {
			parts = append(parts, v.String())
		}
		more := ""
		if rep.ViolationCount > shown {
			more = "; …"
		}
		rep.Verdict = fmt.Sprintf("ledger FAILED: %d accounts, %d charges, %d violations: %s%s",
			rep.Accounts, rep.Charges, rep.ViolationCount, strings.Join(parts, "; "), more)
	}
	return rep, nil
}

// accountTotals is what the journal says about one account.
type accountTotals struct {
	charges, topups money.Amount
}

func verify(ctx context.Context, q querier, integrity string, indexChecks []string, rep *Report) error {
	if integrity != "" {
		msgs, err := queryStrings(ctx, q, integrity)
		if err != nil {
			return err
		}
		if len(msgs) != 1 || msgs[0] != "ok" {
			for _, m := range msgs {
				rep.add(StorageCorruption, "database", "%s", m)
			}
		}
	}

	for _, check := range indexChecks {
		rs, err := q.query(ctx, check)
		if err != nil {
			return err
		}
		for rs.Next() {
			var id, detail string
			if err := rs.Scan(&id, &detail); err != nil {
				rs.Close()
				return err
			}
			rep.add(IndexMismatch, id, "%s", detail)
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return err
		}
	}

	type acct struct{ opening, balance, limit money.Amount }
	accounts := map[string]acct{}
	rs, err := q.query(ctx, "SELECT id, opening_balance, balance, credit_limit FROM account_balances")
	if err != nil {
		return err
	}
	for rs.Next() {
		var (
			id       string
			o, b, cl int64
		)
		if err := rs.Scan(&id, &o, &b, &cl); err != nil {
			rs.Close()
			return err
		}
		accounts[id] = acct{money.Amount(o), money.Amount(b), money.Amount(cl)}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return err
	}
	rep.Accounts = int64(len(accounts))

	totals := map[string]*accountTotals{}
	for k, table := range tables {
		rs, err := q.query(ctx, "SELECT account_id, CAST(SUM(amount) AS BIGINT), COUNT(*) FROM "+table+" GROUP BY account_id")
		if err != nil {
			return err
		}
		for rs.Next() {
			var (
				id       string
				sum, cnt int64
			)
			if err := rs.Scan(&id, &sum, &cnt); err != nil {
				rs.Close()
				return err
			}
			t := totals[id]
			if t == nil {
				t = &accountTotals{}
				totals[id] = t
			}
			if opKind(k) == opCharge {
				t.charges = money.Amount(sum)
				rep.Charges += cnt
			} else {
				t.topups = money.Amount(sum)
				rep.TopUps += cnt
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}

		// The UNIQUE constraint should make these impossible; checking
		// anyway catches a dropped constraint or a corrupt index.
		dups, err := queryStrings(ctx, q, "SELECT txn_id FROM "+table+" GROUP BY txn_id HAVING COUNT(*) > 1 ORDER BY txn_id")
		if err != nil {
			return err
		}
		for _, id := range dups {
			rep.add(DuplicateTxn, id, "%s txnID recorded more than once", opKind(k))
		}
		bad, err := queryStrings(ctx, q, "SELECT txn_id FROM "+table+" WHERE amount <= 0 ORDER BY txn_id")
		if err != nil {
			return err
		}
		for _, id := range bad {
			rep.add(NonPositiveAmount, id, "%s amount is not positive", opKind(k))
		}
	}

	ids := make([]string, 0, len(accounts)+len(totals))
	for id := range accounts {
		ids = append(ids, id)
	}
	for id := range totals {
		if _, ok := accounts[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		a, known := accounts[id]
		t := totals[id]
		if t == nil {
			t = &accountTotals{}
		}
		if !known {
			rep.add(OrphanEntry, id, "charges %s and top-ups %s for an account that does not exist", t.charges, t.topups)
			continue
		}
		want, err := a.opening.Sub(t.charges)
		if err == nil {
			want, err = want.Add(t.topups)
		}
		switch {
		case err != nil:
			rep.add(BalanceMismatch, id, "opening %s - charges %s + top-ups %s overflows", a.opening, t.charges, t.topups)
		case a.balance != want:
			rep.add(BalanceMismatch, id, "balance %s, expected %s (opening %s - charges %s + top-ups %s)",
				a.balance, want, a.opening, t.charges, t.topups)
		}
		if a.balance < -a.limit {
			rep.add(OverLimit, id, "balance %s is below the credit limit -%s", a.balance, a.limit)
		}
	}
	return nil
}

// queryStrings returns the first column of every row.
func queryStrings(ctx context.Context, q querier, sql string) ([]string, error) {
	rs, err := q.query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rs.Err()
}
