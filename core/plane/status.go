//go:build linux || darwin || freebsd || netbsd || openbsd

package plane

import (
	"time"

	"github.com/switchyard-lb/switchyard/core/plane/wire"
)

// statusWait bounds the wait for the control plane's status JSON.
const statusWait = 2 * time.Second

// noStatus is answered on the status path when the control plane does not answer.
var noStatus = []byte(`{"error": "the control plane did not answer"}` + "\n")

// status asks the control plane for the status JSON, answered on the status path.
// The question goes out and the answer comes back off the loop, so a slow control
// plane holds up the status requests alone. One question is in flight at a time:
// requests that come meanwhile share its answer, so a flood of them costs the control
// plane one answer per round trip.
func (d *process) status(answer func([]byte)) {
	d.mu.Lock()
	d.asking = append(d.asking, answer)
	if d.askID != 0 {
		d.mu.Unlock()
		return
	}
	id := d.nextID.Add(1)
	d.askID = id
	d.askTimer = time.AfterFunc(statusWait, func() { d.answered(id, noStatus) })
	d.mu.Unlock()
	go func() {
		if err := d.conn.Send(&wire.Message{Kind: wire.KindStatus, ID: id}); err != nil {
			d.answered(id, noStatus)
		}
	}()
}

// answered hands the answer to question id to the status requests waiting for it,
// unless they were answered already.
func (d *process) answered(id uint64, body []byte) {
	d.mu.Lock()
	if id != d.askID {
		d.mu.Unlock()
		return
	}
	waiting := d.asking
	d.askID, d.asking = 0, nil
	d.askTimer.Stop()
	d.mu.Unlock()
	for _, answer := range waiting {
		answer(body)
	}
}
