package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MigrationInfo is the part of query-migrate's reply that callers use.
type MigrationInfo struct {
	Status    string `json:"status"` // none, setup, active, completed, failed, cancelled, ...
	ErrorDesc string `json:"error-desc"`
	TotalTime int64  `json:"total-time"` // milliseconds
	Downtime  int64  `json:"downtime"`   // milliseconds
	SetupTime int64  `json:"setup-time"` // milliseconds
	RAM       *struct {
		Transferred int64   `json:"transferred"`
		Total       int64   `json:"total"`
		Remaining   int64   `json:"remaining"`
		Normal      int64   `json:"normal"`
		Duplicate   int64   `json:"duplicate"`
		MBps        float64 `json:"mbps"`
		DirtySync   int64   `json:"dirty-sync-count"`
		MultifdByte int64   `json:"multifd-bytes"`
	} `json:"ram"`
}

// Finished reports whether the status is terminal.
func (m *MigrationInfo) Finished() bool {
	switch m.Status {
	case "completed", "failed", "cancelled":
		return true
	}
	return false
}

// QueryMigrate runs query-migrate.
func (c *Client) QueryMigrate(ctx context.Context) (*MigrationInfo, error) {
	ret, err := c.Execute(ctx, "query-migrate", nil)
	if err != nil {
		return nil, err
	}
	var info MigrationInfo
	if err := json.Unmarshal(ret, &info); err != nil {
		return nil, fmt.Errorf("qmp: decoding query-migrate reply: %w", err)
	}
	return &info, nil
}

// WaitMigration polls query-migrate every interval until the migration
// is completed, failed or cancelled, or ctx ends. A failed or cancelled
// migration returns the info and an error carrying QEMU's error-desc.
func (c *Client) WaitMigration(ctx context.Context, interval time.Duration) (*MigrationInfo, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		info, err := c.QueryMigrate(ctx)
		if err != nil {
			return nil, err
		}
		if info.Finished() {
			if info.Status != "completed" {
				desc := info.ErrorDesc
				if desc == "" {
					desc = "no error-desc"
				}
				return info, fmt.Errorf("qmp: migration %s: %s", info.Status, desc)
			}
			return info, nil
		}
		select {
		case <-ctx.Done():
			return info, fmt.Errorf("qmp: migration still %s: %w", info.Status, ctx.Err())
		case <-t.C:
		}
	}
}

// Status is query-status's reply.
type Status struct {
	Status  string `json:"status"` // running, paused, inmigrate, postmigrate, ...
	Running bool   `json:"running"`
}

// QueryStatus runs query-status.
func (c *Client) QueryStatus(ctx context.Context) (*Status, error) {
	ret, err := c.Execute(ctx, "query-status", nil)
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(ret, &s); err != nil {
		return nil, fmt.Errorf("qmp: decoding query-status reply: %w", err)
	}
	return &s, nil
}

// SetCapabilities runs migrate-set-capabilities with the given states.
func (c *Client) SetCapabilities(ctx context.Context, caps map[string]bool) error {
	type capability struct {
		Capability string `json:"capability"`
		State      bool   `json:"state"`
	}
	var list []capability
	for k, v := range caps {
		list = append(list, capability{k, v})
	}
	_, err := c.Execute(ctx, "migrate-set-capabilities", map[string]any{"capabilities": list})
	return err
}

// SetParameters runs migrate-set-parameters, e.g.
// {"max-bandwidth": 1<<40, "tls-creds": "tls0"}.
func (c *Client) SetParameters(ctx context.Context, params map[string]any) error {
	_, err := c.Execute(ctx, "migrate-set-parameters", params)
	return err
}

// ObjectAdd runs object-add with qom-type and id plus props.
func (c *Client) ObjectAdd(ctx context.Context, qomType, id string, props map[string]any) error {
	args := map[string]any{"qom-type": qomType, "id": id}
	for k, v := range props {
		if k == "qom-type" || k == "id" {
			return errors.New("qmp: object-add props must not repeat qom-type or id")
		}
		args[k] = v
	}
	_, err := c.Execute(ctx, "object-add", args)
	return err
}

// Migrate runs migrate with uri (source side).
func (c *Client) Migrate(ctx context.Context, uri string) error {
	_, err := c.Execute(ctx, "migrate", map[string]any{"uri": uri})
	return err
}

// MigrateIncoming runs migrate-incoming with uri (destination started with
// -incoming defer).
func (c *Client) MigrateIncoming(ctx context.Context, uri string) error {
	_, err := c.Execute(ctx, "migrate-incoming", map[string]any{"uri": uri})
	return err
}
