package routing

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxDigits is the longest number, in digits, that Normalize accepts.
//
// E.164 caps international numbers at 15 digits, but dialed strings are
// longer in practice: international access codes (011, 00), carrier
// selection codes and vanity spellings whose extra letters the switch
// ignores. 32 leaves room for all of those while keeping the routing fast
// path on a fixed-size stack buffer.
const MaxDigits = 32

// maxNormalized is the size of a normalized number: a '+' and MaxDigits digits.
const maxNormalized = MaxDigits + 1

// Errors reported by Normalize, wrapped in a *NumberError. Every
// *NumberError also matches ErrInvalidNumber.
var (
	// ErrInvalidNumber matches every *NumberError.
	ErrInvalidNumber = errors.New("invalid number")
	// ErrEmptyNumber reports an empty input.
	ErrEmptyNumber = errors.New("empty number")
	// ErrNoDigits reports an input made only of separators or a '+'.
	ErrNoDigits = errors.New("no digits")
	// ErrNumberTooLong reports more than MaxDigits digits.
	ErrNumberTooLong = errors.New("too many digits")
	// ErrInvalidChar reports a character that is not a digit, letter or separator.
	ErrInvalidChar = errors.New("invalid character")
	// ErrMisplacedPlus reports a '+' after the first digit or a second '+'.
	ErrMisplacedPlus = errors.New("'+' not at start")
)

// NumberError describes why a dialed number was rejected.
type NumberError struct {
	Number string // the input, as given
	Pos    int    // 1-based character position of the offending character, or 0
	Char   rune   // the offending character, if Pos > 0
	Err    error  // ErrEmptyNumber, ErrNoDigits, ErrNumberTooLong, ErrInvalidChar or ErrMisplacedPlus
}

// Error returns a message naming the number, the problem and its position.
func (e *NumberError) Error() string { return "routing: " + e.detail() }

// detail is the message without the package prefix, for embedding in
// other errors.
func (e *NumberError) detail() string {
	num := e.Number
	if len(num) > 64 { // keep messages readable whatever was dialed
		num = num[:64] + "..."
	}
	return fmt.Sprintf("invalid number %q: %s", num, e.reason())
}

// reason describes the problem without naming the number.
func (e *NumberError) reason() string {
	switch e.Err {
	case ErrInvalidChar:
		return fmt.Sprintf("invalid character %q at position %d", e.Char, e.Pos)
	case ErrMisplacedPlus:
		return fmt.Sprintf("'+' at position %d, allowed only before the first digit", e.Pos)
	case ErrNumberTooLong:
		return fmt.Sprintf("more than %d digits (from position %d)", MaxDigits, e.Pos)
	}
	return e.Err.Error()
}

// Unwrap returns the specific cause.
func (e *NumberError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalidNumber, so callers can classify
// every rejection with a single check.
func (e *NumberError) Is(target error) bool { return target == ErrInvalidNumber }

// keypad maps 'a'..'z' to telephone keypad digits (ITU-T E.161).
const keypad = "22233344455566677778889999"

// Normalize returns number in canonical dialing form: digits only, with a
// single optional leading '+'. Spaces, dashes, dots and parentheses are
// dropped and letters of either case become their keypad digit, so
// "1-800-FORTUNE" becomes "18003678863". A '+' is accepted only before the
// first digit. Any other character, an input without digits, or more than
// MaxDigits digits yields a *NumberError.
func Normalize(number string) (string, error) {
	var buf [maxNormalized]byte
	n, err := normalize(&buf, number)
	if err != nil {
		return "", err
	}
	if string(buf[:n]) == number {
		return number, nil // already canonical: no allocation
	}
	return string(buf[:n]), nil
}

// normalize writes the canonical form of s into buf and returns its length.
// Taking a fixed array lets the router normalize on its own stack.
func normalize(buf *[maxNormalized]byte, s string) (int, error) {
	if s == "" {
		return 0, &NumberError{Number: s, Err: ErrEmptyNumber}
	}
	n, digits := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
			continue
		case c == '+':
			if n != 0 {
				return 0, numberError(s, i, ErrMisplacedPlus)
			}
			buf[0] = '+'
			n = 1
			continue
		case 'a' <= c && c <= 'z':
			c = keypad[c-'a']
		case 'A' <= c && c <= 'Z':
			c = keypad[c-'A']
		default:
			return 0, numberError(s, i, ErrInvalidChar)
		}
		if digits == MaxDigits {
			return 0, numberError(s, i, ErrNumberTooLong)
		}
		buf[n] = c
		n++
		digits++
	}
	if digits == 0 {
		return 0, &NumberError{Number: s, Err: ErrNoDigits}
	}
	return n, nil
}

// numberError builds the error for the character at byte offset i of s,
// reporting a character position so non-ASCII input reads naturally.
func numberError(s string, i int, err error) error {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return &NumberError{Number: s, Pos: utf8.RuneCountInString(s[:i]) + 1, Char: r, Err: err}
}
