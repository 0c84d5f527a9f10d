//go:build !linux

package ledger

import "os"

// syncData makes f's contents durable (fsync(2) or the platform's own).
func syncData(f *os.File) error { return f.Sync() }

// startWriteback does nothing where there is no sync_file_range(2).
func startWriteback(*os.File) {}
