package certificate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/certificate"
)

func TestNormalizeDNSName(t *testing.T) {
	t.Parallel()
	long63 := strings.Repeat("a", 63)
	// 4 labels of 63 plus 3 dots plus ".com" = 256 > 253; 3 labels = 191+4.
	tests := []struct {
		in      string
		want    string
		wantErr string // substring of the rule; "" means success
	}{
		{in: "www.example.com", want: "www.example.com"},
		{in: "  WWW.Example.COM.  ", want: "www.example.com"},
		{in: "*.example.com", want: "*.example.com"},
		{in: "*.Example.com.", want: "*.example.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "BÜCHER.example", want: "xn--bcher-kva.example"},
		{in: "*.bücher.example", want: "*.xn--bcher-kva.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "例え。テスト", want: "xn--r8jz45g.xn--zckzah"},
		{in: "r3---sn-abc.googlevideo.com", want: "r3---sn-abc.googlevideo.com"},
		{in: "a-1.b2.example", want: "a-1.b2.example"},
		{in: long63 + ".com", want: long63 + ".com"},
		{in: strings.Repeat(long63+".", 3) + "com", want: strings.Repeat(long63+".", 3) + "com"},
		{in: "", wantErr: "it is empty"},
		{in: "   ", wantErr: "it is empty"},
		{in: ".", wantErr: "it is empty"},
		{in: "example.com..", wantErr: "empty label"},
		{in: "a..example.com", wantErr: "empty label"},
		{in: ".example.com", wantErr: "empty label"},
		{in: "localhost", wantErr: "at least two labels"},
		{in: "*.com.", wantErr: "at least two labels after"},
		{in: "*", wantErr: "whole leftmost label"},
		{in: "www.*.example.com", wantErr: "whole leftmost label"},
		{in: "*www.example.com", wantErr: "whole leftmost label"},
		{in: "*.*.example.com", wantErr: "whole leftmost label"},
		{in: "a_b.example.com", wantErr: `label "a_b" has a character other than`},
		{in: "a b.example.com", wantErr: "has a character other than"},
		{in: "-ab.example.com", wantErr: `label "-ab" starts or ends with a hyphen`},
		{in: "ab-.example.com", wantErr: "starts or ends with a hyphen"},
		{in: strings.Repeat("a", 64) + ".com", wantErr: "longer than 63 characters"},
		{in: strings.Repeat(long63+".", 4) + "com", wantErr: "longer than 253 characters"},
		{in: "xn--zz.example", wantErr: "not a valid internationalised label"},
		{in: "192.168.0.1", wantErr: `the last label "1" is all digits`},
		{in: "bad\u00adlabel.example", want: "badlabel.example"},
		{in: "\u00ad.example", wantErr: "empty after IDNA mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := certificate.NormalizeDNSName(tt.in)
			if tt.wantErr != "" {
				var nameErr *certificate.NameError
				if !errors.As(err, &nameErr) {
					t.Fatalf("NormalizeDNSName(%q) = %q, %v; want a *NameError", tt.in, got, err)
				}
				if !strings.Contains(nameErr.Rule, tt.wantErr) {
					t.Fatalf("NormalizeDNSName(%q) rule = %q; want it to contain %q", tt.in, nameErr.Rule, tt.wantErr)
				}
				if nameErr.Name != tt.in {
					t.Errorf("NameError.Name = %q; want %q", nameErr.Name, tt.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizeDNSName(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("NormalizeDNSName(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestNameErrorMessage(t *testing.T) {
	t.Parallel()
	_, err := certificate.NormalizeDNSName("a_b.example.com")
	want := `invalid DNS name "a_b.example.com": label "a_b" has a character other than a letter, digit or hyphen`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v; want %s", err, want)
	}
}

func TestDeriveName(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"*.example.com", "wildcard-example-com"},
		{"www.example.com", "www-example-com"},
		{"xn--bcher-kva.example", "xn--bcher-kva-example"},
		{"Mixed.Case.Example", "Mixed-Case-Example"},
		{"a_b", "a-b"},
		{"ü.x", "--x"},
		{strings.Repeat("a", 200), strings.Repeat("a", 127)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, certificate.DeriveName(tt.in)); diff != "" {
				t.Errorf("DeriveName(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestNamePattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"www-example-com", true},
		{"A-1", true},
		{strings.Repeat("a", 127), true},
		{strings.Repeat("a", 128), false},
		{"", false},
		{"a.b", false},
		{"a_b", false},
		{"a\n", false},
	}
	for _, tt := range tests {
		if got := certificate.NamePattern.MatchString(tt.in); got != tt.want {
			t.Errorf("NamePattern.MatchString(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzNormalizeDNSName checks that a normalised name normalises to itself,
// is lowercase ASCII within the length limits, and that its derived
// certificate name matches NamePattern.
func FuzzNormalizeDNSName(f *testing.F) {
	for _, s := range []string{"www.example.com", "*.example.com", "bücher.example", "例え。テスト", "a..b", "xn--zz.example", "-a.b", "192.0.2.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := certificate.NormalizeDNSName(s)
		if err != nil {
			var nameErr *certificate.NameError
			if !errors.As(err, &nameErr) {
				t.Fatalf("NormalizeDNSName(%q) error %v is not a *NameError", s, err)
			}
			return
		}
		again, err := certificate.NormalizeDNSName(got)
		if err != nil {
			t.Fatalf("NormalizeDNSName(%q) = %q, which does not normalise again: %v", s, got, err)
		}
		if again != got {
			t.Fatalf("NormalizeDNSName not stable: %q -> %q -> %q", s, got, again)
		}
		if len(got) > 253 || !isLowerASCII(got) {
			t.Fatalf("NormalizeDNSName(%q) = %q: not lowercase ASCII of at most 253 characters", s, got)
		}
		if name := certificate.DeriveName(got); !certificate.NamePattern.MatchString(name) {
			t.Fatalf("DeriveName(%q) = %q does not match NamePattern", got, name)
		}
	})
}

// FuzzDeriveName checks that DeriveName never panics, returns at most 127
// bytes, and matches NamePattern whenever its input normalised.
func FuzzDeriveName(f *testing.F) {
	for _, s := range []string{"*.example.com", "www.example.com", "ü.x", "", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name := certificate.DeriveName(s)
		if len(name) > 127 {
			t.Fatalf("DeriveName(%q) has %d bytes", s, len(name))
		}
		if s != "" && !certificate.NamePattern.MatchString(name) {
			t.Fatalf("DeriveName(%q) = %q does not match NamePattern", s, name)
		}
	})
}

func isLowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || ('A' <= s[i] && s[i] <= 'Z') {
			return false
		}
	}
	return true
}
