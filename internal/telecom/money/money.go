// Package money represents monetary amounts as integer minor units (cents)
// and converts them to and from decimal text.
//
// Floating point is never used: binary fractions cannot represent most
// decimal cent values exactly, and a billing system must add up to the cent.
package money

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Amount is a monetary value in minor units (hundredths, e.g. cents).
type Amount int64

// MinorDigits is the number of fractional decimal digits an Amount carries.
const MinorDigits = 2

// minorPerMajor is 10^MinorDigits.
const minorPerMajor = 100

// MaxAmount is the largest representable Amount (92233720368547758.07).
const MaxAmount = Amount(math.MaxInt64)

// ErrInvalidAmount is the umbrella sentinel every parse or range error
// matches with errors.Is; the more specific sentinels below wrap it.
var ErrInvalidAmount = errors.New("invalid amount")

// Specific reasons an amount is rejected; each matches ErrInvalidAmount too.
var (
	// ErrEmpty reports empty or all-whitespace input.
	ErrEmpty = fmt.Errorf("%w: empty", ErrInvalidAmount)
	// ErrSyntax reports text that is not a plain decimal number.
	ErrSyntax = fmt.Errorf("%w: not a decimal number", ErrInvalidAmount)
	// ErrTooPrecise reports more fractional digits than MinorDigits.
	ErrTooPrecise = fmt.Errorf("%w: too precise", ErrInvalidAmount)
	// ErrOverflow reports a value outside the int64 range of minor units.
	ErrOverflow = fmt.Errorf("%w: out of range", ErrInvalidAmount)
	// ErrNegative reports a negative value where only positive ones are allowed.
	ErrNegative = fmt.Errorf("%w: negative", ErrInvalidAmount)
	// ErrZero reports a zero value where only positive ones are allowed.
	ErrZero = fmt.Errorf("%w: zero", ErrInvalidAmount)
)

// ParseError records the input that failed to parse and why.
type ParseError struct {
	Input string // the rejected text, quoted in messages
	Err   error  // one of the specific sentinels above
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("money: parse %q: %v", e.Input, e.Err)
}

// Unwrap exposes the sentinel so errors.Is works on the result.
func (e *ParseError) Unwrap() error { return e.Err }

// Parse converts positive decimal text such as "100", "0.5" or "100.00" into
// an Amount. It is the parser for prices and charges: zero, negative values,
// signs, exponents, words such as NaN or Inf, surrounding whitespace and more
// than two fractional digits are all rejected.
func Parse(s string) (Amount, error) {
	if len(s) > 0 && s[0] == '-' {
		return 0, &ParseError{Input: s, Err: ErrNegative}
	}
	a, err := parse(s, false)
	if err != nil {
		return 0, err
	}
	if a == 0 {
		return 0, &ParseError{Input: s, Err: ErrZero}
	}
	return a, nil
}

// ParseSigned is like Parse but also accepts zero and a leading '-', for
// values such as balances that may legitimately be zero or negative.
func ParseSigned(s string) (Amount, error) {
	return parse(s, true)
}

// parse implements Parse and ParseSigned. The magnitude is accumulated as a
// uint64 so that the most negative int64 (one more than the largest positive
// value) can be represented without overflow.
func parse(s string, signed bool) (Amount, error) {
	fail := func(err error) (Amount, error) { return 0, &ParseError{Input: s, Err: err} }
	if isBlank(s) {
		return fail(ErrEmpty)
	}
	body := s
	neg := false
	if signed && len(body) > 0 && body[0] == '-' {
		neg = true
		body = body[1:]
	}
	intPart, fracPart, hasDot := strings.Cut(body, ".")
	if intPart == "" || (hasDot && fracPart == "") {
		// ".5" and "5." are ambiguous-looking; require digits on both sides.
		return fail(ErrSyntax)
	}
	if !allDigits(intPart) || !allDigits(fracPart) {
		return fail(ErrSyntax)
	}
	if len(fracPart) > MinorDigits {
		return fail(ErrTooPrecise)
	}

	limit := uint64(math.MaxInt64)
	if neg {
		limit++ // |math.MinInt64|
	}
	var mag uint64
	for i := 0; i < len(intPart); i++ {
		d := uint64(intPart[i] - '0')
		if mag > (limit-d)/10 {
			return fail(ErrOverflow)
		}
		mag = mag*10 + d
	}
	// Scale the whole part to minor units, then add the padded fraction.
	for range MinorDigits {
		if mag > limit/10 {
			return fail(ErrOverflow)
		}
		mag *= 10
	}
	var frac uint64
	for i := range MinorDigits {
		frac *= 10
		if i < len(fracPart) {
			frac += uint64(fracPart[i] - '0')
		}
	}
	if mag > limit-frac {
		return fail(ErrOverflow)
	}
	mag += frac
	if neg {
		// Two's complement negation of a magnitude <= 2^63 is exact.
		return Amount(-int64(mag-1) - 1), nil
	}
	return Amount(mag), nil
}

// String formats the amount with exactly two fractional digits, e.g. "100.00"
// or "-3.50", which Parse (or ParseSigned for values <= 0) reads back.
func (a Amount) String() string {
	var buf [24]byte
	mag := uint64(a)
	neg := a < 0
	if neg {
		mag = -mag // also correct for math.MinInt64
	}
	frac := mag % minorPerMajor
	b := buf[:0]
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendUint(b, mag/minorPerMajor, 10)
	b = append(b, '.', byte('0'+frac/10), byte('0'+frac%10))
	return string(b)
}

// Add returns a+b, or ErrOverflow if the sum does not fit in an Amount.
func (a Amount) Add(b Amount) (Amount, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, ErrOverflow
	}
	return s, nil
}

// Sub returns a-b, or ErrOverflow if the difference does not fit in an Amount.
func (a Amount) Sub(b Amount) (Amount, error) {
	d := a - b
	if (b > 0 && d > a) || (b < 0 && d < a) {
		return 0, ErrOverflow
	}
	return d, nil
}

// isBlank reports whether s is empty or only ASCII whitespace.
func isBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\n', '\r', '\v', '\f':
		default:
			return false
		}
	}
	return true
}

// allDigits reports whether s consists only of ASCII digits; Unicode digits
// are rejected on purpose so that only one spelling of a number is valid.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
