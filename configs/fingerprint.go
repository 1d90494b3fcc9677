package configs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Fingerprint names what the check measures: its kind and the kind's own keys after
// defaults (the request, its URL, method, body and headers, the script's steps, the
// query), as a hash of their JSON. The common keys are not in it: a new schedule,
// assertion, notify list, retries or threshold judges the same request differently, and
// the runs before still make its deploy's baseline. A new fingerprint means the runs
// before measured something else, and a deploy's baseline leaves them out (README,
// "Deploy verification"). encoding/json sorts map keys and leaves out the compiled
// (unexported) parts, and a Secret encodes as its mask: the hash is the same for the same
// file on every agent, and says nothing of the secrets in it.
func (c *Check) Fingerprint() string {
	b, err := json.Marshal(struct {
		Kind string `json:"kind"`
		Spec Spec   `json:"spec"`
	}{c.Kind, c.Spec})
	if err != nil { // no spec type holds what encoding/json refuses (a test encodes every kind)
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
