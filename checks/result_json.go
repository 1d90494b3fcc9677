package checks

import (
	"encoding/json"
	"time"
)

// A result's JSON gives its duration in seconds (duration_seconds, a float), as
// Prometheus and people read durations, never as integer nanoseconds.

type plainResult Result

type resultJSON struct {
	*plainResult
	DurationSeconds float64 `json:"duration_seconds"`
}

// MarshalJSON writes the result with its duration in seconds.
func (r Result) MarshalJSON() ([]byte, error) {
	p := plainResult(r)
	return json.Marshal(resultJSON{&p, r.Duration.Seconds()})
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
