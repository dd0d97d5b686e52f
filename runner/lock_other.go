//go:build !unix

package runner

import "os"

// Without flock(2) a run's directories are not locked, and temporary
// directories are not swept.
const canLock = false

func tryLock(*os.File) (bool, error) { return true, nil }

func unlock(*os.File) {}
