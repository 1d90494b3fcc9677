package checks

import (
	"math"
	"slices"
	"sort"
)

// MedianBaseline aggregates previous passing runs: the median of each numeric variable, and
// the most recent value of the others. It returns nil when no run passed. The variables
// timed from before a connection was opened (setupTimed) are taken less each run's own
// connection setup: a scheduled run on a kept-alive connection paid none, a verification's
// run or a scheduled one whose connection had closed paid its DNS lookup, connect and TLS
// handshake, and a median of the two measures neither (see setupFree).
func MedianBaseline(previous []*Result) map[string]any {
	var passing []*Result
	for _, r := range previous {
		if r != nil && r.Outcome == Pass {
			passing = append(passing, r)
		}
	}
	if len(passing) == 0 {
		return nil
	}
	sort.SliceStable(passing, func(i, j int) bool { return passing[i].Started.After(passing[j].Started) })
	numbers := map[string][]float64{}
	out := map[string]any{}
	for _, r := range passing {
		setup, timed := connectionSetup(r.Vars)
		for k, v := range r.Vars {
			if f, ok := asFloat(v); ok {
				if timed && isSetupTimed(k) {
					f = lessSetup(f, setup)
				}
				numbers[k] = append(numbers[k], f)
				continue
			}
			if _, have := out[k]; !have {
				out[k] = v // passing is newest first
			}
		}
	}
	for k, xs := range numbers {
		out[k] = median(xs)
	}
	return out
}

// median of xs (mean of the middle two for an even count); NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}
