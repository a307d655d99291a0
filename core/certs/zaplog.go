package certs

import (
	"slices"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapLogger is a zap logger, certmagic's kind, that writes to log: certmagic's
// step-by-step info lines (lock acquired, challenge presented) as debug, its
// warnings and errors as such, fields as hclog's key-value pairs.
func zapLogger(log hclog.Logger) *zap.Logger {
	return zap.New(&hclogCore{log: log})
}

// hclogCore is a zapcore.Core over an hclog.Logger.
type hclogCore struct {
	log    hclog.Logger
	fields []zapcore.Field // from With, written before each entry's own
}

func (c *hclogCore) Enabled(l zapcore.Level) bool {
	switch {
	case l >= zapcore.ErrorLevel:
		return c.log.IsError()
	case l == zapcore.WarnLevel:
		return c.log.IsWarn()
	}
	return c.log.IsDebug()
}

func (c *hclogCore) With(fields []zapcore.Field) zapcore.Core {
	return &hclogCore{log: c.log, fields: append(slices.Clip(c.fields), fields...)}
}

func (c *hclogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *hclogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	args := make([]any, 0, 2*(len(c.fields)+len(fields))+2)
	if e.LoggerName != "" {
		args = append(args, "logger", e.LoggerName)
	}
	for _, f := range append(slices.Clip(c.fields), fields...) {
		f.AddTo(enc)
		args = append(args, f.Key, enc.Fields[f.Key])
	}
	switch {
	case e.Level >= zapcore.ErrorLevel:
		c.log.Error(e.Message, args...)
	case e.Level == zapcore.WarnLevel:
		c.log.Warn(e.Message, args...)
	default:
		c.log.Debug(e.Message, args...)
	}
	return nil
}

func (c *hclogCore) Sync() error { return nil }

// Interface guards
var _ zapcore.Core = (*hclogCore)(nil)
