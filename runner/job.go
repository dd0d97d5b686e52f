package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/weir-dev/weir/io/fsys"
)

// Job ids keep jobs apart. A replay (a changed pipeline run over a range of
// history, to be compared with production by weir validate) must never
// touch the production job's state or checkpoints: with --job-id, "{job}"
// in any path or URI of the options is replaced by the id, and the state
// directory and checkpoint directory are marked with it (jobMarker), so
// that a run of another job refuses them instead of resuming from, or
// wiping, what is not its own.

const jobMarker = "WEIR_JOB"

var jobIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// withJob returns o with "{job}" replaced by o.JobID everywhere.
func (o Options) withJob() (Options, error) {
	if o.JobID != "" && !jobIDPattern.MatchString(o.JobID) {
		return o, optErr("job-id", "=%q: letters, digits, '.', '_' and '-' only", o.JobID)
	}
	var errs []error
	sub := func(what, v string) string {
		if !strings.Contains(v, "{job}") {
			return v
		}
		if o.JobID == "" {
			errs = append(errs, fmt.Errorf("%w: %s %s has {job} but no --job-id is given", ErrOptions, what, v))
			return v
		}
		return strings.ReplaceAll(v, "{job}", o.JobID)
	}
	bind := func(what string, m map[string]string) map[string]string {
		if m == nil {
			return nil
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = sub(what+" "+k, v)
		}
		return out
	}
	o.Bindings, o.Then = bind("--bind", o.Bindings), bind("--then", o.Then)
	o.StateDir = sub("--state-dir", o.StateDir)
	o.CheckpointDir = sub("--checkpoint-dir", o.CheckpointDir)
	o.Changelog = sub("--changelog", o.Changelog)
	o.Group = sub("--group", o.Group)
	o.DeadLetter = sub("--dead-letter", o.DeadLetter)
	o.Handover = sub("--handover", o.Handover)
	if o.JobID != "" {
		// Kafka names shared between jobs would let a replay fence
		// production's transactions or write into its changelog.
		if o.Changelog != "" && !strings.Contains(o.Changelog, o.JobID) {
			errs = append(errs, optErr("changelog", " %s: with --job-id the changelog prefix must hold {job}, or another job would share it", o.Changelog))
		}
		for name, uri := range o.Bindings {
			if u, err := url.Parse(uri); err == nil {
				if id := u.Query().Get("txn-id"); id != "" && !strings.Contains(id, o.JobID) {
					errs = append(errs, optErr("bind", " %s: with --job-id, txn-id=%s must hold {job}, or another job would fence this one's transactions", name, id))
				}
			}
		}
	}
	return o, errors.Join(errs...)
}

// claim checks that the directory on f belongs to job (or to no job yet)
// and marks it as job's. what names the directory in errors.
func claim(f fsys.FS, dir, what, job string) error {
	b, err := fsys.ReadFile(f, dir+"/"+jobMarker)
	switch {
	case err == nil:
		if owner := strings.TrimSpace(string(b)); owner != job {
			if job == "" {
				return fmt.Errorf("%w: %s %s belongs to job %q: pass --job-id %s to run it", ErrOptions, what, dir, owner, owner)
			}
			return fmt.Errorf("%w: %s %s belongs to job %q, not %q: a job never uses another's state or checkpoints", ErrOptions, what, dir, owner, job)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("runner: %s %s: %w", what, dir, err)
	case job == "":
		return nil
	}
	if err := f.MkdirAll(dir); err != nil {
		return fmt.Errorf("runner: %s %s: %w", what, dir, err)
	}
	return fsys.WriteFile(f, dir+"/"+jobMarker, []byte(job+"\n"))
}

// claimStateDir is claim for a local state directory.
func claimStateDir(dir, job string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && job == "" {
		return nil
	}
	return claim(fsys.Local, filepath.Clean(dir), "--state-dir", job)
}
