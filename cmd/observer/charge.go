package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"observer/internal/telecom"
	"observer/internal/telecom/ledger"
	"observer/internal/telecom/money"
)

func init() {
	register(command{name: "charge", args: "TXN-ID ACCOUNT AMOUNT", summary: "charge an account through billing_engine_server and print the txnID", run: runCharge})
	register(command{name: "ledger", args: "verify", summary: "check the ledger's balances against its charges and top-ups", run: runLedger})
}

// errorKind names a charge error for the shell: what it is, then why.
func errorKind(err error) string {
	switch {
	case errors.Is(err, ledger.ErrUnknownAccount):
		return "unknown_account"
	case errors.Is(err, ledger.ErrInsufficientFunds):
		return "insufficient_funds"
	case errors.Is(err, ledger.ErrIdempotencyConflict):
		return "idempotency_conflict"
	case errors.Is(err, money.ErrInvalidAmount):
		return "invalid_amount"
	case errors.Is(err, ledger.ErrEmptyTxnID), errors.Is(err, ledger.ErrTxnIDTooLong), errors.Is(err, ledger.ErrInvalidTxnID):
		return "invalid_txn_id"
	}
	return "error"
}

func runCharge(e *env, args []string) error {
	fs := newFlags(e, "charge", "TXN-ID ACCOUNT AMOUNT",
		"Charges AMOUNT (decimal, e.g. 100.00) to ACCOUNT under TXN-ID and prints TXN-ID once the charge is durable.\n"+
			"Repeating a charge prints TXN-ID again and charges nothing. Errors print their kind and exit 1.")
	cf := addConfigFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 3 {
		return usageError("want TXN-ID, ACCOUNT and AMOUNT, got %d arguments", len(pos))
	}
	txn, account := pos[0], pos[1]
	amount, err := money.Parse(pos[2])
	if err != nil {
		return fmt.Errorf("%s: %w", errorKind(err), err)
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	l, err := telecom.OpenLedger(cfg.Billing)
	if err != nil {
		return err
	}
	defer l.Close()
	b, err := telecom.NewBilling(cfg.Billing, l)
	if err != nil {
		return err
	}
	n, stop, err := b.StartAlone("charge_sup")
	if err != nil {
		return err
	}
	defer stop()
	rec, err := b.Charge(n, txn, account, amount, 30*time.Second)
	if err != nil {
		return fmt.Errorf("%s: %w", errorKind(err), err)
	}
	fmt.Fprintln(e.stdout, rec.TxnID)
	return nil
}

func runLedger(e *env, args []string) error {
	fs := newFlags(e, "ledger", "verify", "ledger verify checks that every balance equals its opening amount minus its charges plus its top-ups\n"+
		"and that no txnID appears twice; it prints a one-line verdict and exits 1 on any violation.")
	cf := addConfigFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "verify" {
		return usageError("want the subcommand verify")
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	l, err := telecom.OpenLedger(cfg.Billing)
	if err != nil {
		return err
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := l.Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, rep.Verdict)
	if !rep.OK() {
		return &exitError{code: 1, err: errors.New("the ledger has violations")}
	}
	return nil
}
