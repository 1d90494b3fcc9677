package checks

import (
	"encoding/json"
	"math"
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
		for _, e := range x {
			if !finite(e) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !finite(e) {
				return false
			}
		}
	case map[string]float64:
		for _, e := range x {
			if !finite(e) {
				return false
			}
		}
	case []float64:
		for _, e := range x {
			if !finite(e) {
				return false
			}
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
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = finiteCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = finiteCopy(e)
		}
		return out
	case map[string]float64:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = finiteCopy(e)
		}
		return out
	case []float64:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = finiteCopy(e)
		}
		return out
	}
	return v
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
