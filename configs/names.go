package configs

import "bytes"

// SensitiveName reports whether a header, query parameter, form field, JSON field or
// environment variable name usually holds a credential: Authorization, Set-Cookie,
// X-Auth-Token, access_token, password, client_secret, api_key, sig, ...
func SensitiveName(name string) bool {
	var buf [64]byte
	n := normInto(buf[:0], name)
	switch string(n) {
	case "":
		return false
	case "auth", "pass", "pwd", "pin", "sig", "key", "sid", "otp", "jwt", "bearer", "apikey":
		return true
	}
	for i, c := range n {
		for _, part := range sensitiveParts[c] {
			if bytes.HasPrefix(n[i:], part) {
				return true
			}
		}
	}
	return bytes.HasSuffix(n, []byte("auth"))
}

// sensitiveParts are the words that make a name sensitive wherever they appear in it,
// by their first letter (one pass over the name instead of one search per word).
var sensitiveParts = func() (out [256][][]byte) {
	for _, p := range []string{"token", "secret", "passw", "apikey", "accesskey", "privatekey",
		"signingkey", "routingkey", "authkey", "clientkey", "licensekey", "masterkey", "hmackey",
		"encryptionkey", "integrationkey", "credential", "cookie", "session", "sessid", "signature", "authorization",
		"csrf", "xsrf"} {
		out[p[0]] = append(out[p[0]], []byte(p))
	}
	return out
}()

// normInto appends name lowercased, without separators, to dst: X-Api-Key, x_api_key and
// XApiKey match.
func normInto(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			dst = append(dst, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			dst = append(dst, c)
		}
	}
	return dst
}

// plainHeaders are the request headers that clearly carry no credential. Any other header a
// config sets (X-Auth-Token, X-Scope-OrgID, X-Synthetic, ...) is treated as one: its value is
// masked where it is shown, and a redirect to another host drops it.
var plainHeaders = map[string]bool{
	"accept": true, "acceptcharset": true, "acceptencoding": true, "acceptlanguage": true, "cachecontrol": true,
	"connection": true, "contentencoding": true, "contentlanguage": true, "contentlength": true, "contenttype": true,
	"dnt": true, "expect": true, "host": true, "ifmatch": true, "ifmodifiedsince": true, "ifnonematch": true,
	"ifrange": true, "ifunmodifiedsince": true, "origin": true, "pragma": true, "range": true, "te": true,
	"useragent": true, "xforwardedfor": true, "xforwardedhost": true, "xforwardedproto": true, "xrequestid": true,
	"xcorrelationid": true, "xrequestedwith": true, "traceparent": true, "tracestate": true, "baggage": true,
	"upgrade": true, "via": true, "date": true,
}

// PlainHeader reports whether a configured request header clearly carries no credential.
func PlainHeader(name string) bool {
	var buf [64]byte
	return plainHeaders[string(normInto(buf[:0], name))] // looked up without a string made
}
