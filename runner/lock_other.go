//go:build !unix

package runner

import "os"

// Without flock(2) a run's directories are not locked.
func tryLock(*os.File) (bool, error) { return true, nil }

func unlock(*os.File) {}
