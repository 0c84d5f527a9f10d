package money

import (
	"errors"
	"math"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Amount
		err  error // nil means success
	}{
		{"100.00", 10000, nil},
		{"100", 10000, nil},
		{"0.5", 50, nil},
		{"100.5", 10050, nil},
		{"0.01", 1, nil},
		{"007.10", 710, nil},
		{"92233720368547758.07", MaxAmount, nil},

		{"", 0, ErrEmpty},
		{"   ", 0, ErrEmpty},
		{"\t\n", 0, ErrEmpty},
		{"0", 0, ErrZero},
		{"0.00", 0, ErrZero},
		{"-1", 0, ErrNegative},
		{"-0.01", 0, ErrNegative},
		{"-0", 0, ErrNegative},
		{"1.001", 0, ErrTooPrecise},
		{"0.000", 0, ErrTooPrecise},
		{"92233720368547758.08", 0, ErrOverflow},
		{"92233720368547759", 0, ErrOverflow},
		{"99999999999999999999999", 0, ErrOverflow},
		{"+1", 0, ErrSyntax},
		{" 1", 0, ErrSyntax},
		{"1 ", 0, ErrSyntax},
		{"1e3", 0, ErrSyntax},
		{"1E3", 0, ErrSyntax},
		{"1.5e2", 0, ErrSyntax},
		{"NaN", 0, ErrSyntax},
		{"Inf", 0, ErrSyntax},
		{"-Inf", 0, ErrNegative},
		{"ten", 0, ErrSyntax},
		{".5", 0, ErrSyntax},
		{"5.", 0, ErrSyntax},
		{"1.2.3", 0, ErrSyntax},
		{"1,000.00", 0, ErrSyntax},
		{"0x10", 0, ErrSyntax},
		{"１", 0, ErrSyntax}, // full-width digit
		{"1_000", 0, ErrSyntax},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.err == nil {
			if err != nil || got != tt.want {
				t.Errorf("Parse(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("Parse(%q) error = %v; want %v", tt.in, err, tt.err)
		}
		if !errors.Is(err, ErrInvalidAmount) {
			t.Errorf("Parse(%q) error %v does not match ErrInvalidAmount", tt.in, err)
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Input != tt.in {
			t.Errorf("Parse(%q) error %v is not a *ParseError carrying the input", tt.in, err)
		}
		if got != 0 {
			t.Errorf("Parse(%q) returned %d alongside an error", tt.in, got)
		}
	}
}

func TestParseSigned(t *testing.T) {
	tests := []struct {
		in   string
		want Amount
		err  error
	}{
		{"0", 0, nil},
		{"0.00", 0, nil},
		{"-0", 0, nil},
		{"-3.5", -350, nil},
		{"-3.50", -350, nil},
		{"12.34", 1234, nil},
		{"-92233720368547758.08", math.MinInt64, nil},
		{"-92233720368547758.09", 0, ErrOverflow},
		{"--1", 0, ErrSyntax},
		{"-", 0, ErrSyntax},
		{"", 0, ErrEmpty},
		{"-1.234", 0, ErrTooPrecise},
	}
	for _, tt := range tests {
		got, err := ParseSigned(tt.in)
		if tt.err == nil {
			if err != nil || got != tt.want {
				t.Errorf("ParseSigned(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("ParseSigned(%q) error = %v; want %v", tt.in, err, tt.err)
		}
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		in   Amount
		want string
	}{
		{0, "0.00"},
		{1, "0.01"},
		{50, "0.50"},
		{10000, "100.00"},
		{10050, "100.50"},
		{-350, "-3.50"},
		{-1, "-0.01"},
		{MaxAmount, "92233720368547758.07"},
		{math.MinInt64, "-92233720368547758.08"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Amount(%d).String() = %q; want %q", int64(tt.in), got, tt.want)
		}
		back, err := ParseSigned(tt.want)
		if err != nil || back != tt.in {
			t.Errorf("ParseSigned(%q) = %d, %v; want %d", tt.want, back, err, tt.in)
		}
	}
}

func TestAddSub(t *testing.T) {
	if s, err := Amount(150).Add(250); err != nil || s != 400 {
		t.Errorf("150+250 = %d, %v", s, err)
	}
	if _, err := MaxAmount.Add(1); !errors.Is(err, ErrOverflow) {
		t.Errorf("MaxAmount+1 error = %v; want ErrOverflow", err)
	}
	if _, err := Amount(math.MinInt64).Add(-1); !errors.Is(err, ErrOverflow) {
		t.Errorf("MinInt64+(-1) error = %v; want ErrOverflow", err)
	}
	if d, err := Amount(100).Sub(250); err != nil || d != -150 {
		t.Errorf("100-250 = %d, %v", d, err)
	}
	if _, err := Amount(math.MinInt64).Sub(1); !errors.Is(err, ErrOverflow) {
		t.Errorf("MinInt64-1 error = %v; want ErrOverflow", err)
	}
	if _, err := MaxAmount.Sub(-1); !errors.Is(err, ErrOverflow) {
		t.Errorf("MaxAmount-(-1) error = %v; want ErrOverflow", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"100.00", "100", "0.5", "100.5", "0", "-1", "1e3", "NaN",
		"1.001", "", " ", "92233720368547758.07", "92233720368547758.08", ".5", "5."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAmount) {
				t.Fatalf("Parse(%q) error %v does not match ErrInvalidAmount", s, err)
			}
			return
		}
		if a <= 0 {
			t.Fatalf("Parse(%q) accepted non-positive %d", s, a)
		}
		back, err := Parse(a.String())
		if err != nil || back != a {
			t.Fatalf("Parse(String(%d)) = %d, %v; want round trip", a, back, err)
		}
		signed, err := ParseSigned(s)
		if err != nil || signed != a {
			t.Fatalf("ParseSigned(%q) = %d, %v; want %d like Parse", s, signed, err, a)
		}
	})
}
