package ledger

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// startWriteback has the kernel start writing f's dirty pages to the disk,
// without waiting for it (sync_file_range(2) with SYNC_FILE_RANGE_WRITE).
// It promises nothing about durability; it only spreads the writing out.
func startWriteback(f *os.File) {
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

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
