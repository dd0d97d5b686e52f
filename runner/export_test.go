package runner

// HoldDirs takes a job's directory locks as another process running it
// would, for the tests of runner_test; release gives them back.
func HoldDirs(stateDir, checkpointDir string) (release func(), err error) {
	s, err := lockStateDir(stateDir)
	if err != nil {
		return nil, err
	}
	c, err := lockCheckpointDir(checkpointDir)
	if err != nil {
		s.release()
		return nil, err
	}
	return func() { c.release(); s.release() }, nil
}
