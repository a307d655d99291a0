//go:build !unix

package main

import "os"

// reopenSignals reopen the access log: none here (Windows has no USR1).
var reopenSignals []os.Signal

// ignoreReopen has nothing to ignore here.
func ignoreReopen() {}
