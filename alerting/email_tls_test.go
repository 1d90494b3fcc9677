package alerting_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/internal/smtptest"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// The email notifier's tls keys, over STARTTLS and implicit TLS, each from a config file
// as the agent loads it, against a real SMTP server whose certificate is its own
// authority: ca_file (relative to the config file) trusts that authority,
// insecure_skip_verify accepts a certificate nothing vouches for, server_name is the name
// the certificate must be issued for and the one asked for in the TLS hello (SNI).
// Without the key that lets it through, each delivery is refused for good, with no
// message sent.
func TestEmailTLSKeys(t *testing.T) {
	t.Parallel()
	internal := []string{"smtp.internal.test"}
	tests := []struct {
		name      string
		certNames []string // the server certificate's names; nil: 127.0.0.1 and localhost
		tls       string
		delivered bool
		sni       string
	}{
		{"ca_file trusts the server's CA", nil, "{ca_file: ca.pem}", true, ""},
		{"no ca_file: the certificate is not trusted", nil, "{}", false, ""},
		{"insecure_skip_verify accepts the certificate", nil, "{insecure_skip_verify: true}", true, ""},
		{"insecure_skip_verify false checks it", nil, "{insecure_skip_verify: false}", false, ""},
		{"server_name is the name verified and sent", internal, "{ca_file: ca.pem, server_name: smtp.internal.test}", true, "smtp.internal.test"},
		{"without server_name the host is verified", internal, "{ca_file: ca.pem}", false, ""},
		{"a server_name the certificate lacks", internal, "{ca_file: ca.pem, server_name: other.internal.test}", false, ""},
	}
	for _, mode := range []string{"starttls", "implicit"} {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				srv := smtptest.Start(t, smtptest.Options{ImplicitTLS: mode == "implicit", CertNames: tt.certNames})
				dir := t.TempDir()
				ca, err := os.ReadFile(srv.CAFile)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca, 0o600); err != nil {
					t.Fatal(err)
				}
				cfg := vigiltest.LoadConfig(t, dir, fmt.Sprintf(`
notifiers:
  mail:
    type: email
    host: %s
    port: %d
    from: vigil@example.com
    to: [oncall@example.com]
    username: %s
    password: ${SMTP_PASSWORD}
    tls: %s
checks:
  - {name: home, kind: tcp, address: "127.0.0.1:1", notify: [mail]}
`, srv.Host(), srv.Port(), smtptest.Username, tt.tls), "SMTP_PASSWORD="+smtptest.Password)
				n := newNotifier(t, cfg.Notifiers["mail"], nil)
				if mode == "implicit" {
					alerting.ImplicitTLS(n) // as on port 465, on the test server's free port
				}
				err = n.Deliver(t.Context(), deployFailed(), alerting.State{})
				msgs := srv.Messages()
				if !tt.delivered {
					if err == nil || !alerting.Permanent(err) || !strings.Contains(err.Error(), "certificate is not trusted") {
						t.Fatalf("Deliver = %v; want a permanent error: the certificate is not trusted", err)
					}
					if len(msgs) != 0 {
						t.Errorf("%d messages sent past a certificate vigil does not trust", len(msgs))
					}
					return
				}
				if err != nil {
					t.Fatalf("Deliver: %v", err)
				}
				if len(msgs) != 1 || !msgs[0].TLS || msgs[0].User != smtptest.Username {
					t.Fatalf("messages %d; want one, over TLS, authenticated", len(msgs))
				}
				if msgs[0].ServerName != tt.sni {
					t.Errorf("the TLS hello asked for %q; want %q", msgs[0].ServerName, tt.sni)
				}
			})
		}
	}
}
