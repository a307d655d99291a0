package main

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Geometry of the -plot page, in SVG user units.
const (
	chartW      = 960
	chartH      = 280
	chartLeft   = 64          // left edge of the plot area, after the y labels
	chartRight  = chartW - 16 // right edge of the plot area
	chartTop    = 28          // top edge of the plot area, below the y title
	chartBottom = chartH - 44 // bottom edge of the plot area, above the x labels
	shareBarW   = 320         // width of the bar of a 100% share, as in plotHTML
	maxDots     = 120         // above this many seconds latency lines have no dots
	minLastSpan = 0.5         // a shorter last second joins the one before in the throughput chart
)

// page is what the -plot page shows.
type page struct {
	Method      string
	URL         string
	Concurrency int
	Rate        float64 // -rate; 0 for none
	Written     string  // when the page was written
	S           summary
	Succeeded   int64   // 2xx responses
	SuccessPct  float64 // Succeeded as a share of all requests
	Throughput  chart
	Latency     chart
	Status      []share // status codes, then transport errors
	Backends    []share
}

// share is one row of a table of counts.
type share struct {
	Name  string  // status code, error kind or backend
	Count int64   // requests
	Pct   float64 // share of all requests, 0 to 100
	BarW  float64 // width of the bar showing Pct
	Class string  // CSS class giving the bar's colour
}

// chart is one SVG chart over the seconds of the run.
type chart struct {
	ID     string // element id of the figure
	Title  string
	Note   string // how to read it
	Legend []key
	W, H   int     // size of the SVG
	Left   float64 // plot area
	Right  float64
	Top    float64
	Bottom float64
	XTicks []tick
	YTicks []tick
	TickY  float64 // lower end of the x tick marks
	MidX   float64 // centre of the plot area, for Empty
	MidY   float64
	XTitle string
	YTitle string
	Bars   []bar
	Lines  []series
	Empty  string // shown instead of data when there is none
}

// key is one entry of a chart's legend.
type key struct{ Class, Label string }

// tick is one labelled position on an axis.
type tick struct {
	Pos   float64 // x or y in user units
	Label string
}

// bar is one rectangle of a bar chart.
type bar struct {
	X, Y, W, H float64
	Class      string
	Tip        string // tooltip
}

// series is one line of a line chart.
type series struct {
	Class  string
	D      string  // SVG path data; M starts a new piece after a gap
	Points []point // dots with tooltips; none when there are too many
}

// point is one dot of a line.
type point struct {
	X, Y float64
	Tip  string
}

// axis maps values from [0, top] onto user units from..to.
type axis struct{ top, from, to float64 }

// at returns the user unit of value v, rounded to a tenth.
func (a axis) at(v float64) float64 {
	return round1(a.from + v/a.top*(a.to-a.from))
}

// round1 rounds v to one decimal.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// fmtNum formats v with at most one decimal and no trailing zeros.
func fmtNum(v float64) string { return strconv.FormatFloat(round1(v), 'f', -1, 64) }

