package exchange

import (
	"encoding/json"
	"errors"

	"github.com/switchyard-lb/switchyard/core/strategy"
)

// Error codes of the JSON bodies the proxy itself answers with (DESIGN section 8).
const (
	CodeQueueFull      = "queue_full"
	CodeQueueTimeout   = "queue_timeout"
	CodeNoBackend      = "no_backend"
	CodeBackendFailed  = "backend_failed"
	CodeBackendTimeout = "backend_timeout"
	CodeBadRequest     = "bad_request"
	CodeHeaderTooLarge = "header_too_large"
	CodeShuttingDown   = "shutting_down"
	// CodeNoRoute: no route matched and the default pool has no backends.
	CodeNoRoute = "no_route"
	// CodeStrategyFailed: the strategy failed to pick and fails closed
	// (on_failure "refuse").
	CodeStrategyFailed = "strategy_failed"
)

// errorBody is the JSON of the proxy's own answers.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// ErrorBody is the body of the proxy's own answer: {"error": msg, "code": code} and
// a newline. It is valid JSON whatever msg holds (a strategy's words may carry
// control bytes or invalid UTF-8, which the JSON library escapes or replaces).
func ErrorBody(code, msg string) []byte {
	b, err := json.Marshal(errorBody{Error: msg, Code: code})
	if err != nil { // unreachable: two strings always marshal
		return []byte(`{"error":"internal error","code":"` + code + `"}` + "\n")
	}
	return append(b, '\n')
}

// NoBackendCode is the error code of an answer to a request no backend took, for
// the pick's error err.
func NoBackendCode(err error) string {
	if errors.Is(err, strategy.ErrStrategyFailed) {
		return CodeStrategyFailed
	}
	return CodeNoBackend
}
