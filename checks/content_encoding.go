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
		return codingReader{resp.Body, "gzip"}, -1, nil // Go's decoder: its errors say less
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
		return codingReader{zr, coding}, -1, nil
	case "deflate":
		// RFC 9110's deflate is zlib-wrapped; some servers send it raw.
		br := bufio.NewReader(resp.Body)
		if head, err := br.Peek(2); err == nil && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, 0, codingError(coding, err)
			}
			return codingReader{zr, coding}, -1, nil
		}
		return codingReader{flate.NewReader(br), coding}, -1, nil
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

// codingReader reads a decoder of coding, saying so when the bytes are not in it.
type codingReader struct {
	io.Reader
	coding string
}

func (c codingReader) Read(p []byte) (int, error) {
	n, err := c.Reader.Read(p)
	if err != nil && err != io.EOF {
		err = codingError(c.coding, err)
	}
	return n, err
}

// codingError is err from decoding a body: bytes that are not the coding's (a header,
// a checksum, a stream that does not decode) are the service's answer (badCoding),
// anything else the body breaking off.
func codingError(coding string, err error) error {
	if notInCoding(err) {
		return &wrongCoding{fmt.Errorf("the body says Content-Encoding: %s and is not: %w", coding, err)}
	}
	return err
}

// wrongCoding is a body that is not in the coding it names.
type wrongCoding struct{ error }

func (w *wrongCoding) Unwrap() error { return w.error }

func notInCoding(err error) bool {
	var corrupt flate.CorruptInputError
	return errors.Is(err, gzip.ErrHeader) || errors.Is(err, zlib.ErrHeader) || errors.Is(err, gzip.ErrChecksum) ||
		errors.Is(err, zlib.ErrChecksum) || errors.As(err, &corrupt)
}

// badCoding says whether err is a body that is not in the coding it says it is in, which
// no client decodes.
func badCoding(err error) bool {
	var w *wrongCoding
	return errors.As(err, &w)
}
