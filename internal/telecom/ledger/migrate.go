package ledger

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrationFiles holds the versioned schema of every backend. Files are named
// NNNN_description.sql and applied in version order, each exactly once, as
// recorded in the schema_migrations table.
//
//go:embed migrations
var migrationFiles embed.FS

// migration is one embedded schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the migrations of one backend ("sqlite" or
// "postgres") sorted by version.
func loadMigrations(backend string) ([]migration, error) {
	dir := path.Join("migrations", backend)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: read migrations: %w", err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("ledger: migration %s/%s: name must start with a positive version", dir, e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("ledger: migrations %s and %s share version %d", other, e.Name(), v)
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("ledger: read migration: %w", err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// pending returns the migrations not yet in applied, or ErrSchemaTooNew when
// the database carries a version this build does not know, because running
// old code against a newer schema could silently violate its invariants.
func pending(all []migration, applied map[int]bool) ([]migration, error) {
	known := map[int]bool{}
	var out []migration
	for _, m := range all {
		known[m.version] = true
		if !applied[m.version] {
			out = append(out, m)
		}
	}
	for v := range applied {
		if !known[v] {
			return nil, fmt.Errorf("%w: it has migration %d", ErrSchemaTooNew, v)
		}
	}
	return out, nil
}
