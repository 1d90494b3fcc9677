package agent

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// A duration on the page reads the same however it is written: appended into a bar's
// details or made as a string, in seconds from 1 s up, to a tenth below 10 of a unit.
func TestFmtMS(t *testing.T) {
	for ms, want := range map[float64]string{
		0: "0.0 ms", 0.04: "0.0 ms", 1.25: "1.2 ms", 9.94: "9.9 ms", 9.96: "10.0 ms", 10: "10 ms", 999.4: "999 ms",
		999.6: "1000 ms", 1000: "1.0 s", 1234: "1.2 s", 9999: "10.0 s", 10000: "10 s", 123456: "123 s",
	} {
		if got := fmtMS(ms); got != want {
			t.Errorf("fmtMS(%v) = %q, want %q", ms, got, want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		ms := r.ExpFloat64() * 500
		unit, v, prec := " ms", ms, 1
		switch {
		case ms >= 10000:
			unit, v, prec = " s", ms/1000, 0
		case ms >= 1000:
			unit, v = " s", ms/1000
		case ms >= 10:
			prec = 0
		}
		want := strconv.FormatFloat(v, 'f', prec, 64) + unit
		if got := string(appendMS([]byte("x"), ms)); got != "x"+want || fmtMS(ms) != want {
			t.Fatalf("%v ms: appended %q, made %q; want %q", ms, got, fmtMS(ms), want)
		}
	}
}
