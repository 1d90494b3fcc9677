package checks

import (
	"bytes"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"
)

// utf8BOM is the byte order mark some servers (.NET, files saved on Windows) put before a
// UTF-8 body.
var utf8BOM = []byte("\xEF\xBB\xBF")

// textOf is a body as a browser reads it: a UTF-8 byte order mark dropped (fetch's
// response.json() and text() drop it; encoding/json and gjson refuse the body with it), and
// a body in the charset its Content-Type names (iso-8859-1, windows-1252, shift_jis...)
// decoded to UTF-8, so `body contains 'café'` reads a Latin-1 page as a visitor sees it. A
// body left in a Content-Encoding vigil does not decode (br, zstd) is not text yet and is
// left as sent, as is one in a charset no browser knows (the transcript says so).
func textOf(resp *http.Response, data []byte, t *Transcript) []byte {
	if bytes.HasPrefix(data, utf8BOM) {
		return data[len(utf8BOM):]
	}
	ctype := resp.Header.Get("Content-Type")
	if !strings.Contains(strings.ToLower(ctype), "charset") || !decodes(resp.Header.Get("Content-Encoding")) {
		return data
	}
	_, params, err := mime.ParseMediaType(ctype)
	name := strings.ToLower(strings.TrimSpace(params["charset"]))
	if err != nil || name == "" || name == "utf-8" || name == "utf8" {
		return data
	}
	enc, err := htmlindex.Get(name)
	if err != nil {
		if t != nil {
			t.Printf("the body's charset %q is not one vigil knows: body and json read it as sent", Trim(name, 40))
		}
		return data
	}
	if canonical, _ := htmlindex.Name(enc); canonical == "utf-8" || (asciiOnly(data) && canonical != "utf-16le" && canonical != "utf-16be") {
		return data
	}
	out, err := enc.NewDecoder().Bytes(data)
	if err != nil {
		return data
	}
	if t != nil {
		t.Printf("the body is in %s: body and json read it decoded to UTF-8", Trim(name, 40))
	}
	return out
}

// asciiOnly: every byte is 7-bit, which reads the same in every charset a browser knows
// but UTF-16.
func asciiOnly(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
