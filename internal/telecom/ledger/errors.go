package ledger

import (
	"errors"
	"fmt"

	"observer/internal/telecom/money"
)

// Sentinel errors; match them with errors.Is. Errors carrying detail are the
// struct types below, which unwrap to these sentinels.
var (
	// ErrUnknownAccount reports an account id that does not exist.
	ErrUnknownAccount = errors.New("ledger: unknown account")
	// ErrInsufficientFunds reports a charge larger than balance + credit limit.
	ErrInsufficientFunds = errors.New("ledger: insufficient funds")
	// ErrInvalidAmount reports a non-positive or out-of-range amount. It is
	// money.ErrInvalidAmount so that parse and ledger errors match alike.
	ErrInvalidAmount = money.ErrInvalidAmount
	// ErrIdempotencyConflict reports a txnID reused with another account or amount.
	ErrIdempotencyConflict = errors.New("ledger: idempotency conflict")
	// ErrEmptyTxnID reports an empty transaction id.
	ErrEmptyTxnID = errors.New("ledger: empty transaction id")
	// ErrTxnIDTooLong reports a transaction id longer than MaxTxnIDLen bytes.
	ErrTxnIDTooLong = errors.New("ledger: transaction id too long")
	// ErrInvalidTxnID reports a transaction id that is not printable UTF-8.
	ErrInvalidTxnID = errors.New("ledger: invalid transaction id")
	// ErrInvalidAccountID reports an account id unfit for CreateAccount.
	ErrInvalidAccountID = errors.New("ledger: invalid account id")
	// ErrAccountExists reports CreateAccount on an id that is already taken.
	ErrAccountExists = errors.New("ledger: account already exists")
	// ErrBalanceOverflow reports a top-up that would overflow the balance.
	ErrBalanceOverflow = errors.New("ledger: balance overflow")
	// ErrClosed reports use of a ledger after Close.
	ErrClosed = errors.New("ledger: closed")
	// ErrOutcomeUnknown reports that the caller stopped waiting (context done)
	// or the commit failed ambiguously: the operation may or may not have been
	// applied, and retrying with the same txnID tells which, exactly once.
	ErrOutcomeUnknown = errors.New("ledger: outcome unknown, retry with the same transaction id")
	// ErrSchemaTooNew reports a database migrated by a newer build.
	ErrSchemaTooNew = errors.New("ledger: database schema is newer than this build")
)

// errTxnTaken is a store's insert failing because a txnID it was to write
// is recorded already (see store.insertFindsTaken). The batch is then run
// again with its txnIDs looked up first; callers never see it.
var errTxnTaken = errors.New("ledger: transaction id recorded already")

// InsufficientFundsError details a rejected charge; it matches ErrInsufficientFunds.
type InsufficientFundsError struct {
	Account   string
	Amount    money.Amount // requested charge
	Available money.Amount // balance + credit limit at the time of the check
}

// Error implements error.
func (e *InsufficientFundsError) Error() string {
	return fmt.Sprintf("ledger: insufficient funds: account %s has %s available, charge needs %s",
		e.Account, e.Available, e.Amount)
}

// Unwrap returns ErrInsufficientFunds.
func (e *InsufficientFundsError) Unwrap() error { return ErrInsufficientFunds }

// ConflictError details an idempotency conflict; it matches ErrIdempotencyConflict.
type ConflictError struct {
	TxnID           string
	Account         string       // account of the rejected request
	Amount          money.Amount // amount of the rejected request
	ExistingAccount string       // account recorded under TxnID
	ExistingAmount  money.Amount // amount recorded under TxnID
}

// Error implements error.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("ledger: idempotency conflict: txn %q already recorded for %s %s, request is for %s %s",
		e.TxnID, e.ExistingAccount, e.ExistingAmount, e.Account, e.Amount)
}

// Unwrap returns ErrIdempotencyConflict.
func (e *ConflictError) Unwrap() error { return ErrIdempotencyConflict }

// unknownAccount wraps ErrUnknownAccount with the offending id.
func unknownAccount(id string) error {
	return fmt.Errorf("%w: %q", ErrUnknownAccount, id)
}
