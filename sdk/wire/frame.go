package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// The framing of every local channel: a frame is a little-endian uint32 length, then
// that many bytes of payload. The pick channel's messages are frames whose payload
// starts with a kind byte (Begin, End, ReadMessage); the core's control channel to
// its data-plane processes carries one JSON object per frame (WriteFrame, ReadFrame).

// frameHeader is the length of a frame's header: the payload's length.
const frameHeader = 4

// beginFrame appends a frame's header to buf with the length left to endFrame, and
// returns where the header starts.
func beginFrame(buf []byte) ([]byte, int) {
	at := len(buf)
	return append(buf, 0, 0, 0, 0), at
}

// endFrame writes the length of the frame begun at at: all that buf holds after its
// header.
func endFrame(buf []byte, at int) []byte {
	binary.LittleEndian.PutUint32(buf[at:], uint32(len(buf)-at-frameHeader))
	return buf
}

// WriteFrame writes payload to w as one frame, in one Write. It is safe for
// concurrent use only if w's Write is, and then a frame is whole only if w writes
// each call whole (a caller sharing a stream serializes its calls).
func WriteFrame(w io.Writer, payload []byte) error {
	if uint64(len(payload)) > math.MaxUint32 {
		return fmt.Errorf("wire: a frame of %d bytes, more than its length can say", len(payload))
	}
	buf, at := beginFrame(make([]byte, 0, frameHeader+len(payload)))
	buf = endFrame(append(buf, payload...), at)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame from r and returns its payload, read into buf when buf
// has the room and into a new slice when not. A length over max is refused, before
// anything more is read, with an error that wraps ErrCorrupt. r's errors are returned
// as io.ReadFull gives them: io.EOF when the stream ends before a frame.
func ReadFrame(r io.Reader, buf []byte, max int) ([]byte, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if int64(n) > int64(max) {
		return nil, fmt.Errorf("%w: a frame of %d bytes, more than %d", ErrCorrupt, n, max)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}
