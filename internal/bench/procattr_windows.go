package bench

// raiseNoFile: Windows has no open-files rlimit.
func raiseNoFile() {}
