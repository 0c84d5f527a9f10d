package routing

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"18003678863", "18003678863"},
		{"1-800-FORTUNE", "18003678863"},
		{"1-800-fortune", "18003678863"},
		{"1 (800) FoRtUnE", "18003678863"},
		{"+44 20 7946 0018", "+442079460018"},
		{"+1.415.555.0100", "+14155550100"},
		{" +1 415", "+1415"},
		{"(+1) 415", "+1415"},
		{"ABC DEF GHI JKL MNO PQRS TUV WXYZ", "22233344455566677778889999"},
		{"abcdefghijklmnopqrstuvwxyz", "22233344455566677778889999"},
		{"911", "911"},
		{"0", "0"},
		{strings.Repeat("9", MaxDigits), strings.Repeat("9", MaxDigits)},
		{"+" + strings.Repeat("1", MaxDigits), "+" + strings.Repeat("1", MaxDigits)},
		{"-1-", "1"},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalizeErrors(t *testing.T) {
	tests := []struct {
		in      string
		err     error
		pos     int
		char    rune
		message string
	}{
		{"", ErrEmptyNumber, 0, 0, `routing: invalid number "": empty number`},
		{" - ( ) . ", ErrNoDigits, 0, 0, `no digits`},
		{"+", ErrNoDigits, 0, 0, `no digits`},
		{"12*3", ErrInvalidChar, 3, '*', `invalid character '*' at position 3`},
		{"555#", ErrInvalidChar, 4, '#', `at position 4`},
		{"1,2", ErrInvalidChar, 2, ',', `','`},
		{"1;2", ErrInvalidChar, 2, ';', `';'`},
		{"1\t2", ErrInvalidChar, 2, '\t', `'\t'`},
		{"１２３", ErrInvalidChar, 1, '１', `'１' at position 1`},
		{"12é4", ErrInvalidChar, 3, 'é', `'é' at position 3`},
		{"1\xff", ErrInvalidChar, 2, '\uFFFD', `position 2`},
		{"1+2", ErrMisplacedPlus, 2, '+', `'+' at position 2`},
		{"++1", ErrMisplacedPlus, 2, '+', `'+' at position 2`},
		{"a+", ErrMisplacedPlus, 2, '+', `'+' at position 2`},
		{strings.Repeat("1", MaxDigits+1), ErrNumberTooLong, MaxDigits + 1, '1', `more than 32 digits`},
		{"+" + strings.Repeat("1-", MaxDigits) + "Z", ErrNumberTooLong, 2*MaxDigits + 2, 'Z', `position 66`},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if err == nil {
			t.Errorf("Normalize(%q) = %q, nil; want error", tt.in, got)
			continue
		}
		if !errors.Is(err, tt.err) || !errors.Is(err, ErrInvalidNumber) {
			t.Errorf("Normalize(%q) error %v; want %v and ErrInvalidNumber", tt.in, err, tt.err)
		}
		var ne *NumberError
		if !errors.As(err, &ne) {
			t.Fatalf("Normalize(%q) error %T; want *NumberError", tt.in, err)
		}
		if ne.Pos != tt.pos || ne.Char != tt.char || ne.Number != tt.in {
			t.Errorf("Normalize(%q): Pos %d Char %q Number %q; want %d %q", tt.in, ne.Pos, ne.Char, ne.Number, tt.pos, tt.char)
		}
		if !strings.Contains(err.Error(), tt.message) {
			t.Errorf("Normalize(%q) error %q; want it to contain %q", tt.in, err, tt.message)
		}
	}
}

func TestNormalizeNoAllocWhenCanonical(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Normalize("+18003678863"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Normalize of a canonical number allocates %v times; want 0", allocs)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"", "+", "1-800-FORTUNE", "+44 (20) 7946.0018", "12*3", "1+2", "++1",
		"１２３", "\xff", "abcdefghijklmnopqrstuvwxyz", strings.Repeat("9", MaxDigits+1),
		" - ( ) . ", "911", "+" + strings.Repeat("z", MaxDigits),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			if out != "" {
				t.Errorf("Normalize(%q) = %q with error %v; want empty result", in, out, err)
			}
			var ne *NumberError
			if !errors.As(err, &ne) || !errors.Is(err, ErrInvalidNumber) {
				t.Errorf("Normalize(%q) error %v (%T); want *NumberError", in, err, err)
			}
			return
		}
		digits := strings.TrimPrefix(out, "+")
		if digits == "" || len(digits) > MaxDigits {
			t.Errorf("Normalize(%q) = %q: want 1 to %d digits", in, out, MaxDigits)
		}
		for i := 0; i < len(digits); i++ {
			if digits[i] < '0' || digits[i] > '9' {
				t.Fatalf("Normalize(%q) = %q: non-digit at %d", in, out, i)
			}
		}
		again, err := Normalize(out)
		if err != nil || again != out {
			t.Errorf("Normalize(Normalize(%q)) = %q, %v; want %q, nil", in, again, err, out)
		}
	})
}
