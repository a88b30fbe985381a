package provider

import (
	"net"
	"net/http"
	"strings"
)

// ActionHeader must be set (to any value) on the status server's actions,
// the POSTs that change what the node keeps (TombstonesPath/{object}/keep
// and /release). A browser sends a custom header across origins only after
// a CORS preflight, which the status server never grants, so a web page the
// operator opens cannot make the node act.
const ActionHeader = "X-Satchel-Action"

// operatorOnly guards an action of the status server against requests a
// web page makes the operator's browser send: cross-origin ones (by
// Sec-Fetch-Site, or an Origin that is not the server's own), any
// without ActionHeader, and any addressed to a host name (a page can point
// its own name at 127.0.0.1, DNS rebinding, and be same-origin) are refused
// 403 before h runs.
func operatorOnly(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request refused: status server actions are for the operator's own tools"})
	}))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !addressedByIP(r.Host) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "address the status server by IP address or localhost to act, not by the name " + r.Host})
			return
		}
		if r.Header.Get(ActionHeader) == "" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "set the " + ActionHeader + " header to act (curl -H '" + ActionHeader + ": 1' -X POST ...)"})
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// addressedByIP reports whether the Host header names an IP address or
// localhost, which no web page can own.
func addressedByIP(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	}
	return host == "localhost" || net.ParseIP(host) != nil
}

// loopbackHostsOnly refuses 421 every request addressed by a host name
// when the status server listens on loopback only: such a server's pages
// are the operator's, and a web page could otherwise point its own name at
// 127.0.0.1 (DNS rebinding) and read them same-origin. A server bound to a
// routable address answers any name, so a scraper may use its DNS name.
func loopbackHostsOnly(h http.Handler, addr net.Addr) http.Handler {
	if ta, ok := addr.(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !addressedByIP(r.Host) {
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{"error": "this status server listens on loopback: address it as localhost or by IP address, not by the name " + r.Host})
			return
		}
		h.ServeHTTP(w, r)
	})
}
