package configs_test

import (
	"testing"

	"github.com/vigil-monitor/vigil/configs"
)

func TestDNSAnswerForms(t *testing.T) {
	for _, tc := range []struct{ typ, in, want string }{
		{"A", " 192.0.2.1 ", "192.0.2.1"},
		{"AAAA", "2001:DB8:0::1", "2001:db8::1"},
		{"CNAME", "Web.Example.COM.", "web.example.com"},
		{"NS", ".", "."},
		{"MX", "010   Mail.example.com.", "10 mail.example.com"},
		{"SRV", "10 5 5060 sip.example.com", "10 5 5060 sip.example.com"},
		{"TXT", "v=spf1 -all", "v=spf1 -all"},
	} {
		got, err := configs.DNSAnswer(tc.typ, tc.in)
		if err != nil || got != tc.want {
			t.Errorf("DNSAnswer(%s, %q) = %q, %v; want %q", tc.typ, tc.in, got, err, tc.want)
		}
	}
	for _, bad := range [][2]string{{"A", "2001:db8::1"}, {"AAAA", "192.0.2.1"}, {"MX", "mail.example.com"},
		{"SRV", "10 5 99999 sip.example.com"}, {"CNAME", "a..b"}, {"PTR", "x"}} {
		if got, err := configs.DNSAnswer(bad[0], bad[1]); err == nil {
			t.Errorf("DNSAnswer(%s, %q) = %q, want an error", bad[0], bad[1], got)
		}
	}
}

// FuzzDNSAnswer: an expected answer written any way normalises once and for all: the
// normal form reads back as itself, so expect and answers always compare alike.
func FuzzDNSAnswer(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "2001:db8::1", "10 mail.example.com.", "10 5 5060 x.", "Web.Example.", "txt"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, typ := range configs.DNSTypes {
			n, err := configs.DNSAnswer(typ, s)
			if err != nil {
				continue
			}
			again, err := configs.DNSAnswer(typ, n)
			if err != nil || again != n {
				t.Fatalf("%s %q -> %q -> %q, %v", typ, s, n, again, err)
			}
		}
	})
}
