package ledger

import (
	"os"
	"syscall"
)

// syncData makes f's contents durable with fdatasync(2), as SQLite does
// where it has it: the data and the metadata needed to read it back, its
// size included, but not its timestamps, whose journal commit a plain
// fsync would wait for too.
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
