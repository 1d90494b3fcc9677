package store

// Deploy links: what the pipeline passes with a deploy (`vigil gate --link ci=URL`, the
// API's "links"): the CI run, the diff, the change request. People open them from the
// Slack message and the status page; webhooks carry them to the receiver.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
)

// Link is one named URL passed with a deploy.
type Link struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// linksMigration adds the deploys' links, a JSON list of Link.
const linksMigration = `ALTER TABLE deploys ADD COLUMN links TEXT NOT NULL DEFAULT '[]';`

// SetDeployLinks records the links of a deploy (replacing any it had).
func (s *SQLite) SetDeployLinks(ctx context.Context, deployID string, links []Link) error {
	if links == nil {
		links = []Link{}
	}
	res, err := s.db.ExecContext(ctx, `UPDATE deploys SET links = ? WHERE id = ?`, mustJSON(links), deployID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeployLinks returns the links of a deploy, in the order they were passed.
func (s *SQLite) DeployLinks(ctx context.Context, deployID string) ([]Link, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT links FROM deploys WHERE id = ?`, deployID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return parseLinks(raw), nil
}

func parseLinks(raw string) []Link {
	var out []Link
	_ = json.Unmarshal([]byte(raw), &out)
	return out
}
