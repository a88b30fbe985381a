package distributor

import (
	"html/template"
	"net/http"
)

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"mib":  func(n int64) float64 { return float64(n) / (1 << 20) },
	"mbps": func(n float64) float64 { return n / 1e6 },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Satchel distributor</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left}</style></head>
<body><h1>Satchel distributor</h1>
<table>
<tr><th>peer</th><td>{{.ID}}</td></tr>
<tr><th>worker</th><td>{{.Worker}}</td></tr>
<tr><th>buckets</th><td>{{range .Buckets}}{{.}} {{end}}</td></tr>
<tr><th>bags / objects</th><td>{{.Bags}} / {{.Objects}}</td></tr>
<tr><th>chain height</th><td>{{.ChainHeight}}{{if not .ChainUp}} — <strong>the chain node cannot be read</strong> since {{.ChainDownSince.UTC.Format "2006-01-02 15:04:05"}} UTC; last read {{if .ChainLastContact.IsZero}}never{{else}}{{.ChainLastContact.UTC.Format "2006-01-02 15:04:05"}} UTC{{end}}{{end}}</td></tr>
<tr><th>cache</th><td>{{printf "%.1f" (mib .CacheUsed)}} of {{printf "%.1f" (mib .CacheLimit)}} MiB, {{.CacheObjects}} objects, {{.CacheEvicted}} evicted</td></tr>
<tr><th>uptime</th><td>{{printf "%.0f" .UptimeSeconds}} s</td></tr>
</table>
<h2>Storage providers, best first</h2>
<table><tr><th>peer</th><th>TTFB ms</th><th>MB/s</th><th>fetches</th><th>failures</th></tr>
{{range .Sources}}<tr><td>{{.Peer}}</td><td>{{printf "%.1f" .TTFBMillis}}</td><td>{{printf "%.1f" (mbps .Throughput)}}</td><td>{{.Fetches}}</td><td>{{.Failures}}</td></tr>
{{end}}</table>
<p>API: <a href="/api/v1/status">/api/v1/status</a> · <a href="/api/v1/buckets">/api/v1/buckets</a> · <a href="/metrics">/metrics</a> · assets at /api/v1/assets/{objectId}</p>
</body></html>
`))

// servePage answers GET / with a human-readable status page.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = statusPage.Execute(w, s.Status())
}
