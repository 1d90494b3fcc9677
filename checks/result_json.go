package checks

import (
	"encoding/json"
	"iter"
	"maps"
	"math"
	"slices"
	"time"
)

// A result's JSON gives its duration in seconds (duration_seconds, a float), as
// Prometheus and people read durations, never as integer nanoseconds.

type plainResult Result

type resultJSON struct {
	*plainResult
	DurationSeconds float64 `json:"duration_seconds"`
}

// MarshalJSON writes the result with its duration in seconds, and a variable that is NaN
// or infinite (a promql value over several series, say) as null: JSON has no such
// numbers, and one of them must not cost the rest of the result.
func (r Result) MarshalJSON() ([]byte, error) {
	p := plainResult(r)
	if !finite(p.Vars) {
		p.Vars = finiteCopy(p.Vars).(map[string]any)
	}
	return json.Marshal(resultJSON{&p, r.Duration.Seconds()})
}

// finite reports whether v holds no NaN or infinity, in the forms variables take.
func finite(v any) bool {
	switch x := v.(type) {
	case float64:
		return !math.IsNaN(x) && !math.IsInf(x, 0)
	case float32:
		return finite(float64(x))
	case map[string]any:
		return allFinite(maps.Values(x))
	case []any:
		return allFinite(slices.Values(x))
	case map[string]float64:
		return allFinite(maps.Values(x))
	case []float64:
		return allFinite(slices.Values(x))
	}
	return true
}

func allFinite[V any](values iter.Seq[V]) bool {
	for e := range values {
		if !finite(e) {
			return false
		}
	}
	return true
}

// finiteCopy is v with every NaN and infinity nil, copying only what holds one.
func finiteCopy(v any) any {
	if finite(v) {
		return v
	}
	switch x := v.(type) {
	case float64, float32:
		return nil
	case map[string]any:
		return finiteMap(x)
	case []any:
		return finiteList(x)
	case map[string]float64:
		return finiteMap(x)
	case []float64:
		return finiteList(x)
	}
	return v
}

func finiteMap[V any](m map[string]V) map[string]any {
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[k] = finiteCopy(e)
	}
	return out
}

func finiteList[V any](l []V) []any {
	out := make([]any, len(l))
	for i, e := range l {
		out[i] = finiteCopy(e)
	}
	return out
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Result) UnmarshalJSON(b []byte) error {
	v := resultJSON{plainResult: (*plainResult)(r)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	r.Duration = time.Duration(v.DurationSeconds * float64(time.Second))
	return nil
}