// niceStep returns a step of 1, 2 or 5 times a power of ten that divides
// [0, hi] into at most about n parts.
func niceStep(hi float64, n int) float64 {
	raw := hi / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw*(1-1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// ticks returns the multiples of step from 0 to top, labelled, placed by a.
func ticks(a axis, step float64) []tick {
	decimals := max(0, int(-math.Floor(math.Log10(step))))
	var out []tick
	for k := 0; float64(k)*step <= a.top*(1+1e-9); k++ {
		v := float64(k) * step
		out = append(out, tick{Pos: a.at(v), Label: strconv.FormatFloat(v, 'f', decimals, 64)})
	}
	return out
}

// newChart returns an empty chart with its axes: x over the run's total
// seconds (at least one), y from 0 to a round value at least yHi.
func newChart(id, title string, total, yHi float64) (chart, axis, axis) {
	c := chart{ID: id, Title: title, W: chartW, H: chartH,
		Left: chartLeft, Right: chartRight, Top: chartTop, Bottom: chartBottom, TickY: chartBottom + 5,
		MidX: (chartLeft + chartRight) / 2, MidY: (chartTop + chartBottom) / 2, XTitle: "seconds"}
	noData := yHi <= 0
	total, yHi = max(total, 1), max(yHi, 1e-3)
	x := axis{top: total, from: chartLeft, to: chartRight}
	xs := niceStep(total, 12)
	if total >= 2 {
		xs = max(xs, 1) // whole seconds
	}
	c.XTicks = ticks(x, xs)
	ys := niceStep(yHi, 5)
	y := axis{top: math.Ceil(yHi/ys*(1-1e-9)) * ys, from: chartBottom, to: chartTop}
	c.YTicks = ticks(y, ys)
	if noData {
		c.YTicks = []tick{{Pos: y.at(0), Label: "0"}}
	}
	return c, x, y
}

// span is a stretch of the run drawn as one bar of the throughput chart.
type span struct {
	from, to   float64 // seconds since the start
	ok, failed int64
}

// spans returns one span per second of a run of total seconds; a last partial
// second shorter than minLastSpan joins the one before, so that a few
// requests in a sliver of time do not show as a spike.
func spans(secs []secondStats, total float64) []span {
	out := make([]span, 0, len(secs))
	for i, st := range secs {
		sp := span{from: float64(i), to: min(float64(i+1), total), ok: st.OK, failed: st.Failed}
		if n := len(out); n > 0 && sp.to-sp.from < minLastSpan {
			out[n-1].to, out[n-1].ok, out[n-1].failed = sp.to, out[n-1].ok+sp.ok, out[n-1].failed+sp.failed
			continue
		}
		out = append(out, sp)
	}
	return out
}

// throughputChart draws the requests finished per second, 2xx below and
// failures stacked on top.
func throughputChart(s summary) chart {
	sps := spans(s.Seconds, s.Duration)
	peak := 0.0
	for _, sp := range sps {
		peak = max(peak, float64(sp.ok+sp.failed)/max(sp.to-sp.from, 1e-9))
	}
	c, x, y := newChart("throughput", "Throughput", s.Duration, peak)
	c.YTitle = "requests/s"
	c.Note = "Requests finished in each second: 2xx responses, with other responses and transport errors stacked on top."
	c.Legend = []key{{"ok", "2xx"}, {"fail", "failed"}}
	if len(sps) == 0 || peak == 0 {
		c.Empty = "no request finished"
		return c
	}
	for _, sp := range sps {
		c.Bars = append(c.Bars, spanBars(sp, x, y)...)
	}
	return c
}

// spanBars returns the bars of one span: 2xx, then failures on top.
func spanBars(sp span, x, y axis) []bar {
	d := max(sp.to-sp.from, 1e-9)
	okRate, failRate := float64(sp.ok)/d, float64(sp.failed)/d
	x0, x1 := x.at(sp.from), x.at(sp.to)
	if x1-x0 > 4 {
		x0, x1 = x0+1, x1-1 // a gap between neighbours
	}
	x1 = max(x1, x0+2) // visible even for a sliver of a run
	tip := fmt.Sprintf("%s–%s s: %.1f req/s (%d 2xx, %d failed)",
		fmtNum(sp.from), fmtNum(sp.to), okRate+failRate, sp.ok, sp.failed)
	var out []bar
	for _, b := range []struct {
		lo, hi float64
		class  string
	}{{0, okRate, "ok"}, {okRate, okRate + failRate, "fail"}} {
		if b.hi > b.lo {
			top, bottom := y.at(b.hi), y.at(b.lo)
			out = append(out, bar{X: x0, Y: top, W: round1(x1 - x0), H: round1(bottom - top), Class: b.class, Tip: tip})
		}
	}
	return out
}

// latencyChart draws the p50, p90 and p99 latency of each second's responses.
func latencyChart(s summary) chart {
	peak := 0.0
	for _, st := range s.Seconds {
		peak = max(peak, st.P99)
	}
	c, x, y := newChart("latency", "Latency percentiles", s.Duration, peak)
	c.YTitle = "ms"
	c.Note = "Response time of the responses that finished in each second; transport errors are not included."
	c.Legend = []key{{"p50", "p50"}, {"p90", "p90"}, {"p99", "p99"}}
	if peak == 0 {
		c.Empty = "no responses"
		return c
	}
	for _, q := range []struct {
		class string
		of    func(secondStats) float64
	}{
		{"p50", func(st secondStats) float64 { return st.P50 }},
		{"p90", func(st secondStats) float64 { return st.P90 }},
		{"p99", func(st secondStats) float64 { return st.P99 }},
	} {
		c.Lines = append(c.Lines, latencySeries(s, q.class, q.of, x, y))
	}
	return c
}

// latencySeries returns the line of one percentile, broken where a second
// had no response.
func latencySeries(s summary, class string, of func(secondStats) float64, x, y axis) series {
	ln := series{Class: class}
	var d strings.Builder
	gap := true
	for i, st := range s.Seconds {
		if st.Responses == 0 {
			gap = true
			continue
		}
		from, to := float64(i), min(float64(i+1), s.Duration)
		px, py := x.at((from+max(to, from))/2), y.at(of(st))
		cmd := "L"
		if gap {
			cmd = "M"
		}
		fmt.Fprintf(&d, "%s%s %s ", cmd, fmtNum(px), fmtNum(py))
		gap = false
		if len(s.Seconds) <= maxDots {
			tip := fmt.Sprintf("%s–%s s: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms (%d responses)",
				fmtNum(from), fmtNum(to), st.P50, st.P90, st.P99, st.Responses)
			ln.Points = append(ln.Points, point{X: px, Y: py, Tip: tip})
		}
	}
	ln.D = strings.TrimSpace(d.String())
	return ln
}

// newShare returns the row of count out of total requests.
func newShare(name string, count, total int64, class string) share {
	pct := 100 * float64(count) / float64(max(total, 1))
	return share{Name: name, Count: count, Pct: pct, BarW: round1(pct / 100 * shareBarW), Class: class}
}

// statusShares returns a row per status code, then per transport error kind
// that occurred.
func statusShares(s summary) []share {
	codes := make([]string, 0, len(s.Status))
	for code := range s.Status {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	out := make([]share, 0, len(codes)+len(errorKinds))
	for _, code := range codes {
		class := "fail"
		if len(code) == 3 && code[0] == '2' {
			class = "ok"
		}
		out = append(out, newShare(code, s.Status[code], s.Requests, class))
	}
	for _, k := range errorKinds {
		if n := s.Errors[k]; n > 0 {
			out = append(out, newShare(strings.ReplaceAll(k, "_", " "), n, s.Requests, "fail"))
		}
	}
	return out
}

// backendShares returns a row per backend, by name.
func backendShares(s summary) []share {
	names := make([]string, 0, len(s.Backends))
	for name := range s.Backends {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]share, 0, len(names))
	for _, name := range names {
		class := "backend"
		if name == unknownBackend {
			class = "muted"
		}
		out = append(out, newShare(name, s.Backends[name], s.Requests, class))
	}
	return out
}

// newPage returns the page of a run, written at now.
func newPage(opts options, s summary, now time.Time) page {
	ok := s.succeeded()
	return page{
		Method:      opts.method,
		URL:         opts.url,
		Concurrency: opts.concurrency,
		Rate:        opts.rate,
		Written:     now.Format("2006-01-02 15:04:05 MST"),
		S:           s,
		Succeeded:   ok,
		SuccessPct:  100 * float64(ok) / float64(max(s.Requests, 1)),
		Throughput:  throughputChart(s),
		Latency:     latencyChart(s),
		Status:      statusShares(s),
		Backends:    backendShares(s),
	}
}

// openPlot creates the -plot file before the run, so that a bad path fails
// at once rather than after the test. It returns nil for an empty path.
func openPlot(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("loadtest: -plot: %w", err)
	}
	return f, nil
}

// discardPlot closes and removes a plot file that will not be written; it
// ignores nil.
func discardPlot(f *os.File) {
	if f != nil {
		f.Close()
		os.Remove(f.Name())
	}
}

// writePlot writes the page of a run to f and closes f.
func writePlot(f *os.File, opts options, s summary, now time.Time) error {
	var buf bytes.Buffer
	if err := renderPlot(&buf, opts, s, now); err != nil {
		discardPlot(f)
		return err
	}
	_, err := f.Write(buf.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("loadtest: writing plot: %w", err)
	}
	return nil
}

// renderPlot writes the page of a run, written at now, to w.
func renderPlot(w io.Writer, opts options, s summary, now time.Time) error {
	if err := plotTemplate.Execute(w, newPage(opts, s, now)); err != nil {
		return fmt.Errorf("loadtest: rendering plot: %w", err)
	}
	return nil
}

// plotTemplate is the -plot page. html/template escapes everything from the
// run (URL, backend names) for the context it lands in.
var plotTemplate = template.Must(template.New("plot").Parse(plotHTML))

// plotHTML is the source of plotTemplate: one self-contained page, inline CSS
// and SVG, nothing loaded from elsewhere.
const plotHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>loadtest {{.Method}} {{.URL}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;background:#fff;max-width:1000px;margin:24px auto;padding:0 16px}
h1{font-size:20px;margin:0 0 12px}
h2{font-size:16px;margin:28px 0 6px}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
table{border-collapse:collapse}
.meta th{text-align:left;font-weight:600;padding:2px 16px 2px 0;vertical-align:top;white-space:nowrap}
.meta td{padding:2px 0}
.shares th,.shares td{padding:3px 14px 3px 0;text-align:left}
.shares .count,.shares .share{text-align:right;font-variant-numeric:tabular-nums}
.shares .name{max-width:360px;word-break:break-all}
figure{margin:0}
figcaption small{color:#666}
.key{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px;vertical-align:-1px;border-radius:2px}
svg.chart{width:100%;height:auto;display:block}
svg text{font-size:12px;fill:#555}
svg .grid line{stroke:#e6e6e6}
svg .axis{stroke:#999}
svg .empty{font-size:15px;fill:#999}
.track{fill:#f0f0f0}
.ok{fill:#4e79a7;background:#4e79a7}
.fail{fill:#e15759;background:#e15759}
.backend{fill:#59a14f;background:#59a14f}
.muted{fill:#bab0ac;background:#bab0ac}
.p50{stroke:#4e79a7;fill:#4e79a7;background:#4e79a7}
.p90{stroke:#f28e2b;fill:#f28e2b;background:#f28e2b}
.p99{stroke:#b07aa1;fill:#b07aa1;background:#b07aa1}
path.line{fill:none;stroke-width:2;stroke-linejoin:round}
.warn{color:#b00020;font-weight:600}
</style>
</head>
<body>
<h1>Load test report</h1>
<table class="meta">
<tr><th>Target</th><td>{{.Method}} <code class="url">{{.URL}}</code></td></tr>
<tr><th>Workers</th><td>{{.Concurrency}}{{if .Rate}}, limited to {{.Rate}} requests/s{{end}}</td></tr>
<tr><th>Requests</th><td>{{.S.Requests}} in {{printf "%.3f" .S.Duration}} s, {{printf "%.1f" .S.RPS}} requests/s</td></tr>
<tr><th>Succeeded</th><td{{if not .Succeeded}} class="warn"{{end}}>{{.Succeeded}} ({{printf "%.1f" .SuccessPct}}%) got a 2xx response</td></tr>
<tr><th>Latency</th><td>p50 {{printf "%.3f" .S.Latency.P50}} ms, p90 {{printf "%.3f" .S.Latency.P90}} ms, p99 {{printf "%.3f" .S.Latency.P99}} ms, max {{printf "%.3f" .S.Latency.Max}} ms, mean {{printf "%.3f" .S.Latency.Mean}} ms</td></tr>
{{if .S.Interrupted}}<tr><th>Stopped</th><td class="warn">interrupted; these are the requests completed so far</td></tr>
{{end}}<tr><th>Written</th><td>{{.Written}}</td></tr>
</table>
{{template "chart" .Throughput}}
{{template "chart" .Latency}}
<h2>Backends</h2>
<p><small>Requests each backend served, by the "server" field of the response body; "unknown" is a response without one. Shares are of all requests.</small></p>
{{template "shares" .Backends}}
<h2>Status codes and transport errors</h2>
{{template "shares" .Status}}
</body>
</html>
{{define "chart"}}<h2>{{.Title}}</h2>
<figure id="{{.ID}}">
<figcaption>{{range .Legend}}<span class="key {{.Class}}"></span>{{.Label}}{{end}}<br><small>{{.Note}}</small></figcaption>
<svg class="chart" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Title}}">
<g class="grid">{{range .YTicks}}<line x1="{{$.Left}}" x2="{{$.Right}}" y1="{{.Pos}}" y2="{{.Pos}}"/>{{end}}</g>
<g text-anchor="end">{{range .YTicks}}<text x="{{$.Left}}" y="{{.Pos}}" dx="-6" dy="4">{{.Label}}</text>{{end}}</g>
<g text-anchor="middle">{{range .XTicks}}<line class="axis" x1="{{.Pos}}" x2="{{.Pos}}" y1="{{$.Bottom}}" y2="{{$.TickY}}"/><text x="{{.Pos}}" y="{{$.Bottom}}" dy="18">{{.Label}}</text>{{end}}
<text x="{{$.Right}}" y="{{$.H}}" dy="-4" text-anchor="end">{{.XTitle}}</text></g>
<text x="8" y="14">{{.YTitle}}</text>
{{range .Bars}}<rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"><title>{{.Tip}}</title></rect>{{end}}
{{range .Lines}}<path class="line {{.Class}}" d="{{.D}}"/>{{$c := .Class}}{{range .Points}}<circle class="{{$c}}" cx="{{.X}}" cy="{{.Y}}" r="3"><title>{{.Tip}}</title></circle>{{end}}
{{end}}<line class="axis" x1="{{.Left}}" x2="{{.Right}}" y1="{{.Bottom}}" y2="{{.Bottom}}"/>
<line class="axis" x1="{{.Left}}" x2="{{.Left}}" y1="{{.Top}}" y2="{{.Bottom}}"/>
{{if .Empty}}<text class="empty" x="{{.MidX}}" y="{{.MidY}}" text-anchor="middle">{{.Empty}}</text>{{end}}
</svg>
</figure>
{{end}}
{{define "shares"}}{{if .}}<table class="shares">
<tr><th>name</th><th class="count">requests</th><th class="share">share</th><th></th></tr>
{{range .}}<tr><td class="name">{{.Name}}</td><td class="count">{{.Count}}</td><td class="share">{{printf "%.1f" .Pct}}%</td><td><svg width="320" height="12"><rect class="track" width="320" height="12"/><rect class="{{.Class}}" width="{{.BarW}}" height="12"/></svg></td></tr>
{{end}}</table>{{else}}<p>none</p>{{end}}{{end}}
`
