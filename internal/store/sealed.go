package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SealedColumn is a column that holds values sealed with the master key,
// and the column of the same row whose value is their associated data.
type SealedColumn struct {
	Table, KeyColumn, SealedColumn string
}

// SealedColumns lists every column of sealed values. A migration that adds
// one (its name ends in _sealed) adds it here too, or master key rotation
// refuses to run.
var SealedColumns = []SealedColumn{
	{"certificate_versions", "id", "key_sealed"},
	{"acme_accounts", "directory_url", "key_sealed"},
	{"master_key_check", "id", "check_sealed"},
}

// masterKeyCheckID is the row of master_key_check, and its associated data.
const masterKeyCheckID = "master-key"

// masterKeyCheckValue is what the check row holds, sealed.
const masterKeyCheckValue = "certkeeper master key check"

// ErrWrongMasterKey is returned when the master key does not open what the
// database holds.
var ErrWrongMasterKey = errors.New("the master key is not the one this database's private keys are sealed with")

// CheckMasterKey verifies that open (the master key's) opens the check
// value, writing it with seal on first use.
func (s *Store) CheckMasterKey(ctx context.Context, seal func(plain, assoc []byte) (string, error),
	open func(sealed string, assoc []byte) ([]byte, error)) error {
	var sealed string
	err := s.db.QueryRowContext(ctx, `SELECT check_sealed FROM master_key_check WHERE id = $1`, masterKeyCheckID).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		v, err := seal([]byte(masterKeyCheckValue), []byte(masterKeyCheckID))
		if err != nil {
			return fmt.Errorf("sealing the master key check: %w", err)
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO master_key_check (id, check_sealed, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO NOTHING`, masterKeyCheckID, v, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("writing the master key check: %w", err)
		}
		return s.CheckMasterKey(ctx, seal, open)
	}
	if err != nil {
		return fmt.Errorf("reading the master key check: %w", err)
	}
	if plain, err := open(sealed, []byte(masterKeyCheckID)); err != nil || string(plain) != masterKeyCheckValue {
		return ErrWrongMasterKey
	}
	return nil
}

// Reseal replaces every sealed value in one transaction with reseal's
// result: reseal opens a value with the old key and seals it with the new
// one. Nothing changes unless every value is resealed. It refuses to run
// when a column of sealed values is not in SealedColumns. It returns how
// many values it resealed.
func (s *Store) Reseal(ctx context.Context, reseal func(sealed string, assoc []byte) (string, error)) (int, error) {
	if err := s.checkSealedColumns(ctx); err != nil {
		return 0, err
	}
	n := 0
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		for _, c := range SealedColumns {
			rows, err := tx.QueryContext(ctx, fmt.Sprintf(`SELECT %s, %s FROM %s`, c.KeyColumn, c.SealedColumn, c.Table))
			if err != nil {
				return fmt.Errorf("reading %s.%s: %w", c.Table, c.SealedColumn, err)
			}
			type pair struct{ key, sealed string }
			var all []pair
			for rows.Next() {
				var p pair
				if err := rows.Scan(&p.key, &p.sealed); err != nil {
					rows.Close()
					return fmt.Errorf("reading %s.%s: %w", c.Table, c.SealedColumn, err)
				}
				all = append(all, p)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("reading %s.%s: %w", c.Table, c.SealedColumn, err)
			}
			for _, p := range all {
				v, err := reseal(p.sealed, []byte(p.key))
				if err != nil {
					return fmt.Errorf("resealing %s.%s of %q: %w", c.Table, c.SealedColumn, p.key, err)
				}
				if _, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE %s SET %s = $1 WHERE %s = $2`,
					c.Table, c.SealedColumn, c.KeyColumn), v, p.key); err != nil {
					return fmt.Errorf("writing %s.%s of %q: %w", c.Table, c.SealedColumn, p.key, err)
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// checkSealedColumns fails when the schema has a *_sealed column that
// SealedColumns does not list.
func (s *Store) checkSealedColumns(ctx context.Context) error {
	var q string
	if s.dialect == Postgres {
		q = `SELECT table_name, column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND column_name LIKE '%\_sealed' ESCAPE '\'`
	} else {
		q = `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
			WHERE m.type = 'table' AND p.name LIKE '%\_sealed' ESCAPE '\'`
	}
	rows, err := s.read.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("listing sealed columns: %w", err)
	}
	defer rows.Close()
	var unknown []string
	for rows.Next() {
		var table, column string
		if err := rows.Scan(&table, &column); err != nil {
			return fmt.Errorf("listing sealed columns: %w", err)
		}
		if !slices.Contains(SealedColumns, SealedColumn{table, keyColumnOf(table), column}) {
			unknown = append(unknown, table+"."+column)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing sealed columns: %w", err)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("the database has sealed columns this version cannot reseal: %s", strings.Join(unknown, ", "))
	}
	return nil
}

func keyColumnOf(table string) string {
	for _, c := range SealedColumns {
		if c.Table == table {
			return c.KeyColumn
		}
	}
	return ""
}
