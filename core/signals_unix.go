//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// reopenSignals reopen the access log, as USR1 does for nginx: logrotate's postrotate
// sends it.
var reopenSignals = []os.Signal{syscall.SIGUSR1}

// ignoreReopen makes a process the core re-executes (a data-plane process, a bundled
// strategy) survive a USR1 sent to the whole service, as systemctl kill does by
// default: the core tells its data-plane processes to reopen the log itself.
func ignoreReopen() { signal.Ignore(reopenSignals...) }
