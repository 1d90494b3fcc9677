package checks

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// readBody must read what io.ReadAll over the same capped reader reads, whatever length
// the response announced (right, too short, too long, unknown) and however the reader
// hands the bytes out; and keep a read error with the bytes before it.
func TestReadBodyAsReadAll(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	wrap := []func(io.Reader) io.Reader{
		func(r io.Reader) io.Reader { return r },
		iotest.OneByteReader,
		iotest.HalfReader,
		iotest.DataErrReader,
	}
	for i := range 5000 {
		size := r.IntN(3000)
		if i%10 == 0 {
			size = 0
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(r.IntN(256))
		}
		limit := int64(r.IntN(3000) + 1)
		var length int64
		switch r.IntN(4) {
		case 0:
			length = int64(size)
		case 1:
			length = -1 // chunked: no length
		case 2:
			length = int64(r.IntN(size + 1)) // announced less than sent
		case 3:
			length = int64(size + 1 + r.IntN(100)) // announced more than sent
		}
		w := wrap[r.IntN(len(wrap))]
		want, _ := io.ReadAll(io.LimitReader(w(bytes.NewReader(data)), limit+1))
		got, err := readBody(w(bytes.NewReader(data)), length, limit)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("size %d, length %d, limit %d: got %d bytes (%v), want %d", size, length, limit, len(got), err, len(want))
		}
	}
}

func TestReadBodyKeepsError(t *testing.T) {
	broke := errors.New("connection reset")
	for _, length := range []int64{-1, 10, 100} {
		body := io.MultiReader(bytes.NewReader([]byte("hello")), iotest.ErrReader(broke))
		got, err := readBody(body, length, 1000)
		if !errors.Is(err, broke) || string(got) != "hello" {
			t.Errorf("length %d: got %q, %v; want the 5 bytes and the error", length, got, err)
		}
	}
}

// The length a server announces sizes the buffer: one allocation, not io.ReadAll's 512
// bytes doubled to the body's size.
func TestReadBodyAllocatesOnce(t *testing.T) {
	data := make([]byte, 10_000)
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = readBody(bytes.NewReader(data), int64(len(data)), 1<<20)
	})
	if allocs > 2 { // the buffer (and the reader's escape, if any)
		t.Errorf("%v allocations reading a body of announced length, want at most 2", allocs)
	}
}

// A server that announces more than it sends gets no buffer of what it announced: a body
// of 2 bytes announced as 100 MB (under a check's cap of 200 MB) is read into a small one.
func TestReadBodyDoesNotTrustTheAnnouncedLength(t *testing.T) {
	got, err := readBody(bytes.NewReader([]byte("ok")), 100<<20, 200<<20)
	if err != nil || string(got) != "ok" {
		t.Fatalf("got %q, %v", got, err)
	}
	if cap(got) > maxUpfront+1 {
		t.Errorf("buffer of %d bytes for a 2-byte body, want at most %d", cap(got), maxUpfront+1)
	}
	// And a long body past maxUpfront still reads whole, to the cap.
	data := bytes.Repeat([]byte("x"), 3*maxUpfront)
	got, err = readBody(bytes.NewReader(data), int64(len(data)), int64(len(data))+10)
	if err != nil || len(got) != len(data) {
		t.Fatalf("read %d of %d bytes, %v", len(got), len(data), err)
	}
	got, _ = readBody(bytes.NewReader(data), int64(len(data)), maxUpfront)
	if len(got) != maxUpfront+1 {
		t.Errorf("read %d bytes under a cap of %d, want the cap and one more", len(got), maxUpfront)
	}
}
