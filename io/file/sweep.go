package file

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/weir-dev/weir/io/fsys"
)

// hostname is this host's name as it appears in temporary file names: only
// letters, digits, '.' and '-' (others become '-'); "localhost" when it is
// not known.
var hostname = func() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, h)
}()

// ownedTempName returns the name of a new temporary file for the target
// base, carrying this process's pid and host.
func ownedTempName(base string) string {
	return fmt.Sprintf(".%s.tmp-%d@%s-%d", base, os.Getpid(), hostname, rand.Uint64())
}

// tempOwner parses name as a temporary file of the target base: ok is
// false when it is not one; pid is 0 for an old name without an owner.
func tempOwner(base, name string) (pid int, host string, ok bool) {
	rest, ok := strings.CutPrefix(name, "."+base+".tmp-")
	if !ok {
		return 0, "", false
	}
	if digits(rest) {
		return 0, "", true // an older Weir's name
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 || !digits(rest[i+1:]) {
		return 0, "", false
	}
	p, h, found := strings.Cut(rest[:i], "@")
	if !found || !digits(p) || h == "" || strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" {
		return 0, "", false
	}
	pid, err := strconv.Atoi(p)
	if err != nil || pid <= 0 {
		return 0, "", false
	}
	return pid, h, true
}

// sweepTemps removes the temporary files beside the target p that their
// writers left behind. A single-file sink writes through a hidden temporary
// file beside its target; a process killed before Commit (SIGKILL, a lost
// machine) leaves that file behind, as large as the output it was writing,
// and nothing else would ever remove it. So each temporary file's name
// says who wrote it, and opening the sink sweeps those of its writers that
// are gone:
//
//	.NAME.tmp-PID@HOST-RAND
//
// The sweep cannot rely on a lock: the runner's lock guards a state
// directory, and two jobs with different state may still write one output.
// A name is removed only when it matches this output's pattern exactly and
//
//   - its host is this host and no process PID runs here (a PID that has
//     been reused by another process keeps the file: a sweep must never
//     remove a live writer's file, and a later one will), or
//   - it is ".NAME.tmp-RAND", the name older versions of Weir wrote, which
//     carries no owner.
//
// The names of other hosts are kept, and logged: on HDFS a job may run on
// any machine, and whether their writer is alive cannot be told from here.
//
// sweepTemps returns the names it removed, and logs each file removed or
// kept. A failure to list or remove is logged, not returned: the sweep
// tidies, and the run does not depend on it.
func sweepTemps(fsy fsys.FS, p string, log *slog.Logger) []string {
	dir, base := path.Split(p)
	if dir == "" {
		dir = "."
	}
	infos, err := fsy.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("cannot list the output's folder to remove temporary files a killed run left", "output", where(fsy, p), "err", err)
		}
		return nil
	}
	var removed []string
	for _, fi := range infos {
		if !fi.Mode().IsRegular() {
			continue
		}
		pid, host, ok := tempOwner(base, fi.Name())
		if !ok {
			continue
		}
		name := path.Join(dir, fi.Name())
		switch {
		case pid == 0:
		case host != hostname:
			log.Warn("kept a temporary file of the output written on another host: remove it if no job there writes this output", "file", where(fsy, name), "pid", pid, "host", host, "bytes", fi.Size())
			continue
		case pid == os.Getpid():
			continue // this process's own sink, open or not yet aborted
		case processAlive(pid):
			log.Info("kept a temporary file of the output: its writer still runs", "file", where(fsy, name), "pid", pid, "bytes", fi.Size())
			continue
		}
		if err := fsy.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("cannot remove a temporary file a killed run left", "file", where(fsy, name), "err", err)
			continue
		}
		log.Info("removed a temporary file a killed run left", "file", where(fsy, name), "bytes", fi.Size())
		removed = append(removed, name)
	}
	return removed
}
