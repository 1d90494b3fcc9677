package checks

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// decodedBody is the body of resp as the service meant it, and its length when known.
//
// Go's transport asks for gzip by itself when a request does not set Accept-Encoding,
// decodes the answer, and drops its Content-Encoding and Content-Length: the header is
// put back (an assertion on headers['Content-Encoding'] reads what the service sent; the
// compressed length is unknown, so content_length is -1). A request that sets
// Accept-Encoding itself gets the answer as sent, and a gzip or deflate body is decoded
// here, so json and body read the content. Either way max_body_bytes bounds the decoded
// bytes (a gzip bomb is cut there). Another coding (br, zstd) is left as sent, and the
// transcript says so.
func decodedBody(resp *http.Response, t *Transcript) (io.Reader, int64, error) {
	if resp.Uncompressed {
		resp.Header.Set("Content-Encoding", "gzip")
		return resp.Body, -1, nil
	}
	coding := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	switch coding {
	case "", "identity":
		return resp.Body, resp.ContentLength, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, 0, codingError(coding, err)
		}
		return zr, -1, nil
	case "deflate":
		// RFC 9110's deflate is zlib-wrapped; some servers send it raw.
		br := bufio.NewReader(resp.Body)
		if head, err := br.Peek(2); err == nil && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, 0, codingError(coding, err)
			}
			return zr, -1, nil
		}
		return flate.NewReader(br), -1, nil
	}
	if t != nil {
		t.Printf("the body is %s-encoded, which vigil does not decode: body and json read it as sent", coding)
	}
	return resp.Body, resp.ContentLength, nil
}

// decodes says whether vigil reads a body in coding as text (decodedBody decodes it, or it
// is not encoded).
func decodes(coding string) bool {
	switch strings.ToLower(strings.TrimSpace(coding)) {
	case "", "identity", "gzip", "x-gzip", "deflate":
		return true
	}
	return false
}

// codingError is err from starting to decode a body: a header that is not the coding's is
// the service's answer (badCoding), anything else the body breaking off.
func codingError(coding string, err error) error {
	if errors.Is(err, gzip.ErrHeader) || errors.Is(err, zlib.ErrHeader) {
		return fmt.Errorf("the body says Content-Encoding: %s and is not: %w", coding, err)
	}
	return err
}

// badCoding says whether err is a body that is not in the coding it says it is in, which
// no client decodes.
func badCoding(err error) bool {
	return err != nil && (errors.Is(err, gzip.ErrHeader) || errors.Is(err, zlib.ErrHeader))
}
