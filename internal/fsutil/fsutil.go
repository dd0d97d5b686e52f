// Package fsutil holds the few file-system steps that Weir's durable writes
// share: fsyncing a directory after a rename in it, and writing a small file
// durably.
//
// Dependency direction: fsutil imports only the standard library; state,
// io/file and runner import it.
package fsutil

import "os"

// SyncDir fsyncs a directory, so that a rename or a new file in it survives
// a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFileSync writes b to path and fsyncs the file before returning.
func WriteFileSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
